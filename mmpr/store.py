"""The build's work folder: what has been sampled, judged and paired, one atomic file per chunk of questions.

Layout under ``<out>/.mmpr-work/``::

    config.json                  the settings that decide the output; a rerun must match them
    images/                      content-addressed images of the source items
    chunks/<shard>-<index>.jsonl one :class:`ItemRecord` per line, written atomically when the chunk is done

A killed build loses at most the chunk in flight; a rerun skips the chunks on disk, so nothing is done twice
and nothing is lost. Chunks are fixed slices of the (deterministic) item order of a shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mmpr.images import ImageStore
from mmpr.io import atomic_path, atomic_write_text
from mmpr.locations import check_same_settings
from mmpr.problems import Problem
from mmpr.release import remap
from mmpr.schemas import Judgement, PreferencePair, Response, SourceItem

WORK_DIR = ".mmpr-work"

Route = Literal["correctness", "dropout_ntp"]


class ItemRecord(BaseModel):
    """Everything the build did with one question."""

    model_config = ConfigDict(extra="forbid")

    item: SourceItem
    route: Route
    prompt: str = Field(description="The user turn the model saw.")
    responses: list[Response] = Field(default_factory=list)
    judgements: list[Judgement] = Field(default_factory=list)
    continuation: str | None = Field(default=None, description="DropoutNTP: the continuation without image.")
    pairs: list[PreferencePair] = Field(default_factory=list)
    outcome: str = Field(description="paired, all_correct, all_wrong, all_unparsable, no_pairs or skipped.")
    problem: Problem | None = Field(default=None, description="Why the question was skipped, if it was.")


class WorkStore:
    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir) / WORK_DIR
        self.chunks = self.root / "chunks"
        self.images = ImageStore(self.root / "images")

    def check_config(self, config: dict, *, overwrite: bool = False) -> None:
        """Record ``config``, or check it equals the one recorded by an earlier run in this folder."""
        path = self.root / "config.json"
        if path.exists() and not overwrite:
            check_same_settings(json.loads(path.read_text()), config, where=str(path), what="a build")
            return
        if overwrite and self.chunks.exists():
            for f in self.chunks.glob("*.jsonl"):
                f.unlink()
        atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def chunk_path(self, shard: str, index: int) -> Path:
        return self.chunks / f"{shard}-{index:06d}.jsonl"

    def has_chunk(self, shard: str, index: int) -> bool:
        return self.chunk_path(shard, index).exists()

    def write_chunk(self, shard: str, index: int, records: list[ItemRecord]) -> None:
        with atomic_path(self.chunk_path(shard, index)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(record.model_dump_json() + "\n")

    def records(self) -> Iterator[ItemRecord]:
        """Every record of every finished chunk, in chunk order; image paths remapped into this folder if it
        was moved (a shard built on another machine)."""
        for path in sorted(self.chunks.glob("*.jsonl")):
            yield from self._read(path)

    def chunk_records(self, shard: str, index: int) -> Iterator[ItemRecord]:
        """The records of one finished chunk."""
        yield from self._read(self.chunk_path(shard, index))

    def _read(self, path: Path) -> Iterator[ItemRecord]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield self._localise(ItemRecord.model_validate_json(line))

    def _localise(self, record: ItemRecord) -> ItemRecord:
        images = record.item.images
        if all(Path(p).exists() for p in images):
            return record
        fixed = [str(remap(p, self.root)) for p in images]
        item = record.item.model_copy(update={"images": fixed})
        pairs = [p.model_copy(update={"images": fixed}) for p in record.pairs]
        return record.model_copy(update={"item": item, "pairs": pairs})
