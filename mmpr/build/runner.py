"""Run a build: the one skeleton (:func:`run`) walks the chunks, hands those not yet saved to an executor
(:mod:`mmpr.build.executor`; :class:`LocalExecutor` is this process's), saves them as they come back (resumable),
then assembles the dataset folder; :func:`merge` joins the work of several ``--shard i/N`` runs."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mmpr.build.config import BuildConfig
from mmpr.build.executor import ChunkDone, ClusterOptions, Executor, ReplicaStats, executor_for
from mmpr.build.step import in_shard, process_chunk
from mmpr.build.summary import BuildSummary
from mmpr.dataset_writer import SubsetInput, write_dataset
from mmpr.engines import Engine, make_engine
from mmpr.errors import UserError
from mmpr.io import atomic_path
from mmpr.locations import (
    changed_settings,
    check_inputs_apart,
    check_out,
    claim,
    claimed_by,
    looks_local,
    new_folder,
)
from mmpr.model_ref import check_model
from mmpr.problems import ProblemLog
from mmpr.prompts import get_template
from mmpr.schemas import GeneratorInfo, PreferencePair, PromptInfo, SourceInfo, SourceItem
from mmpr.sources import kept_apart, make_source
from mmpr.store import WORK_DIR, ItemRecord, WorkStore

RELEASE_MARKER = ".mmpr-build-release.json"  # the build a --release-out folder belongs to


def _chunks(items: Iterable[SourceItem], size: int) -> Iterator[tuple[int, list[SourceItem]]]:
    it = iter(items)
    for index in itertools.count():
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield index, chunk


LOG_FILE = "build.log"


def holds_a_build(out: Path) -> bool:
    """``out`` holds a build (its work config), or only the log of one that stopped before writing it."""
    if (out / WORK_DIR / "config.json").is_file():
        return True
    return [p.relative_to(out) for p in out.rglob("*") if p.is_file()] == [Path(WORK_DIR) / LOG_FILE]


@dataclass
class BuildInputs:
    """An opened build: its sources, its work store, and the questions of its shard in their fixed order.
    Every runner (this process, or a Ray cluster) cuts the same chunks from it and saves them in the same store."""

    cfg: BuildConfig
    model: str
    sources: list
    store: WorkStore
    problems: ProblemLog = field(default_factory=ProblemLog)
    counts: Counter = field(default_factory=Counter)

    @property
    def shard_name(self) -> str:
        return self.cfg.shard.replace("/", "of")

    @property
    def total(self) -> int | None:
        """Questions expected in this shard (an estimate for N > 1), for progress bars."""
        return sum(len(s) for s in self.sources) // int(self.cfg.shard.split("/")[1]) or None

    def items(self) -> Iterator[SourceItem]:
        for source in self.sources:
            for item in source.items(self.store.images, self.problems):
                if in_shard(item.id, self.cfg.shard):
                    self.counts[source.name] += 1
                    yield item

    def chunks(self) -> Iterator[tuple[int, list[SourceItem]]]:
        """``(index, questions)`` for every chunk of the shard, done or not (chunk boundaries never move)."""
        return _chunks(self.items(), self.cfg.batch_size)


def check_build(cfg: BuildConfig, *, overwrite: bool = False) -> str:
    """What every runner checks before it touches ``--out``: the model (returned resolved), the sources' local
    paths, and ``--out`` (new, empty, or this same build unless ``overwrite``)."""
    model = check_model(cfg.model, served=cfg.engine == "openai")
    for spec in cfg.sources:
        if spec.path and looks_local(spec.path) and not Path(spec.path).expanduser().exists():
            raise UserError(f"source {spec.name}: {spec.path}: no such file or folder; check the path")
    check_folders(cfg, overwrite=overwrite)
    return model


def check_folders(cfg: BuildConfig, *, overwrite: bool = False) -> None:
    """``--out`` (and ``--release-out``): never an input or holding one, and new, empty, or this same build unless
    ``overwrite``."""
    inputs = [("--model", cfg.model), *((f"source {s.name}", s.path) for s in cfg.sources)]
    check_inputs_apart(cfg.out, inputs)
    if cfg.release_out is not None:
        check_inputs_apart(cfg.release_out, [*inputs, ("--out", cfg.out)], what_out="--release-out")
        check_out(cfg.release_out, marker="this build's release layout", same_job=_release_of(cfg),
                  overwrite=overwrite, what="--release-out")
    check_out(cfg.out, marker="a build", same_job=holds_a_build, overwrite=overwrite)


def _release_of(cfg: BuildConfig) -> Callable[[Path], bool]:
    """A --release-out folder this build wrote (or began to) before: a rerun writes it again."""
    return claimed_by(RELEASE_MARKER, {"build": str(Path(cfg.out).expanduser().resolve())})


def open_build(cfg: BuildConfig, model: str, *, overwrite: bool = False) -> BuildInputs:
    """Open the sources and the work store (refusing to resume a build with other settings)."""
    sources = kept_apart([make_source(spec).open() for spec in cfg.sources])
    store = WorkStore(cfg.out)
    store.check_config(cfg.fingerprint(), overwrite=overwrite)
    return BuildInputs(cfg, model, sources, store)


def finish(build: BuildInputs, *, assemble_dataset: bool = True,
           check: Callable[[BuildSummary], None] | None = None) -> BuildSummary:
    """Summarise the chunks on disk; ``check`` sees the summary first (the CLI refuses to write 0 pairs); then
    assemble the dataset unless this is one shard of several (or told not to)."""
    summary = BuildSummary()
    for record in build.store.records():
        summary.add(record)
    summary.add_source_problems(build.problems)
    if check is not None:
        check(summary)
    if assemble_dataset and int(build.cfg.shard.split("/")[1]) == 1:
        source_infos = [s.info(build.counts[s.name]) for s in build.sources]
        assemble(build.cfg, [build.store], source_infos, summary)
    return summary


def run(cfg: BuildConfig, *, executor: Executor | None = None, progress: bool = True, overwrite: bool = False,
        check: Callable[[BuildSummary], None] | None = None) -> BuildSummary:
    """Run (or resume) a build with ``executor`` (default: the engine's, else this process); assemble the dataset
    unless this is one shard of several or some chunks failed.

    ``--out`` must be new, empty, or hold this same build (a resume); anything else needs ``overwrite``.
    ``check`` sees the summary before the dataset is written. A run that fails on its input removes the folder
    it created; an interrupted one keeps its work for the rerun."""
    executor = executor or executor_for(cfg.engine)
    executor.check(cfg)
    model = check_build(cfg, overwrite=overwrite)
    with new_folder(cfg.out, only=UserError):
        return _run(open_build(cfg, model, overwrite=overwrite), executor, progress=progress, check=check)


def pending(build: BuildInputs, saved: Callable[[list[ItemRecord]], None]) -> Iterator[tuple[int, list[SourceItem]]]:
    """The chunks of the build not yet in its work store, in order; the records of the saved ones go to ``saved``
    as the walk passes them (chunk boundaries never move, so a resume skips exactly what is on disk)."""
    for index, chunk in build.chunks():
        if build.store.has_chunk(build.shard_name, index):
            saved(list(build.store.chunk_records(build.shard_name, index)))
        else:
            yield index, chunk


class _Progress:
    """The bar of a build: questions done (saved before or made now), samples per second, pairs, skipped."""

    def __init__(self, build: BuildInputs, label: str, enabled: bool):
        self.bar = tqdm(total=build.total, unit="q", desc=label, disable=not enabled, dynamic_ncols=True)
        self.problems = build.problems
        self.pairs = self.samples = self.skipped = 0
        self.started: float | None = None

    def add(self, records: list[ItemRecord], made: ChunkDone | None = None) -> None:
        if made is not None:
            if self.started is None:  # from the start of the first chunk made, not of the engine
                self.started = time.monotonic() - made.seconds
            self.samples += sum(len(r.responses) for r in records)
        self.pairs += sum(len(r.pairs) for r in records)
        self.skipped += sum(r.problem is not None for r in records)  # as the summary counts them, with the sources'
        elapsed = time.monotonic() - self.started if self.started is not None else 0.0
        self.bar.set_postfix(samples_per_s=f"{self.samples / max(elapsed, 1e-9):.1f}", pairs=self.pairs,
                             skipped=self.skipped + self.problems.total, refresh=False)
        self.bar.update(len(records))

    def close(self) -> None:
        self.bar.close()


def _run(build: BuildInputs, executor: Executor, *, progress: bool,
         check: Callable[[BuildSummary], None] | None) -> BuildSummary:
    """The one skeleton: resume, hand the pending chunks to ``executor``, save and count what comes back, sum up."""
    started = time.monotonic()
    bar = _Progress(build, executor.label, progress)
    sent: list[int] = []
    done: set[int] = set()
    replicas: dict[str, ReplicaStats] = {}

    def to_make() -> Iterator[tuple[int, list[SourceItem]]]:
        for index, chunk in pending(build, bar.add):
            sent.append(index)
            yield index, chunk

    try:
        with closing(executor.run(build, to_make())) as made:
            for chunk in made:
                build.store.write_chunk(build.shard_name, chunk.index, chunk.records)
                done.add(chunk.index)
                bar.add(chunk.records, chunk)
                if chunk.worker:
                    replicas.setdefault(chunk.worker, ReplicaStats()).add(chunk)
    finally:
        bar.close()
    failed = [index for index in sent if index not in done]
    base = finish(build, assemble_dataset=not failed, check=None if failed else check)
    return executor.summary(base, replicas, failed, time.monotonic() - started)


class LocalExecutor:
    """The engine in this process, started at the first chunk not yet saved (a finished build starts none)."""

    label = "building"

    def __init__(self, options: ClusterOptions | None = None):
        """``options`` are the Ray executors' settings: this one has none."""

    def check(self, cfg: BuildConfig) -> None:
        pass

    def run(self, build: BuildInputs, pending: Iterator[tuple[int, list[SourceItem]]]) -> Iterator[ChunkDone]:
        engine: Engine | None = None
        try:
            for index, chunk in pending:
                if engine is None:
                    engine = make_engine(build.cfg.engine, build.model, **build.cfg.engine_args)
                start = time.monotonic()
                records = process_chunk(chunk, engine, build.cfg)
                yield ChunkDone(index, records, seconds=time.monotonic() - start)
        finally:
            if engine is not None:
                engine.close()

    def summary(self, base: BuildSummary, replicas: dict[str, ReplicaStats], failed: list[int],
                wall_seconds: float) -> BuildSummary:
        return base


def _pairs_by_subset(stores: list[WorkStore], scratch: Path) -> dict[str, Path]:
    """Spill the pairs of all records into one jsonl per subset, so each subset can be streamed."""
    files: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    try:
        for store in stores:
            for record in store.records():
                for pair in record.pairs:
                    if pair.subset not in files:
                        paths[pair.subset] = scratch / f"{len(paths):05d}.jsonl"
                        files[pair.subset] = open(paths[pair.subset], "w", encoding="utf-8")
                    files[pair.subset].write(pair.model_dump_json() + "\n")
    finally:
        for f in files.values():
            f.close()
    return dict(sorted(paths.items()))


def _read_pairs(path: Path) -> Iterator[PreferencePair]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield PreferencePair.model_validate_json(line)


def assemble(cfg: BuildConfig, stores: list[WorkStore], sources: list[SourceInfo], summary: BuildSummary):
    """Write the dataset folder (parquet + card + manifest) from the records of ``stores``."""
    out = Path(cfg.out)
    scratch = stores[0].root / "assemble"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        by_subset = _pairs_by_subset(stores, scratch)
        template = get_template(cfg.prompt)
        manifest = write_dataset(
            out, [SubsetInput(name, _read_pairs(path)) for name, path in by_subset.items()],
            name=cfg.name or out.resolve().name, version=cfg.version or "1.0.0",
            manifest_fields={
                "generator": GeneratorInfo(model=cfg.model, engine=cfg.engine, sampling=cfg.sampling),
                "prompt": PromptInfo(name=template.name, template=template.template),
                "sources": sources,
                "extra": {"summary": summary.render().splitlines()[0], "build": summary.model_dump(),
                          "pipeline": cfg.model_dump(mode="json", include={
                              "max_pairs_per_question", "dropout_ntp_ratio", "correctness_skip_categories"})}})
    finally:
        for f in scratch.glob("*.jsonl"):
            f.unlink()
    if cfg.release_out is not None:
        from mmpr.export import export

        claim(cfg.release_out, RELEASE_MARKER, {"build": str(out.expanduser().resolve())})
        export(out, "mmpr", cfg.release_out, progress=False)
    return manifest


def merge(shard_dirs: list[Path], cfg_out: Path, *, name: str | None = None, version: str | None = None,
          overwrite: bool = False):
    """Join the work of several ``--shard i/N`` runs into one dataset at ``cfg_out``."""
    stores = [WorkStore(d) for d in shard_dirs]
    configs = []
    for store in stores:
        path = store.root / "config.json"
        if not path.exists():
            raise UserError(f"{store.root.parent}: not a build folder (no {WORK_DIR}/{path.name}); give the --out "
                            f"folders of the shard runs")
        configs.append(json.loads(path.read_text()))
    shards = sorted(c.pop("shard") for c in configs)
    changed = sorted({key for c in configs for key in changed_settings(configs[0], c)})
    if changed:
        raise UserError(f"the shards were built with different settings ({', '.join(changed)}); only --shard may "
                        f"differ")
    n = int(shards[0].split("/")[1])
    expected = [f"{i}/{n}" for i in range(n)]
    if shards != expected:
        raise UserError(f"shards {', '.join(shards)} given; a full set is {', '.join(expected)}")
    cfg = BuildConfig.model_validate({**configs[0], "shard": "0/1", "out": cfg_out, "name": name,
                                      "version": version})
    summary = BuildSummary()
    for store in stores:
        for record in store.records():
            summary.add(record)
    sources = [SourceInfo(name=name, location="(merged shards)", num_items=s.questions)
               for name, s in sorted(summary.sources.items())]
    check_out(cfg_out, marker="a merge", overwrite=overwrite,
              same_job=lambda out: (out / WORK_DIR / "merged_from.json").is_file())
    merged = WorkStore(cfg_out)
    merged.root.mkdir(parents=True, exist_ok=True)
    with atomic_path(merged.root / "merged_from.json") as tmp:
        tmp.write_text(json.dumps([str(d) for d in shard_dirs]))
    assemble(cfg, [merged, *stores], sources, summary)
    return summary

