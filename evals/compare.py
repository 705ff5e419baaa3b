"""``python -m evals.compare RUN_A RUN_B ...``: a Markdown table and a bar chart of several runs.

Per benchmark (and per category, e.g. MathVista's skills), each run's headline score (accuracy; DynaMath's worst
case; WeMath's strict score), the change from the first run, and the paper's numbers where the model is one the
paper evaluated (from evals.registry). Each score carries its 95 % interval; each change of a headline carries the
interval of the paired difference over the items (DynaMath: seeds; WeMath: problems) both runs scored, read
from their ``samples_<task>.jsonl``, and is marked ``~0`` when that interval includes zero: a change the
items cannot tell from noise. Runs made with different prompts (--prompt) or different --limit values
are not comparable: the comparison is refused unless --allow-mismatch, and then the table says so at the top.

    python -m evals.compare runs/eval-internvl2-8b runs/eval-internvl2-8b-mpo --out runs/compare
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.agreement import read_samples
from evals.intervals import excludes_zero
from evals.registry import BENCHMARKS
from evals.results import Interval, RunResult, TaskResult
from evals.uncertainty import paired_difference, units
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import NothingMade, UserError, one_line
from mmpr.io import atomic_write_text
from mmpr.locations import check_out, new_folder


class NotComparable(UserError):
    """Runs made under different prompts or limits: their scores are not comparable."""


def load(folder: str | Path) -> RunResult:
    path = Path(folder) / "results.json"
    if not path.exists():
        raise UserError(f"{path}: no results; is {folder} an evals.run output folder?")
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid results file ({one_line(e)[:200]}); rerun evals.run into {folder}") \
            from e


def paper_number(run: RunResult, benchmark: str) -> float | None:
    found = _paper(run, benchmark)
    return found[0] if found else None


def _paper(run: RunResult, benchmark: str) -> tuple[float, str] | None:
    bench = BENCHMARKS.get(benchmark) if benchmark in BENCHMARKS else None
    return bench.paper_number(run.model.rstrip("/").split("/")[-1], run.prompt) if bench else None


def mismatches(runs: list[tuple[str, RunResult]]) -> list[str]:
    """Why the runs' scores cannot be set side by side: different prompts or different --limit values."""
    problems = []
    for attr, flag in (("prompt", "--prompt"), ("limit", "--limit")):
        values = {str(folder): getattr(run, attr) for folder, run in runs}
        if len(set(values.values())) > 1:
            problems.append(f"different {flag}: " + ", ".join(f"{f}: {v}" for f, v in values.items()))
    return problems


def headline(task: TaskResult) -> float | None:
    """The benchmark's reported score; results.json files written before there were headlines hold accuracy."""
    return task.accuracy if task.headline == "accuracy" else task.score


def _label(run: RunResult, folder: str | Path) -> str:
    return f"{run.model.rstrip('/').split('/')[-1]} ({run.prompt})" if run.model else str(folder)


Paired = dict[str, list[tuple[float, Interval] | None]]


def paired_differences(runs: list[tuple[str, RunResult]]) -> Paired:
    """Benchmark -> for each run after the first, ``(headline change, its paired interval)`` over the units both
    it and the first run scored; None where a run's samples are not there to pair."""
    out: Paired = {}
    base_folder, base = runs[0]
    for name, task in base.tasks.items():
        bench = BENCHMARKS.get(name) if name in BENCHMARKS else None
        before = _units(base_folder, task, bench)
        out[name] = [None if before is None or name not in run.tasks else
                     _pair(before, _units(folder, run.tasks[name], bench), bench.unit) for folder, run in runs[1:]]
    return out


def _units(folder: str | Path, task: TaskResult, bench) -> dict[str, float] | None:
    path = Path(folder) / f"samples_{task.task}.jsonl"
    if bench is None or not path.is_file():
        return None
    return units(bench, read_samples(path))


def _pair(before: dict[str, float], after: dict[str, float] | None, unit: str) -> tuple[float, Interval] | None:
    return paired_difference(before, after, unit) if after is not None else None


