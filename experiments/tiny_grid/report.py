"""``python -m experiments.tiny_grid.report OUT``: the results of ``experiments/tiny_grid/reproduce.sh`` as
``results.json`` and a chart.

It reads what the script's steps wrote under ``OUT``, each as the record type that wrote it (nothing is re-scored
here):

- ``data/task.json`` (:class:`~experiments.tiny_grid.generate.TaskSummary`): chance and majority baselines of the
  held-out questions;
- ``pairs/manifest.json`` (:class:`~mmpr.schemas.Manifest`, its build summary a
  :class:`~mmpr.build.summary.BuildSummary`): the build's sampled CoT accuracy at T = 1 and its pair counts;
- ``eval/<arm>/seed<k>/<prompt>/`` (:class:`~evals.results.RunResult` and its samples): ``evals.run`` outputs per
  arm, seed and prompt (``cot``, ``direct``); the start (``sft``) also has ``cot_shuffled`` and ``direct_shuffled``
  (the held-out questions with images moved).

Per arm: CoT ``accuracy``, ``unparsable`` and ``direct_accuracy`` (percent), mean over seeds with a 95 % t
interval; paired differences on the same questions (per-question correctness averaged over seeds) with a 95 %
normal interval; the gate checks of the start and the two effects the run is meant to show.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from evals.results import RunResult, TaskResult
from experiments.tiny_grid.generate import TaskSummary
from mmpr.build.summary import BuildSummary
from mmpr.cli import ArgumentParser, front_door
from mmpr.errors import UserError
from mmpr.io import atomic_write_text
from mmpr.schemas import Manifest

ARMS = ("sft", "sft_chosen", "dpo", "mpo")
HIGH_LR_ARMS = ("dpo", "mpo")
# two-sided 95 % quantiles of Student's t by degrees of freedom (normal beyond 30)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t95(df: int) -> float:
    return _T95.get(df, 2.042 if df <= 30 else 1.96)


def mean_ci(values: list[float]) -> dict:
    """Mean and 95 % t interval of per-seed values; no interval from a single seed."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": round(mean, 2), "ci95": None, "seeds": values}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return {"mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)], "seeds": values}


def paired_ci(a: dict[str, float], b: dict[str, float]) -> dict:
    """Mean of ``a[q] - b[q]`` over the questions both have (percentage points), with a 95 % normal interval.

    ``a`` and ``b`` map a question to its correctness (averaged over seeds, in [0, 1])."""
    keys = sorted(set(a) & set(b))
    if not keys:
        raise UserError("no questions in common to pair")
    diffs = [100.0 * (a[k] - b[k]) for k in keys]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return {"mean": round(mean, 2), "ci95": [round(mean - half, 2), round(mean + half, 2)], "questions": n}


class Sample(BaseModel):
    """The fields of an ``evals.run`` samples line that the report reads."""

    model_config = ConfigDict(extra="ignore")

    doc_id: str | int
    correct: bool


def _read(path: Path, record: type[BaseModel]):
    """``path`` as ``record``; a file that is not one is a :class:`UserError` naming it."""
    try:
        return record.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        raise UserError(f"{path}: not a {record.__name__} ({e.errors()[0]['msg']} at "
                        f"{'.'.join(map(str, e.errors()[0]['loc']))}); rerun the step that writes it") from e


def _run(folder: Path) -> tuple[TaskResult, dict[str, float]]:
    """One evals.run output: its task result and per-question correctness."""
    run = _read(folder / "results.json", RunResult)
    if "synthetic_grid" not in run.tasks:
        raise UserError(f"{folder / 'results.json'}: no synthetic_grid result; rerun its evaluation")
    result = run.tasks["synthetic_grid"]
    samples = folder / f"samples_{result.task}.jsonl"
    correct = {}
    for number, line in enumerate(samples.read_text(encoding="utf-8").splitlines(), 1):
        try:
            sample = Sample.model_validate_json(line)
        except ValidationError as e:
            raise UserError(f"{samples}:{number}: not a sample ({e.errors()[0]['msg']})") from e
        correct[str(sample.doc_id)] = float(sample.correct)
    return result, correct


def _seeds(arm_dir: Path) -> list[Path]:
    seeds = sorted(p for p in arm_dir.glob("seed*") if (p / "cot" / "results.json").is_file())
    if not seeds:
        raise FileNotFoundError(f"{arm_dir}: no evaluated seed (seed*/cot/results.json)")
    return seeds


def arm_summary(arm_dir: Path) -> tuple[dict, dict[str, float]]:
    """Seed means of one arm and its per-question CoT correctness averaged over seeds."""
    acc, unparsable, direct = [], [], []
    per_question: dict[str, list[float]] = {}
    for seed in _seeds(arm_dir):
        cot, correct = _run(seed / "cot")
        acc.append(cot.accuracy)
        unparsable.append(cot.unparsable_rate)
        direct.append(_run(seed / "direct")[0].accuracy)
        for q, c in correct.items():
            per_question.setdefault(q, []).append(c)
    summary = {"accuracy": mean_ci(acc), "unparsable": mean_ci(unparsable), "direct_accuracy": mean_ci(direct)}
    return summary, {q: sum(v) / len(v) for q, v in per_question.items()}


def report(out: Path) -> dict:
    task = _read(out / "data" / "task.json", TaskSummary)
    chance, majority = 100 * task.baselines.chance, 100 * task.baselines.majority
    manifest_path = out / "pairs" / "manifest.json"
    manifest = _read(manifest_path, Manifest)
    try:
        build = BuildSummary.model_validate(manifest.extra["build"])
        stats = build.sources["synthetic_grid"]
    except (KeyError, ValidationError) as e:
        raise UserError(f"{manifest_path}: no build summary of the synthetic_grid source; rerun mmpr.build") from e
    sampled = 100 * stats.correct / max(stats.judged, 1)
    results: dict = {"baselines": {"chance": round(chance, 2), "majority": round(majority, 2)},
                     "pairs": build.pairs, "sampled_cot_accuracy_t1": round(sampled, 2)}
    per_q = {}
    for arm in ARMS:
        results[arm], per_q[arm] = arm_summary(out / "eval" / arm)
    results["high_lr"] = {}
    for arm in HIGH_LR_ARMS:
        results["high_lr"][arm], per_q["high_lr_" + arm] = arm_summary(out / "eval" / f"high_lr_{arm}")
    results["mpo_minus_sft_ci95"] = paired_ci(per_q["mpo"], per_q["sft"])
    results["mpo_minus_sft_chosen_ci95"] = paired_ci(per_q["mpo"], per_q["sft_chosen"])
    results["high_lr"]["mpo_minus_dpo_ci95"] = paired_ci(per_q["high_lr_mpo"], per_q["high_lr_dpo"])
    shuffled = {p: _run(out / "eval" / "sft" / "seed0" / f"{p}_shuffled")[0].accuracy for p in ("cot", "direct")}
    start = results["sft"]
    results["gates"] = {
        "shuffled_accuracy": shuffled,
        # the start beats chance with the images, and with shuffled images falls closer to chance than to that
        "reads_image": (start["direct_accuracy"]["mean"] > chance
                        and shuffled["direct"] - chance < (start["direct_accuracy"]["mean"] - chance) / 2),
        "cot_below_direct": start["accuracy"]["mean"] < start["direct_accuracy"]["mean"],
        "sampled_cot_in_30_70": 30 <= sampled <= 70,
    }
    mpo, high = results["mpo"], results["high_lr"]
    lift = results["mpo_minus_sft_ci95"]
    results["effects"] = {
        "mpo_lifts_cot_5_points": lift["mean"] >= 5 and lift["ci95"][0] > 0,
        "mpo_cot_passes_direct": mpo["accuracy"]["mean"] > start["direct_accuracy"]["mean"],
        "high_lr_dpo_loses_accuracy": high["dpo"]["accuracy"]["mean"] < min(start["accuracy"]["mean"],
                                                                              high["mpo"]["accuracy"]["mean"]),
        "high_lr_dpo_more_unparsable": high["dpo"]["unparsable"]["mean"] > high["mpo"]["unparsable"]["mean"],
        "mpo_beats_sft_chosen_3_points": (results["mpo_minus_sft_chosen_ci95"]["mean"] >= 3
                                          and results["mpo_minus_sft_chosen_ci95"]["ci95"][0] > 0),
    }
    return results


def table(results: dict) -> str:
    """The results as a Markdown table (CoT accuracy, unparsable, direct accuracy; mean [95 % interval])."""

    def cell(stat: dict) -> str:
        ci = stat["ci95"]
        return f"{stat['mean']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")

    rows = ["| arm | CoT accuracy | unparsable % | direct accuracy |", "|---|---|---|---|"]
    arms = [(a, results[a]) for a in ARMS] + [(f"high_lr {a}", results["high_lr"][a]) for a in HIGH_LR_ARMS]
    for name, r in arms:
        rows.append(f"| {name} | {cell(r['accuracy'])} | {cell(r['unparsable'])} | {cell(r['direct_accuracy'])} |")
    b = results["baselines"]
    rows.append(f"| chance / majority | {b['chance']:.1f} / {b['majority']:.1f} | | |")
    for key in ("mpo_minus_sft_ci95", "mpo_minus_sft_chosen_ci95"):
        d = results[key]
        rows.append(f"| {key.removesuffix('_ci95').replace('_', ' ')}, paired | {d['mean']:+.1f} "
                    f"[{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}] | | |")
    return "\n".join(rows)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ARMS) + [f"{a}\n(high lr)" for a in HIGH_LR_ARMS]
    stats = [results[a] for a in ARMS] + [results["high_lr"][a] for a in HIGH_LR_ARMS]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.27
    for k, (key, label) in enumerate([("accuracy", "CoT accuracy"), ("direct_accuracy", "direct accuracy"),
                                      ("unparsable", "CoT unparsable")]):
        means = [s[key]["mean"] for s in stats]
        errs = [[m - (s[key]["ci95"] or [m, m])[0] for m, s in zip(means, stats, strict=True)],
                [(s[key]["ci95"] or [m, m])[1] - m for m, s in zip(means, stats, strict=True)]]
        ax.bar([i + (k - 1) * width for i in range(len(names))], means, width, yerr=errs, capsize=3, label=label)
    for value, style, label in ((results["baselines"]["chance"], ":", "chance"),
                                (results["baselines"]["majority"], "--", "majority")):
        ax.axhline(value, color="grey", linestyle=style, label=label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("% of held-out questions")
    ax.set_title("Synthetic grid task: the SFT start and three preference arms (95 % intervals over seeds)")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


@front_door
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m experiments.tiny_grid.report", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the OUT folder of experiments/tiny_grid/reproduce.sh")
    args = parser.parse_args(argv)
    results = report(args.out)
    atomic_write_text(args.out / "results.json", json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "results.png")
    text = table(results)
    atomic_write_text(args.out / "results.md", text + "\n")
    print(text)
    print("gates: " + json.dumps(results["gates"]))
    print("effects: " + json.dumps(results["effects"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
