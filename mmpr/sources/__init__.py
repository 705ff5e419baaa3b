"""The source registry: named adapters for the paper's sources, a generic one for any dataset, and a sample.

``make_source(SourceSpec(name="scienceqa", path=...))`` builds a source; an unknown name is an error that
lists the registered ones. Register more with :func:`register_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmpr.registry import Registry
from mmpr.schemas import AnswerType, Category
from mmpr.sources.base import Columns, DatasetSource


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


__all__ = ["SOURCES", "Columns", "DatasetSource", "SourceSpec", "available_sources", "make_source", "register_source"]
