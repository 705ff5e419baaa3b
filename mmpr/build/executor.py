"""What turns a build's chunks of questions into records: the executors behind the one runner skeleton
(:func:`mmpr.build.runner.run`).

The skeleton opens the build, walks its chunks in their fixed order, counts the ones already saved, hands the others
to an executor, saves each chunk the executor gives back, shows progress and writes the summary and the dataset. An
executor only makes records:

- ``local``: the engine in this process (:class:`mmpr.build.runner.LocalExecutor`);
- ``ray``: a Ray Data actor pool with one engine per replica (:class:`mmpr.build.ray_runner.ActorPool`);
- ``ray-llm``: the ``ray-llm`` engine's own executor, waves of chunks through ``ray.data.llm``'s vLLM processor
  (:class:`mmpr.build.ray_llm.ProcessorWaves`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

from mmpr.registry import Registry

if TYPE_CHECKING:
    from mmpr.build.config import BuildConfig
    from mmpr.build.runner import BuildInputs
    from mmpr.build.summary import BuildSummary
    from mmpr.schemas import SourceItem
    from mmpr.store import ItemRecord

Pending = Iterator[tuple[int, list["SourceItem"]]]  # (chunk index, its questions) for every chunk not yet saved


@dataclass
class ChunkDone:
    """The records of one chunk; ``worker`` names the replica that made them (empty: this process) and
    ``seconds`` the time it spent on them."""

    index: int
    records: list[ItemRecord]
    worker: str = ""
    seconds: float = 0.0


class ReplicaStats(BaseModel):
    """The work of one replica (a worker of a Ray executor)."""

    chunks: int = 0
    questions: int = 0
    samples: int = 0
    seconds: float = Field(default=0.0, description="Time spent making records (engine + judging).")

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    def add(self, chunk: ChunkDone) -> None:
        self.chunks += 1
        self.questions += len(chunk.records)
        self.samples += sum(len(r.responses) for r in chunk.records)
        self.seconds += chunk.seconds


@dataclass(frozen=True)
class ClusterOptions:
    """The Ray executors' settings (``--ray-address``, ``--replicas``, ...); the local executor has none."""

    address: str | None = None
    replicas: int = 1
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    chunks_per_wave: int = 16


class Executor(Protocol):
    label: str  # the progress bar's

    def check(self, cfg: BuildConfig) -> None:
        """Refuse, before anything is written, settings (or a missing dependency) this executor cannot run."""

    def run(self, build: BuildInputs, pending: Pending) -> Iterator[ChunkDone]:
        """The records of the ``pending`` chunks, in any order; a chunk never given back has failed (it is left
        for the next run)."""

    def summary(self, base: BuildSummary, replicas: dict[str, ReplicaStats], failed: list[int],
                wall_seconds: float) -> BuildSummary:
        """The build's summary: ``base`` (the counts of the saved chunks) with this executor's own report."""


EXECUTORS: Registry[Callable[[ClusterOptions], Executor]] = Registry("runner")
EXECUTORS.register("local", "mmpr.build.runner:LocalExecutor", description="the engine in this process")
EXECUTORS.register("ray", "mmpr.build.ray_runner:ActorPool",
                   description="a Ray Data actor pool, one engine (--engine) per replica")
EXECUTORS.register("ray-llm", "mmpr.build.ray_llm:ProcessorWaves",
                   description="the ray-llm engine's: waves of chunks through ray.data.llm's vLLM processor")


def executor_for(engine: str, runner: str = "local", options: ClusterOptions | None = None) -> Executor:
    """The executor of a build: an engine that is also an executor's name (``ray-llm``) brings its own, on any
    runner; every other engine runs on ``runner``'s."""
    return EXECUTORS.get(engine if engine in EXECUTORS else runner)(options or ClusterOptions())
