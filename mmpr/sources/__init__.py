"""The source registry: named adapters for the paper's sources, a generic one for any dataset, and a sample.

``make_source(SourceSpec(name="scienceqa", path=...))`` builds a source; an unknown name is an error that
lists the registered ones. Register more with :func:`register_source`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmpr.errors import UserError
from mmpr.registry import Registry
from mmpr.schemas import AnswerType, Category
from mmpr.sources.base import Columns, DatasetSource

log = logging.getLogger(__name__)


class SourceSpec(BaseModel):
    """How a build names and overrides a source (CLI ``--sources`` or the YAML ``sources:`` list)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Registered source name (see `python -m mmpr.build --list-sources`).")
    path: str | None = Field(default=None, description="Hub id, local dataset folder or file; default per source.")
    split: str | None = None
    config: str | None = None
    revision: str | None = None
    limit: int | None = Field(default=None, ge=1, description="Read at most this many rows.")
    alias: str | None = Field(default=None, description="Name the items' source with this instead.")
    columns: dict[str, Any] | None = Field(default=None, description="Column mapping (generic source).")
    answer_type: AnswerType | None = None
    category: Category | None = None
    require_image: bool | None = None


Factory = Callable[[SourceSpec], DatasetSource]
SOURCES: Registry[Factory] = Registry("source", builtins=("mmpr.sources.named",))


def register_source(name: str, description: str) -> Callable[[Factory], Factory]:
    return SOURCES.register(name, description=description)


def available_sources() -> dict[str, str]:
    """Registered source names and what each reads."""
    return SOURCES.describe()


def make_source(spec: SourceSpec | str) -> DatasetSource:
    if isinstance(spec, str):
        spec = SourceSpec(name=spec)
    source = SOURCES.get(spec.name)(spec)
    for attr in ("path", "split", "config", "revision", "limit", "answer_type", "category", "require_image"):
        value = getattr(spec, attr)
        if value is not None:
            setattr(source, attr, value)
    if spec.alias:
        source.name = spec.alias
    return source


def kept_apart(sources: list[DatasetSource]) -> list[DatasetSource]:
    """``sources`` with distinct names: a name is where each item, pair id and summary row says it came from, so
    two sources that would share one (two files called ``train.jsonl``, a named source given twice with other
    paths) are told apart by the folder that holds each (``a_train``, ``b_train``), then by their order. The same
    source given twice is a :class:`UserError`."""
    seen: dict[tuple, str] = {}
    for source in sources:
        key = (source.name, source.path, source.split, source.config, source.revision)
        if key in seen:
            raise UserError(f"source {source.name} ({source.path}) is given twice; give it once")
        seen[key] = source.name
    counts = Counter(s.name for s in sources)
    taken: set[str] = {s.name for s in sources if counts[s.name] == 1}
    for index, source in enumerate(sources):
        if counts[source.name] == 1:
            continue
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(source.path).rstrip("/")).parent.name).strip("_.")
        name = f"{folder}_{source.name}" if folder else source.name
        if name in taken:
            name = f"{source.name}_{index + 1}"
        log.warning("two sources are named %r; the one read from %s is named %r", source.name, source.path, name)
        taken.add(name)
        source.name = name
    return sources


__all__ = ["SOURCES", "Columns", "DatasetSource", "SourceSpec", "available_sources", "kept_apart", "make_source",
           "register_source"]
