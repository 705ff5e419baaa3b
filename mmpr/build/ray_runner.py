"""``python -m mmpr.build --runner ray``: the same build as a Ray Data pipeline over a cluster.

The runner skeleton (:func:`mmpr.build.runner.run`) reads the sources and cuts the questions into the same fixed
chunks as the local runner; this executor (:class:`ActorPool`) streams the chunks not yet in the work store through
Ray Data::

    chunks of questions -> [K engine replicas: prompts, sampling, judging, pairing] -> driver: chunk files

Each replica is a Ray Data actor holding one of the project's engines (vLLM in-process, an OpenAI-compatible
fleet, transformers) and runs :func:`mmpr.build.step.process_chunk` on whole chunks, so prompts, per-request seeds,
judging and pairing are the local runner's own code, and the dataset is the same byte for byte. The driver
writes every chunk atomically as it comes back: a killed driver or worker loses at most the chunks in flight,
and a rerun skips what is on disk. Ray restarts a replica whose process dies and retries its chunk (Ray Data's
defaults for actor pools); a chunk whose processing raises is reported, left out of the work store (no dataset
is assembled), and retried by the next run. A request the engine cannot serve is an engine error of that
question alone, skipped and counted exactly as in the local runner.

The work folder (``--out``) must be on a filesystem every node sees: the replicas read the question images from
its image store.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from mmpr.build.config import BuildConfig
from mmpr.build.executor import ChunkDone, ClusterOptions, Pending, ReplicaStats
from mmpr.build.step import process_chunk
from mmpr.build.summary import BuildSummary
from mmpr.engines import make_engine
from mmpr.errors import UserError
from mmpr.schemas import SourceItem
from mmpr.store import ItemRecord

if TYPE_CHECKING:
    from mmpr.build.runner import BuildInputs


class RayBuildSummary(BuildSummary):
    """The local runner's summary, plus the work of each replica and the chunks that failed for good."""

    replicas: dict[str, ReplicaStats] = Field(default_factory=dict)
    failed_chunks: list[int] = Field(default_factory=list)
    wall_seconds: float = 0.0

    def render(self) -> str:
        lines = [super().render(), f"{'replica':<24}{'chunks':>10}{'questions':>10}{'samples':>10}{'samples/s':>11}"]
        for name, r in sorted(self.replicas.items()):
            lines.append(f"{name:<24}{r.chunks:>10}{r.questions:>10}{r.samples:>10}{r.samples_per_s:>11.1f}")
        if self.failed_chunks:
            lines.append(f"failed chunks: {len(self.failed_chunks)} ({', '.join(map(str, self.failed_chunks[:20]))}); "
                         "they are not in the dataset: rerun the same command to retry them")
        return "\n".join(lines)


def ray_summary(base: BuildSummary, replicas: dict[str, ReplicaStats], failed: list[int],
                wall_seconds: float) -> RayBuildSummary:
    """The summary of a build on Ray: ``base`` with the work of each replica and the chunks that failed."""
    return RayBuildSummary(**base.model_dump(), replicas=replicas, failed_chunks=failed, wall_seconds=wall_seconds)


def check_replicas(options: ClusterOptions) -> None:
    if options.replicas < 1:
        raise UserError(f"--replicas {options.replicas}: need at least one engine replica")


class SamplingReplica:
    """A Ray Data actor: one engine, started once, that turns chunks of questions into records."""

    def __init__(self, cfg_json: str, model: str):
        import ray

        self.cfg = BuildConfig.model_validate_json(cfg_json)
        self.engine = make_engine(self.cfg.engine, model, **self.cfg.engine_args)
        context = ray.get_runtime_context()
        self.name = f"{context.get_node_id()[:8]}/{context.get_actor_id()[:8]}"  # the id's tail is the job's

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {"index": [], "records": [], "replica": [], "seconds": []}
        for index, items_json in zip(batch["index"], batch["items"], strict=True):
            items = [SourceItem.model_validate_json(line) for line in str(items_json).splitlines()]
            start = time.perf_counter()
            records = process_chunk(items, self.engine, self.cfg)
            out["index"].append(int(index))
            out["records"].append("\n".join(r.model_dump_json() for r in records))
            out["replica"].append(self.name)
            out["seconds"].append(time.perf_counter() - start)
        return out

    def __del__(self):
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs on this node), or start a Ray instance
    on this machine. The replicas get this process's MMPR_/HF_/VLLM_ settings."""
    import ray

    if ray.is_initialized():
        return
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             runtime_env={"env_vars": engine_env()})


def engine_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The replicas' environment: this process's MMPR_/HF_/VLLM_ settings, and vLLM's CPU build's small KV cache
    (its default takes most of the RAM) as the local vLLM engine sets it for itself, so that the engines get it
    from the job, not from whatever the nodes' shells export. (GPU engines ignore it.)"""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k.startswith(("MMPR_", "HF_", "VLLM_"))}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    return env


def quiet_ray_data() -> None:
    """No Ray Data progress bars or stats logs: the build shows its own progress. Ray's own log records (a dying
    actor's traceback included) go where the build's logs go (its log file, or stderr with --verbose) instead of
    Ray's console handlers: the build reports a failure in one line."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        logger.propagate = True


class ActorPool:
    """The ``ray`` executor: ``replicas`` :class:`SamplingReplica` actors in a Ray Data actor pool, each with the
    build's engine. A chunk whose processing keeps failing is reported in the summary, not fatal."""

    def __init__(self, options: ClusterOptions | None = None):
        self.options = options or ClusterOptions()
        self.label = f"building on {self.options.replicas} replica(s)"

    def check(self, cfg: BuildConfig) -> None:
        check_replicas(self.options)
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise UserError(f"the ray runner needs Ray Data ({e}): pip install 'mmpr[ray]'") from e

    @staticmethod
    def rows(pending: Pending) -> list[dict[str, Any]]:
        """One row per pending chunk: its index and its questions as JSON lines."""
        return [{"index": index, "items": "\n".join(item.model_dump_json() for item in chunk)}
                for index, chunk in pending]

    def run(self, build: BuildInputs, pending: Pending) -> Iterator[ChunkDone]:
        import ray
        from ray.data import DataContext

        rows = self.rows(pending)
        connect(self.options.address)
        quiet_ray_data()
        DataContext.get_current().max_errored_blocks = -1  # a chunk that keeps failing is reported, not fatal
        if not rows:
            return
        opts = self.options
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map_batches(SamplingReplica, batch_size=1, compute=ray.data.ActorPoolStrategy(size=opts.replicas),
                            fn_constructor_kwargs={"cfg_json": build.cfg.model_dump_json(), "model": build.model},
                            num_cpus=opts.cpus_per_replica, num_gpus=opts.gpus_per_replica or None)
        for row in ds.iter_rows():
            yield ChunkDone(int(row["index"]), [ItemRecord.model_validate_json(line)
                                                for line in row["records"].splitlines()],
                            worker=str(row["replica"]), seconds=float(row["seconds"]))

    summary = staticmethod(ray_summary)
