"""``python -m mmpr.build``: questions -> sampled CoT answers -> judged -> preference pairs -> a versioned dataset.

- :mod:`mmpr.build.config`: :class:`BuildConfig`, every setting (the YAML keys).
- :mod:`mmpr.build.step`: :func:`process_chunk`, one chunk of questions through the engine and the judges
  (:func:`process_chunks` for several, built from ``answer_requests``, ``judge_answers``, ``pair_continuations``).
- :mod:`mmpr.build.summary`: :class:`BuildSummary`, the counts and their table.
- :mod:`mmpr.build.runner`: :func:`run`, the one skeleton (resumable), :func:`assemble`, :func:`merge` of shards.
- :mod:`mmpr.build.executor`: the executors that make a build's records, chosen by name (``EXECUTORS``).
- :mod:`mmpr.build.ray_runner`: the same build as a Ray Data actor pool over a cluster (``--runner ray``).
- :mod:`mmpr.build.ray_llm`: the same build with its sampling on ``ray.data.llm``'s vLLM processor
  (``--engine ray-llm``).
- :mod:`mmpr.build.cli`: the command line (not imported here: the library does not need it).
"""

from mmpr.build.config import BuildConfig
from mmpr.build.runner import assemble, merge, run
from mmpr.build.step import process_chunk, prompt_for, route_of
from mmpr.build.summary import BuildSummary, SourceStats

__all__ = ["BuildConfig", "BuildSummary", "SourceStats", "assemble", "merge",
           "process_chunk", "prompt_for", "route_of", "run"]
