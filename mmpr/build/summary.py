"""Counts of a build (questions, responses, accuracy, pairs, skipped rows with reasons) and their table."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mmpr.problems import ProblemLog
from mmpr.store import ItemRecord


class SourceStats(BaseModel):
    questions: int = 0
    responses: int = 0
    judged: int = 0
    correct: int = 0
    unparsable: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None


class BuildSummary(BaseModel):
    questions: int = 0
    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    pairs: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, SourceStats] = Field(default_factory=dict)
    skipped: ProblemLog = Field(default_factory=lambda: ProblemLog(keep=20),
                                description="Questions and source rows skipped, by reason; the first few listed.")

    def add(self, record: ItemRecord) -> None:
        s = self.sources.setdefault(record.item.source, SourceStats())
        s.questions += 1
        self.questions += 1
        s.responses += len(record.responses)
        self.responses += len(record.responses)
        self.prompt_tokens += sum(r.prompt_tokens for r in record.responses[:1])
        self.completion_tokens += sum(r.completion_tokens for r in record.responses)
        s.judged += len(record.judgements)
        s.correct += sum(j.correct for j in record.judgements)
        s.unparsable += sum(not j.parsable for j in record.judgements)
        s.outcomes[record.outcome] = s.outcomes.get(record.outcome, 0) + 1
        for p in record.pairs:
            self.pairs[p.kind] = self.pairs.get(p.kind, 0) + 1
        if record.problem is not None:
            self.skipped.record(record.problem)

    def add_source_problems(self, problems: ProblemLog) -> None:
        """Rows the sources could not turn into questions (counted in full, the first few listed)."""
        self.skipped.update(problems)

    def render(self) -> str:
        lines = [f"questions: {self.questions}   responses: {self.responses}   "
                 f"pairs: {sum(self.pairs.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.pairs.items()))})"]
        lines.append(f"{'source':<24}{'questions':>10}{'responses':>10}{'accuracy':>10}{'unparsable':>11}  outcomes")
        for name, s in sorted(self.sources.items()):
            acc = f"{s.accuracy:.1%}" if s.accuracy is not None else "-"
            unp = f"{s.unparsable / s.judged:.1%}" if s.judged else "-"
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items()))
            lines.append(f"{name:<24}{s.questions:>10}{s.responses:>10}{acc:>10}{unp:>11}  {outcomes}")
        total = self.skipped.total
        lines.append(f"skipped: {total}" + (f" ({self.skipped.by_code()})" if total else ""))
        lines += [f"  {problem}" for problem in self.skipped.items[:10]]
        return "\n".join(lines)

