"""What every mmpr lmms-eval task shares: the prompt (the data engine's templates), scoring, aggregation.

Each task's ``utils.py`` (under ``evals/tasks/``) maps its documents to a target and categories and gets its
``process_results_<style>`` functions from :func:`processors`; each keeps, per sample, the extracted answer, its
correctness, whether it was parsable, and the categories.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from evals.prompting import PROMPT_STYLES, extract, render, score_response
from evals.scoring import SampleScore, Target
from mmpr.prompts import strip_direct_instructions


def prompt(question: str, style: str, choices: list[str] | None = None) -> str:
    """The user turn under ``style``; ``choices`` are listed as options (leave them out when the question or the
    image already shows them)."""
    return render(strip_direct_instructions(question), style, choices)


def process(doc: dict, results: list[str], target: Target, style: str, categories: dict[str, list[str]],
            doc_id, reference: dict | None = None, judge_fn: Callable[[str], bool] | None = None) -> dict:
    """``reference`` keeps the document fields another scorer needs (for the agreement report and a benchmark's
    ``summarize``); ``judge_fn`` replaces the plain judge where the benchmark has its own rule."""
    try:
        result = score_response(results[0], target, style, judge_fn)
    except ValueError as e:  # a benchmark rule that cannot judge this item: counted as unscorable, never raised
        extracted = extract(results[0], style)
        result = SampleScore(extracted=extracted, parsable=extracted is not None, correct=False, scorable=False,
                             problem=f"{type(e).__name__}: {e}")
    record = {"doc_id": doc_id, "target": dataclasses.asdict(target), "extracted": result.extracted,
              "correct": result.correct, "parsable": result.parsable, "scorable": result.scorable,
              "problem": result.problem, "categories": categories, "reference": reference or {}}
    return {"accuracy": record, "unparsable": record}


def processors(target: Callable[[dict], Target], categories: Callable[[dict], dict[str, list[str]]],
               doc_id: Callable[[dict], object], reference: Callable[[dict], dict] | None = None,
               judge: Callable[[dict, str], bool] | None = None) -> dict[str, Callable]:
    """``doc_to_target`` and ``process_results_<style>`` for every prompt style, for a task's ``utils.py``:
    ``globals().update(processors(...))``. ``judge(doc, extracted)`` is the benchmark's own rule, if any."""

    def make(style: str):
        def process_results(doc, results):
            return process(doc, results, target(doc), style, categories(doc), doc_id(doc),
                           reference(doc) if reference else None,
                           (lambda extracted: judge(doc, extracted)) if judge else None)
        return process_results

    def doc_to_target(doc):
        return target(doc).answer

    return {"doc_to_target": doc_to_target, **{f"process_results_{style}": make(style) for style in PROMPT_STYLES}}


def style_of(kwargs: dict | None) -> str:
    return (kwargs or {}).get("prompt", "cot")


def accuracy(records: list[dict]) -> float:
    return round(100.0 * sum(r["correct"] for r in records) / max(len(records), 1), 2)


def unparsable(records: list[dict]) -> float:
    return round(100.0 * sum(not r["parsable"] for r in records) / max(len(records), 1), 2)


def letters(n: int) -> list[str]:
    """Option letters A.. as choices, for benchmarks whose options are drawn in the image or written in the
    question: the judge then reads an answer by its letter."""
    return [chr(ord("A") + i) for i in range(n)]
