"""``python -m mmpr.build --runner ray``: the same build as a Ray Data pipeline over a cluster.

The driver reads the sources and cuts the questions into the same fixed chunks as the local runner; the chunks
not yet in the work store stream through Ray Data::

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
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field
from tqdm import tqdm

from mmpr.build.config import BuildConfig
from mmpr.build.runner import BuildInputs, check_build, finish, open_build
from mmpr.build.step import process_chunk
from mmpr.build.summary import BuildSummary
from mmpr.engines import make_engine
from mmpr.errors import UserError
from mmpr.locations import new_folder
from mmpr.schemas import SourceItem
from mmpr.store import ItemRecord


class ReplicaStats(BaseModel):
    chunks: int = 0
    questions: int = 0
    samples: int = 0
    seconds: float = Field(default=0.0, description="Time spent in process_chunk (engine + judging).")

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


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


def _pending(build: BuildInputs) -> Iterator[dict[str, Any]]:
    for index, chunk in build.chunks():
        if not build.store.has_chunk(build.shard_name, index):
            yield {"index": index, "items": "\n".join(item.model_dump_json() for item in chunk)}


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


def run(cfg: BuildConfig, *, address: str | None = None, replicas: int = 1, cpus_per_replica: float = 1.0,
        gpus_per_replica: float = 0.0, progress: bool = True, overwrite: bool = False,
        check: Callable[[BuildSummary], None] | None = None) -> RayBuildSummary:
    """Run (or resume) ``cfg`` on a Ray cluster with ``replicas`` engine replicas; assemble the dataset unless
    this is one shard of several or some chunks failed. ``--out`` is checked as by the local runner."""
    if replicas < 1:
        raise UserError(f"--replicas {replicas}: need at least one engine replica")
    try:
        import ray  # noqa: F401
    except ImportError as e:
        raise UserError(f"the ray runner needs Ray Data ({e}): pip install 'mmpr[ray]'") from e
    model = check_build(cfg, overwrite=overwrite)
    with new_folder(cfg.out, only=UserError):
        return _run(open_build(cfg, model, overwrite=overwrite), address=address, replicas=replicas,
                    cpus_per_replica=cpus_per_replica, gpus_per_replica=gpus_per_replica, progress=progress,
                    check=check)


def _run(build: BuildInputs, *, address: str | None, replicas: int, cpus_per_replica: float,
         gpus_per_replica: float, progress: bool, check: Callable[[BuildSummary], None] | None) -> RayBuildSummary:
    import ray
    from ray.data import DataContext

    cfg, store = build.cfg, build.store
    rows = list(_pending(build))
    connect(address)
    quiet_ray_data()
    DataContext.get_current().max_errored_blocks = -1  # a chunk that keeps failing is reported, not fatal
    stats: dict[str, ReplicaStats] = {}
    done: set[int] = set()
    started = time.monotonic()
    bar = tqdm(total=len(rows), unit="chunk", desc=f"building on {replicas} replica(s)", disable=not progress,
               dynamic_ncols=True)
    try:
        if rows:
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            ds = ds.map_batches(SamplingReplica, batch_size=1, compute=ray.data.ActorPoolStrategy(size=replicas),
                                fn_constructor_kwargs={"cfg_json": cfg.model_dump_json(), "model": build.model},
                                num_cpus=cpus_per_replica, num_gpus=gpus_per_replica or None)
            samples = pairs = 0
            for row in ds.iter_rows():
                records = [ItemRecord.model_validate_json(line) for line in row["records"].splitlines()]
                store.write_chunk(build.shard_name, int(row["index"]), records)
                done.add(int(row["index"]))
                s = stats.setdefault(str(row["replica"]), ReplicaStats())
                s.chunks += 1
                s.questions += len(records)
                s.samples += sum(len(r.responses) for r in records)
                s.seconds += float(row["seconds"])
                samples += sum(len(r.responses) for r in records)
                pairs += sum(len(r.pairs) for r in records)
                bar.set_postfix(samples_per_s=f"{samples / max(time.monotonic() - started, 1e-9):.1f}", pairs=pairs,
                                refresh=False)
                bar.update(1)
    finally:
        bar.close()
    failed = sorted(r["index"] for r in rows if r["index"] not in done)
    base = finish(build, assemble_dataset=not failed, check=None if failed else check)
    return RayBuildSummary(**base.model_dump(), replicas=stats, failed_chunks=failed,
                           wall_seconds=time.monotonic() - started)
