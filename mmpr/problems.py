"""Bad input is reported and counted, never fatal to a long run and never dropped silently.

:class:`Problem` is the one record of "this input was skipped" and :class:`ProblemLog` the one counter of them,
across the project: rows a source cannot read, questions the build skips, rows a release conversion skips, pairs
the trainer cannot use.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """One skipped input: where it is, what is wrong with it, and the category it is counted under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="Short category, e.g. 'malformed_json', 'image_missing'.")
    file: str = Field(description="File (or source name, or pair) the input came from.")
    line: int | None = Field(default=None, description="1-based line or row number, when there is one.")
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message} ({self.code})"


class ProblemLog(BaseModel):
    """Collects problems; keeps the first ``keep`` in memory and counts all of them by code."""

    model_config = ConfigDict(extra="forbid")

    keep: int = Field(default=10_000, ge=0, description="How many problems are listed; all are counted.")
    counts: Counter[str] = Field(default_factory=Counter, description="Problems by code.")
    items: list[Problem] = Field(default_factory=list, description="The first ``keep`` problems.")

    def add(self, code: str, file: str | Path, message: str, *, line: int | None = None,
            field: str | None = None) -> Problem:
        return self.record(Problem(code=code, file=str(file), line=line, field=field, message=message))

    def record(self, problem: Problem) -> Problem:
        """Count ``problem`` and list it while fewer than ``keep`` are listed."""
        self.counts[problem.code] += 1
        if len(self.items) < self.keep:
            self.items.append(problem)
        return problem

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "no problems"
        return f"{self.total} skipped ({self.by_code()})"

    def by_code(self) -> str:
        """The counts as ``code: n`` parts, by code."""
        return ", ".join(f"{code}: {n}" for code, n in sorted(self.counts.items()))

    def to_dict(self) -> dict:
        return {"total": self.total, "counts": dict(sorted(self.counts.items())),
                "listed": len(self.items), "problems": [p.model_dump() for p in self.items]}

    def update(self, other: ProblemLog) -> None:
        """Add ``other``'s counts and listed problems to this log."""
        self.counts.update(other.counts)
        self.items.extend(other.items[: max(0, self.keep - len(self.items))])

    def relative_to(self, root: str | Path) -> ProblemLog:
        """This log with the files under ``root`` named relative to it: a report that travels with its output
        names the files of its input as they are inside it, not this machine's folders."""
        root = Path(root).resolve()

        def rel(problem: Problem) -> Problem:
            try:
                return problem.model_copy(update={"file": Path(problem.file).resolve().relative_to(root).as_posix()})
            except ValueError:
                return problem

        return ProblemLog(keep=self.keep, counts=Counter(self.counts), items=[rel(p) for p in self.items])

    @classmethod
    def read(cls, path: str | Path) -> ProblemLog:
        """A log as :meth:`write` left it (its counts, and the problems it listed)."""
        data = json.loads(Path(path).read_text())
        return cls(counts=Counter(data["counts"]), items=[Problem(**p) for p in data["problems"]])

    def write(self, path: str | Path) -> None:
        from mmpr.io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
