"""``python -m evals.compare RUN_A RUN_B ...``: a Markdown table and a bar chart of several runs.

Per benchmark (and per category, e.g. MathVista's skills), each run's headline score (accuracy; DynaMath's worst
case; WeMath's strict score), the change from the first run, and the paper's numbers where the model is one the
paper evaluated (from evals.registry). Runs made with different prompts (--prompt) or different --limit values
are not comparable: the comparison is refused unless --allow-mismatch, and then the table says so at the top.

    python -m evals.compare runs/eval-internvl2-8b runs/eval-internvl2-8b-mpo --out runs/compare
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.registry import BENCHMARKS
from evals.run import RunResult, TaskResult
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, new_folder, one_line, quiet_logs
from mmpr.errors import NothingMade, UserError
from mmpr.io import atomic_write_text
from mmpr.locations import check_out


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
    bench = BENCHMARKS.get(benchmark)
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


def table(runs: list[tuple[str, RunResult]], *, categories: bool = True, allow_mismatch: bool = False) -> str:
    """The Markdown table; raises :class:`NotComparable` for runs with different prompts or limits unless
    ``allow_mismatch``, which puts the warning above the table instead."""
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
        scores = [headline(r.tasks[b]) if b in r.tasks else None for _, r in runs]
        paper = [f"{lbl}: {p[0]}" if p[1] != "reported" else f"{lbl.rsplit(' (', 1)[0]} (prompt not stated): {p[0]}"
                 for lbl, (_, r) in zip(labels, runs, strict=True) if (p := _paper(r, b)) is not None]
        name = next((r.tasks[b].headline for _, r in runs if b in r.tasks), "accuracy")
        rows.append(_row(f"**{b}**" + (f" ({name})" if name != "accuracy" else ""), scores, "; ".join(paper) or "-"))
        if name != "accuracy":
            rows.append(_row(f"{b}: accuracy", [r.tasks[b].accuracy if b in r.tasks else None for _, r in runs],
                             "-"))
        keys = sorted({k for _, r in runs if b in r.tasks for k in r.tasks[b].metrics} - {name})
        for key in keys:
            rows.append(_row(f"{b}: {key}", [r.tasks[b].metrics.get(key) if b in r.tasks else None for _, r in runs],
                             "-"))
        unparsable = [r.tasks[b].unparsable_rate if b in r.tasks else None for _, r in runs]
        rows.append(_row(f"{b}: unparsable %", unparsable, "-"))
        if categories:
            keys = sorted({(k, v) for _, r in runs if b in r.tasks for k, vals in r.tasks[b].categories.items()
                           for v in vals})
            for key, value in keys:
                cells = [r.tasks[b].categories.get(key, {}).get(value) if b in r.tasks else None for _, r in runs]
                rows.append(_row(f"{b} / {key} / {value}", [c.accuracy if c else None for c in cells], "-"))
    return head + "\n".join(rows) + "\n"


def _row(name: str, scores: list[float | None], paper: str) -> str:
    fmt = [f"{s:.2f}" if s is not None else "-" for s in scores]
    deltas = [f"{s - scores[0]:+.2f}" if s is not None and scores[0] is not None else "-" for s in scores[1:]]
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
    text = table(runs, categories=not args.no_categories, allow_mismatch=args.allow_mismatch)
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
