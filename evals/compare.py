"""``python -m evals.compare RUN_A RUN_B ...``: a Markdown table and a bar chart of several runs.

Per benchmark (and per category, e.g. MathVista's skills), each run's accuracy, the change from the first run,
and the paper's reported numbers where the model is one the paper evaluated.

    python -m evals.compare runs/eval-internvl2-8b runs/eval-internvl2-8b-mpo --out runs/compare
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.run import RunResult
from mmpr.io import atomic_write_text

# The paper's CoT numbers (Wang et al., 2024, arXiv 2411.10442, results tables); direct-answer MathVista
# numbers under "mathvista/direct".
PAPER = {
    "InternVL2-8B": {"mathvista": 56.8, "mathvista/direct": 58.3, "mathvision": 20.4, "pope": 86.9},
    "InternVL2-8B-MPO": {"mathvista": 67.0, "mathvista/direct": 64.5, "mathvision": 25.7, "pope": 88.1},
}


def load(folder: str | Path) -> RunResult:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results; is {folder} an evals.run output folder?")
    return RunResult.model_validate_json(path.read_text())


def paper_number(run: RunResult, benchmark: str) -> float | None:
    name = run.model.rstrip("/").split("/")[-1]
    key = benchmark if run.prompt == "cot" else f"{benchmark}/{run.prompt}"
    return PAPER.get(name, {}).get(key)


def _label(run: RunResult, folder: str | Path) -> str:
    return f"{run.model.rstrip('/').split('/')[-1]} ({run.prompt})" if run.model else str(folder)


def table(runs: list[tuple[str, RunResult]], *, categories: bool = True) -> str:
    labels = [_label(r, f) for f, r in runs]
    head = "| benchmark | " + " | ".join(labels) + " | " + " | ".join(f"delta {lbl}" for lbl in labels[1:])
    head += " | paper |\n|---|" + "---:|" * (2 * len(runs) - 1) + "---|\n"
    rows = []
    benchmarks = sorted({b for _, r in runs for b in r.tasks})
    for b in benchmarks:
        scores = [r.tasks[b].accuracy if b in r.tasks else None for _, r in runs]
        paper = [f"{lbl}: {p}" for lbl, (_, r) in zip(labels, runs, strict=True)
                 if (p := paper_number(r, b)) is not None]
        rows.append(_row(f"**{b}**", scores, "; ".join(paper) or "-"))
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
        values = [run.tasks[b].accuracy if b in run.tasks else 0 for b in benchmarks]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="evals.run output folders; the first is the baseline")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--no-categories", action="store_true", help="benchmarks only")
    args = parser.parse_args(argv)
    try:
        runs = [(folder, load(folder)) for folder in args.runs]
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(runs, categories=not args.no_categories)
    atomic_write_text(args.out / "comparison.md", text)
    chart(runs, args.out / "comparison.png")
    print(text)
    print(f"written: {args.out / 'comparison.md'}, {args.out / 'comparison.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
