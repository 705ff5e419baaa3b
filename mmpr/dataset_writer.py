"""Preference pairs -> a Hugging Face dataset folder that ``datasets.load_dataset`` reads with no custom code.

Layout (the same locally and on the Hub)::

    README.md                          dataset card; its YAML ``configs:`` has one config per subset + "all"
    manifest.json                      :class:`mmpr.schemas.Manifest`, written last
    data/<config>/train-00000.parquet  shards of bounded size, images embedded as bytes

A subset is published as the config :func:`config_name` of its name (``openbmb/RLAIF-V-Dataset`` ->
``openbmb__RLAIF-V-Dataset``); the original name stays in each row's ``subset``, in the manifest and in the card.
A subset with no pairs gets no config (``datasets`` cannot load an empty one); the manifest lists it with the
reason under ``extra["empty_subsets"]``.

Every shard carries the explicit schema :data:`ROW_COLUMNS` (images as the ``Image`` feature), so
``load_dataset(folder)``, ``load_dataset(folder, "<subset>")`` and ``load_dataset("org/name")`` return typed
rows with decoded images. Pairs are streamed: memory does not grow with the number of pairs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from mmpr.errors import NothingMade
from mmpr.images import bytes_digest
from mmpr.io import atomic_write_text
from mmpr.locations import without_local_paths
from mmpr.schemas import ALL_CONFIG, LengthStats, Manifest, PreferencePair, SubsetInfo
from mmpr.versioning import ContentHash, pair_digest

if TYPE_CHECKING:
    from datasets import Features

ROW_COLUMNS: dict[str, str] = {name: "images" if name == "images" else "string"
                               for name in PreferencePair.model_fields}
"""The row schema, derived from :class:`~mmpr.schemas.PreferencePair` (the one definition): one row per pair, a
column per field. ``metadata`` is a JSON object (free-form per source) in a string; ``images[i].path`` keeps the
image's name relative to its source folder, so an export restores the original layout."""

TRAINING_COLUMNS = ("id", "question", "images", "chosen", "rejected")
"""The columns the trainer reads (:func:`mpo_train.data.open_pairs`)."""


def features(columns: Iterable[str] = tuple(ROW_COLUMNS)) -> Features:
    """The ``datasets`` features of ``columns`` of :data:`ROW_COLUMNS` (images as a list of the ``Image``
    feature): the schema every shard carries, so rows load typed with decoded images."""
    from datasets import Features, Image, List, Value

    kinds = {"string": Value("string"), "images": List(Image())}
    return Features({name: kinds[ROW_COLUMNS[name]] for name in columns})


DATA_DIR = "data"
MANIFEST = "manifest.json"
CARD = "README.md"
STAGING_PREFIX = ".staging-"


class EmptyDatasetError(NothingMade):
    """Every subset came out empty: there is nothing ``datasets`` could load."""


@dataclass
class SubsetInput:
    """Pairs of one subset, and the folder their image names are relative to. ``why_empty`` says, once the
    pairs are read, why there were none (the default reason is just that)."""

    name: str
    pairs: Iterable[PreferencePair]
    image_root: Path | None = None
    repeat_time: float = 1.0
    repeat_applied: bool = True
    why_empty: Callable[[], str] | None = None


_CONFIG_UNSAFE = re.compile(r"[^A-Za-z0-9_.+\-]")


def config_name(subset: str) -> str:
    """The ``datasets`` config (and data folder) name of a subset: ``/`` becomes ``__``, any other character that
    is not a letter, digit, ``_``, ``.``, ``+`` or ``-`` becomes ``_`` (``datasets`` refuses ``<>:/\\|?*`` in
    config names, and the name is also a folder and a glob)."""
    name = _CONFIG_UNSAFE.sub("_", subset.replace("/", "__")).strip(".")
    return name or "subset"


def _unique_config(subset: str, taken: set[str]) -> str:
    """:func:`config_name`, made distinct from the configs already taken (and from "all")."""
    base = config_name(subset)
    name, n = base, 1
    while name in taken or name == ALL_CONFIG:
        n += 1
        name = f"{base}-{n}"
    return name


class _Reservoir:
    """Mean, max and percentiles of a stream; percentiles from a seeded 10k reservoir sample."""

    def __init__(self, size: int = 10_000, seed: int = 0):
        self.size, self.rng = size, random.Random(seed)
        self.sample: list[int] = []
        self.n = self.total = self.max = 0

    def add(self, x: int) -> None:
        self.n += 1
        self.total += x
        self.max = max(self.max, x)
        if len(self.sample) < self.size:
            self.sample.append(x)
        else:
            j = self.rng.randrange(self.n)
            if j < self.size:
                self.sample[j] = x

    def stats(self) -> LengthStats | None:
        if not self.n:
            return None
        s = sorted(self.sample)
        return LengthStats(mean=round(self.total / self.n, 1), p50=s[len(s) // 2], p95=s[min(len(s) - 1,
                           int(len(s) * 0.95))], max=self.max)


