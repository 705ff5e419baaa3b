"""Bad input is reported and counted, never fatal to a long run and never dropped silently."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """One skipped input: where it is, what is wrong with it, and the category it is counted under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="Short category, e.g. 'malformed_json', 'image_missing'.")
    file: str = Field(description="File (or source name) the input came from.")
    line: int | None = Field(default=None, description="1-based line or row number, when there is one.")
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message} ({self.code})"


class ProblemLog:
    """Collects problems; keeps the first ``keep`` in memory and counts all of them by code."""

    def __init__(self, keep: int = 10_000):
        self.keep = keep
        self.items: list[Problem] = []
        self.counts: Counter[str] = Counter()

    def add(self, code: str, file: str | Path, message: str, *, line: int | None = None,
            field: str | None = None) -> Problem:
        problem = Problem(code=code, file=str(file), line=line, field=field, message=message)
        self.counts[code] += 1
        if len(self.items) < self.keep:
            self.items.append(problem)
        return problem

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "no problems"
        parts = ", ".join(f"{code}: {n}" for code, n in sorted(self.counts.items()))
        return f"{self.total} skipped ({parts})"

    def to_dict(self) -> dict:
        return {"total": self.total, "counts": dict(sorted(self.counts.items())),
                "listed": len(self.items), "problems": [p.model_dump() for p in self.items]}

    def update(self, other: ProblemLog) -> None:
        """Add ``other``'s counts and listed problems to this log."""
        self.counts.update(other.counts)
        self.items.extend(other.items[: max(0, self.keep - len(self.items))])

    @classmethod
    def read(cls, path: str | Path) -> ProblemLog:
        """A log as :meth:`write` left it (its counts, and the problems it listed)."""
        data = json.loads(Path(path).read_text())
        log = cls()
        log.counts.update(data["counts"])
        log.items = [Problem(**p) for p in data["problems"]]
        return log

    def write(self, path: str | Path) -> None:
        from mmpr.io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