def table(runs: list[tuple[str, RunResult]], *, categories: bool = True, allow_mismatch: bool = False,
          paired: Paired | None = None) -> str:
    """The Markdown table; raises :class:`NotComparable` for runs with different prompts or limits unless
    ``allow_mismatch``, which puts the warning above the table instead. ``paired`` (:func:`paired_differences`)
    gives the headline changes their intervals."""
    problems = mismatches(runs)
    if problems and not allow_mismatch:
        raise NotComparable("these runs are not comparable: " + "; ".join(problems) +
                            " (rerun them alike, or pass --allow-mismatch to see them with a warning)")
    warning = "".join(f"> **WARNING: NOT COMPARABLE: {p}**\n" for p in problems) + ("\n" if problems else "")
    labels = [_label(r, f) for f, r in runs]
    head = warning + "| benchmark | " + " | ".join(labels) + " | " + " | ".join(f"delta {lbl}" for lbl in labels[1:])
    head += " | paper |\n|---|" + "---:|" * (2 * len(runs) - 1) + "---|\n"
    rows = []
    benchmarks = sorted({b for _, r in runs for b in r.tasks})
    for b in benchmarks:
        tasks = [r.tasks.get(b) for _, r in runs]
        scores = [headline(t) if t else None for t in tasks]
        paper = [f"{lbl}: {p[0]}" if p[1] != "reported" else f"{lbl.rsplit(' (', 1)[0]} (prompt not stated): {p[0]}"
                 for lbl, (_, r) in zip(labels, runs, strict=True) if (p := _paper(r, b)) is not None]
        name = next((t.headline for t in tasks if t), "accuracy")
        rows.append(_row(f"**{b}**" + (f" ({name})" if name != "accuracy" else ""), scores, "; ".join(paper) or "-",
                         intervals=[t.interval if t else None for t in tasks], paired=(paired or {}).get(b)))
        if name != "accuracy":
            rows.append(_row(f"{b}: accuracy", [t.accuracy if t else None for t in tasks], "-"))
        keys = sorted({k for t in tasks if t for k in t.metrics} - {name})
        for key in keys:
            rows.append(_row(f"{b}: {key}", [t.metrics.get(key) if t else None for t in tasks], "-"))
        if any(t and t.sampled for t in tasks):
            k = next(t.sampled.k for t in tasks if t and t.sampled)
            for label, attr in ((f"avg@{k}", "avg_at_k"), (f"pass@{k}", "pass_at_k"),
                                (f"majority@{k}", "majority_at_k")):
                rows.append(_row(f"{b}: {label}", [getattr(t.sampled, attr) if t and t.sampled else None
                                                   for t in tasks], "-",
                                 intervals=[t.sampled.avg_at_k_interval if t and t.sampled else None for t in tasks]
                                 if attr == "avg_at_k" else None))
        if any(t and t.judge_comparison for t in tasks):
            rows.append(_row(f"{b}: judged (LLM extraction)",
                             [t.judge_comparison.judged if t and t.judge_comparison else None for t in tasks], "-",
                             intervals=[t.judge_comparison.judged_interval if t and t.judge_comparison else None
                                        for t in tasks]))
        unparsable = [t.unparsable_rate if t else None for t in tasks]
        rows.append(_row(f"{b}: unparsable %", unparsable, "-"))
        if categories:
            keys = sorted({(k, v) for t in tasks if t for k, vals in t.categories.items() for v in vals})
            for key, value in keys:
                cells = [t.categories.get(key, {}).get(value) if t else None for t in tasks]
                rows.append(_row(f"{b} / {key} / {value}", [c.accuracy if c else None for c in cells], "-"))
    legend = ("\nScores: [95 % bootstrap interval]. Headline deltas: [95 % paired bootstrap interval over the units "
              "both runs scored]; ~0 marks a delta whose interval includes zero.\n") if paired else ""
    return head + "\n".join(rows) + "\n" + legend


def _span(interval: Interval | None, signed: bool = False) -> str:
    if interval is None:
        return ""
    f = "{:+.1f}" if signed else "{:.1f}"
    return f" [{f.format(interval.low)}, {f.format(interval.high)}]"


def _row(name: str, scores: list[float | None], paper: str, *, intervals: list[Interval | None] | None = None,
         paired: list[tuple[float, Interval] | None] | None = None) -> str:
    fmt = [f"{s:.2f}" + _span(i) if s is not None else "-"
           for s, i in zip(scores, intervals or [None] * len(scores), strict=True)]
    deltas = []
    for j, s in enumerate(scores[1:]):
        pair = paired[j] if paired else None
        if s is None or scores[0] is None:
            deltas.append("-")
        elif pair is None:
            deltas.append(f"{s - scores[0]:+.2f}")
        else:
            deltas.append(f"{s - scores[0]:+.2f}{_span(pair[1], signed=True)}" +
                          ("" if excludes_zero((pair[1].low, pair[1].high)) else " ~0"))
    return f"| {name} | " + " | ".join(fmt + deltas) + f" | {paper} |"


def chart(runs: list[tuple[str, RunResult]], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = sorted({b for _, r in runs for b in r.tasks})
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(max(4, 2 * len(benchmarks) + 1), 3.5))
    for i, (folder, run) in enumerate(runs):
        values = [(headline(run.tasks[b]) or 0) if b in run.tasks else 0 for b in benchmarks]
        bars = ax.bar([j + i * width for j in range(len(benchmarks))], values, width, label=_label(run, folder))
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(benchmarks))], benchmarks)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


OUTPUTS = ("comparison.md", "comparison.png")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m evals.compare", description=__doc__, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="evals.run output folders; the first is the baseline")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--no-categories", action="store_true", help="benchmarks only")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="compare runs made with different --prompt or --limit anyway, under a warning")
    add_output_arguments(parser)
    return parser


@front_door
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_logs(args.verbose)
    runs = [(folder, load(folder)) for folder in args.runs]
    empty = [folder for folder, run in runs if not any(t.total for t in run.tasks.values())]
    if empty:
        raise NothingMade(f"{', '.join(empty)}: no scored samples; nothing to compare")
    text = table(runs, categories=not args.no_categories, allow_mismatch=args.allow_mismatch,
                 paired=paired_differences(runs))
    check_out(args.out, marker="a comparison", same_job=lambda out: all(p.name in OUTPUTS for p in out.iterdir()),
              overwrite=args.overwrite)
    with new_folder(args.out):
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "comparison.md", text)
        chart(runs, args.out / "comparison.png")
    print(text)
    print(f"written: {args.out / 'comparison.md'}, {args.out / 'comparison.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