@dataclass
class _Stats:
    hash: ContentHash = field(default_factory=ContentHash)
    lengths: dict[str, _Reservoir] = field(default_factory=lambda: {k: _Reservoir() for k in
                                                                       ("question", "chosen", "rejected")})


def image_namer(root: Path | None) -> Callable[[str], str]:
    """Names images by their path relative to ``root`` (basename when outside it or with no root)."""
    prefixes = [] if root is None else sorted({str(root).rstrip(os.sep) + os.sep,
                                               str(root.resolve()).rstrip(os.sep) + os.sep}, key=len, reverse=True)

    def relative(path: str) -> str | None:
        for prefix in prefixes:
            if path.startswith(prefix):
                return Path(path[len(prefix):]).as_posix()
        return None

    def name(path: str) -> str:
        return relative(path) or relative(os.path.realpath(path)) or os.path.basename(path)

    return name


class ShardWriter:
    """Parquet shards of at most ``max_shard_bytes`` (of row data) under one subset folder."""

    def __init__(self, folder: Path, max_shard_bytes: int, rows_per_group: int, schema: Features | None = None):
        self.folder, self.max_shard_bytes, self.rows_per_group = folder, max_shard_bytes, rows_per_group
        self.schema = (schema or features()).arrow_schema
        self.rows: list[dict] = []
        self.buffered = self.shard_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.files: list[Path] = []

    def add(self, row: dict, nbytes: int) -> None:
        self.rows.append(row)
        self.buffered += nbytes
        if len(self.rows) >= self.rows_per_group or self.buffered >= 64 << 20:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None or self.shard_bytes >= self.max_shard_bytes:
            self._close_file()
            path = self.folder / f"train-{len(self.files):05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, self.schema)
            self.files.append(path)
            self.shard_bytes = 0
        table = pa.Table.from_pylist(self.rows, schema=self.schema)
        self.writer.write_table(table)
        self.shard_bytes += self.buffered
        self.rows, self.buffered = [], 0

    def _close_file(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self) -> list[Path]:
        self._flush()
        self._close_file()
        return self.files


def write_dataset(out_dir: str | Path, subsets: Iterable[SubsetInput], *, name: str, version: str = "1.0.0",
                  manifest_fields: dict | Callable[[], dict] | None = None, max_shard_bytes: int = 500 << 20,
                  rows_per_group: int = 128, on_pair: Callable[[PreferencePair], None] | None = None) -> Manifest:
    """Write ``subsets`` as a dataset folder (see module doc) and return its manifest.

    The data is written to a staging folder and moved into place at the end, manifest last, so an
    interrupted run never leaves a folder that looks complete. ``manifest_fields`` adds generator, prompt,
    sources, history or extra to the manifest (a callable is called once the pairs are written, for summaries of
    the reading); raises :class:`EmptyDatasetError`, leaving ``out_dir`` as it was, when no subset has a pair;
    ``on_pair`` is called after each pair (progress bars).
    """
    from cards import render_dataset_card

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f"{STAGING_PREFIX}*"):  # a killed run's unfinished staging: this writer's own
        shutil.rmtree(stale, ignore_errors=True)
    staging = out_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    stats = _Stats()
    infos: dict[str, SubsetInfo] = {}
    seen: set[str] = set()
    empty: dict[str, str] = {}
    try:
        for subset in subsets:
            if subset.name in seen:
                raise ValueError(f"subset {subset.name!r} given twice")
            seen.add(subset.name)
            config = _unique_config(subset.name, set(infos))
            info = _write_subset(staging / DATA_DIR / config, subset, stats, max_shard_bytes, rows_per_group, on_pair)
            if info.num_pairs:
                infos[config] = info.model_copy(update={"release_name": None if config == subset.name
                                                        else subset.name})
            else:
                empty[subset.name] = subset.why_empty() if subset.why_empty else "no pairs"
        if not infos:
            reasons = "; ".join(f"{k}: {v}" for k, v in empty.items()) or "no subsets were given"
            raise EmptyDatasetError(f"no pairs to write ({reasons})")
        fields = dict((manifest_fields() if callable(manifest_fields) else manifest_fields) or {})
        if empty:
            fields["extra"] = {**fields.get("extra", {}), "empty_subsets": empty}
        manifest = _published(Manifest(name=name, dataset_version=version, content_hash=stats.hash.hexdigest(),
                                       num_pairs=stats.hash.count, subsets=infos,
                                       lengths={k: s for k, r in stats.lengths.items() if (s := r.stats())},
                                       **fields))
        final_data = out_dir / DATA_DIR
        if final_data.exists():
            shutil.rmtree(final_data)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        if (staging / DATA_DIR).exists():
            (staging / DATA_DIR).rename(final_data)
        else:
            final_data.mkdir()
        atomic_write_text(out_dir / CARD, render_dataset_card(manifest, folder=out_dir.resolve().name))
        atomic_write_text(out_dir / MANIFEST, manifest.model_dump_json(indent=2) + "\n")
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _published(manifest: Manifest) -> Manifest:
    """The manifest as it may be pushed: where the data came from, with no folder of this machine in it."""
    data = manifest.model_dump(mode="json")
    for key in ("sources", "generator", "extra"):
        data[key] = without_local_paths(data[key])
    return Manifest.model_validate(data)


