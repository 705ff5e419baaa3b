"""One registry type for every name-to-thing choice (sources, engines, export formats, ...).

A name is registered once: a second registration of the same name is a programming error and raises. An entry
may be lazy (``"package.module:attr"``), imported on first use, so listing the names never imports an engine's
heavy dependencies. An unknown name is a :class:`UnknownName` (a :class:`~mmpr.errors.UserError`) whose one
line lists the available names and the closest match.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from mmpr.errors import UserError

T = TypeVar("T")


class UnknownName(UserError):
    """A name that no registry entry has."""


class DuplicateName(RuntimeError):
    """A second registration of a name: two pieces of code claim one name."""


@dataclass
class _Entry(Generic[T]):
    value: T | None
    target: str | None
    description: str


class Registry(Generic[T]):
    """Named entries of one kind (``kind`` names it in messages, e.g. ``"engine"``).

    ``builtins`` are modules imported before the first lookup, where the built-in entries register themselves
    with the :meth:`register` decorator.
    """

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._builtins = builtins
        self._loaded = not builtins
        self._entries: dict[str, _Entry[T]] = {}
        self._aliases: dict[str, tuple[str, str | None]] = {}

    def register(self, name: str, value: T | str | None = None, *, description: str = "") -> Callable[[T], T]:
        """Register ``value`` under ``name``; a ``"module:attr"`` string is imported on first use. Without a
        value, returns a decorator that registers what it decorates."""
        if value is None:
            def decorate(obj: T) -> T:
                self._add(name, _Entry(obj, None, description))
                return obj

            return decorate
        if isinstance(value, str) and ":" in value:
            self._add(name, _Entry(None, value, description))
        else:
            self._add(name, _Entry(value, None, description))  # type: ignore[arg-type]
        return lambda obj: obj

    def alias(self, name: str, target: str, *, deprecated: str | None = None) -> None:
        """``name`` means ``target``; with ``deprecated`` (what to write instead), using it warns once per use."""
        if name in self._entries or name in self._aliases:
            raise DuplicateName(f"{self.kind} {name!r} is registered twice")
        self._aliases[name] = (target, deprecated)

    def _add(self, name: str, entry: _Entry[T]) -> None:
        if name in self._entries or name in self._aliases:
            raise DuplicateName(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for (itself, or an alias's target); unknown names raise."""
        self._load()
        if name in self._aliases:
            target, instead = self._aliases[name]
            if instead:
                warnings.warn(f"{self.kind} {name!r} is deprecated; use {instead}", DeprecationWarning, stacklevel=3)
            name = target
        if name not in self._entries:
            raise UnknownName(self._unknown(name))
        return name

    def get(self, name: str) -> T:
        entry = self._entries[self.canonical(name)]
        if entry.value is None and entry.target is not None:
            module, attr = entry.target.split(":", 1)
            entry.value = getattr(importlib.import_module(module), attr)
        return entry.value  # type: ignore[return-value]

    def _unknown(self, name: str) -> str:
        names = self.names()
        # a deprecated alias is never suggested itself: its target is
        spelled = {n: n for n in names} | {a: (t if old else a) for a, (t, old) in self._aliases.items()}
        close = difflib.get_close_matches(name, list(spelled), n=1)
        hint = f" (did you mean {spelled[close[0]]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; available: {', '.join(names) or 'none'}"

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Every registered name with its description, sorted by name."""
        self._load()
        return {name: self._entries[name].description for name in sorted(self._entries)}

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
