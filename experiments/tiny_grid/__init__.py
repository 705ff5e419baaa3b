"""The paper's two effects in miniature, on a CPU: a synthetic grid-counting task and a tiny Qwen2-VL.

- :mod:`.generate`: the task's questions, images, evaluation sets and supervised rows, and the tiny model
  (``python -m experiments.tiny_grid.generate``);
- :mod:`.source`: the ``synthetic_grid`` source of ``mmpr.build`` (its ``train.jsonl``);
- :mod:`.benchmark` and ``task/utils.py``: the ``synthetic_grid`` benchmark of ``evals.run``;
- :mod:`.report`: ``results.json``, ``results.md`` and ``results.png`` of a run (``python -m
  experiments.tiny_grid.report OUT``);
- ``reproduce.sh``: the whole run; ``LOG.md``: the search and its numbers.
"""