def _write_subset(folder: Path, subset: SubsetInput, stats: _Stats, max_shard_bytes: int, rows_per_group: int,
                  on_pair: Callable[[PreferencePair], None] | None) -> SubsetInfo:
    writer = ShardWriter(folder, max_shard_bytes, rows_per_group)
    image_name = image_namer(subset.image_root)
    kinds: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for pair in subset.pairs:
        if pair.subset != subset.name:
            raise ValueError(f"pair {pair.id} belongs to subset {pair.subset!r}, not {subset.name!r}")
        images = [{"bytes": _read(p), "path": image_name(p)} for p in pair.images]
        stats.hash.add(pair_digest(pair, [bytes_digest(i["bytes"]) for i in images]))
        for key in ("question", "chosen", "rejected"):
            stats.lengths[key].add(len(getattr(pair, key).split()))
        row = pair.model_dump(exclude={"images", "metadata"})
        row["images"] = images
        row["metadata"] = json.dumps(pair.metadata, sort_keys=True, ensure_ascii=False)
        writer.add(row, sum(len(i["bytes"]) for i in images) + len(pair.chosen) + len(pair.rejected)
                   + len(pair.question))
        kinds[pair.kind] += 1
        categories[pair.category] += 1
        sources[pair.source] += 1
        if on_pair is not None:
            on_pair(pair)
    writer.close()
    return SubsetInfo(num_pairs=sum(kinds.values()), kinds=dict(kinds), categories=dict(categories),
                      sources=dict(sources), repeat_time=subset.repeat_time, repeat_applied=subset.repeat_applied)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_manifest(folder: str | Path) -> Manifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {folder} a dataset written by mmpr?")
    return Manifest.model_validate_json(path.read_text())


def open_dataset(location: str | Path, *, subset: str | None = None, revision: str | None = None,
                 streaming: bool = True, decode_images: bool = True):
    """A dataset written by :func:`write_dataset`, from a folder or a Hub repo id (``train`` split).

    Streaming by default, so reading a large dataset neither copies it into the cache nor loads it whole.
    ``decode_images=False`` yields ``{"bytes", "path"}`` per image instead of PIL images.
    """
    from datasets import Image, List, load_dataset

    kwargs = {}
    if not streaming and Path(location).is_dir():
        kwargs["cache_dir"] = _local_cache_dir(Path(location))
    ds = load_dataset(str(location), subset or ALL_CONFIG, split="train", revision=revision, streaming=streaming,
                      **kwargs)
    if not decode_images:
        ds = ds.cast_column("images", List(Image(decode=False)))
    return ds


def _local_cache_dir(folder: Path) -> str:
    """A cache folder of this dataset folder alone. datasets keys the cache of a local folder by its name and its
    files' relative paths and times, so two folders named alike with files written in the same second would share
    (and return) one cache."""
    from datasets import config

    files = sorted(p for p in (folder / DATA_DIR).rglob("*.parquet"))
    stamp = [str(folder.resolve())] + [f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                       for p in files]
    digest = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    return str(Path(config.HF_DATASETS_CACHE) / "mmpr-local" / digest)


def subsets_of(location: str | Path, *, revision: str | None = None) -> list[str]:
    """The config names (other than "all") of a dataset folder or Hub repo, one per non-empty subset."""
    from datasets import get_dataset_config_names

    return [c for c in get_dataset_config_names(str(location), revision=revision) if c != ALL_CONFIG]
