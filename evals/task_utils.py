"""What every mmpr lmms-eval task shares: the prompt (the data engine's templates), scoring, aggregation.

Each task's ``utils.py`` (under ``evals/tasks/``) maps its documents to a target and categories; ``process``
keeps, per sample, the extracted answer, its correctness, whether it was parsable, and the categories.
"""

from __future__ import annotations

import dataclasses

from evals.scoring import Target, score
from mmpr.prompts import get_template, strip_direct_instructions


def prompt(question: str, target: Target, style: str) -> str:
    """The user turn: the CoT template for ``cot``, the direct-answer one for ``direct``."""
    question = strip_direct_instructions(question)
    if style == "cot":
        return get_template("mpo_cot").render(question, target.choices)
    name = "direct_choice" if target.choices else "direct"
    return get_template(name).render(question, target.choices)


def process(doc: dict, results: list[str], target: Target, style: str, categories: dict[str, list[str]],
            doc_id, reference: dict | None = None) -> dict:
    """``reference`` keeps the document fields another scorer needs (for the agreement report)."""
    result = score(results[0], target, style=style)
    record = {"doc_id": doc_id, "target": dataclasses.asdict(target), "extracted": result.extracted,
              "correct": result.correct, "parsable": result.parsable, "scorable": result.scorable,
              "problem": result.problem, "categories": categories,
              "reference": reference or {}}
    return {"accuracy": record, "unparsable": record}


def accuracy(records: list[dict]) -> float:
    return round(100.0 * sum(r["correct"] for r in records) / max(len(records), 1), 2)


def unparsable(records: list[dict]) -> float:
    return round(100.0 * sum(not r["parsable"] for r in records) / max(len(records), 1), 2)


def style_of(kwargs: dict | None) -> str:
    return (kwargs or {}).get("prompt", "cot")
