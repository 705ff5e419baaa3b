from pathlib import Path

from evals.registry import BENCHMARKS, PRESETS, get

TASK = Path(__file__).resolve().parents[3] / "experiments" / "tiny_grid" / "task"


def test_evals_finds_the_experiments_benchmark_by_name_and_its_task_folder():
    bench = get("synthetic_grid")
    assert "synthetic_grid" in BENCHMARKS.names() and bench.package == "experiments.tiny_grid"
    assert bench.task_dir() == TASK and bench.utils().__name__ == "experiments.tiny_grid.task.utils"
    assert all("synthetic_grid" not in names for names in PRESETS.values())
