"""The ``synthetic_grid`` benchmark of ``evals.run``: the held-out questions written by ``python -m
experiments.tiny_grid.generate data OUT`` (``OUT/test.parquet``, local only), scored by ``task/utils.py``.
Registered by name in :data:`evals.registry.BENCHMARKS` as a lazy entry; in no preset."""

from __future__ import annotations

from evals.registry import Benchmark

BENCHMARK = Benchmark(name="synthetic_grid", package="experiments.tiny_grid", folder="task",
                      task="mmpr_synthetic_grid", dataset="", split="test",
                      fields=("id", "question", "answer", "answer_type", "kind", "image"), prompts=("cot", "direct"),
                      scorer="integer count, or yes / no", max_new_tokens={"cot": 128, "direct": 16})
