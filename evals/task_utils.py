"""What every mmpr lmms-eval task shares: the prompt (the data engine's templates), scoring, aggregation.

Each task's ``utils.py`` (under ``evals/tasks/``) maps its documents to a target and categories and gets its
``process_results_<style>`` functions from :func:`processors`; each keeps, per sample, the extracted answer, its
correctness, whether it was parsable, and the categories.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from evals.prompting import PROMPT_STYLES, extract, render, score_response
from evals.scoring import MissingField, SampleScore, Target
from mmpr.images import PROBLEMS, UNREADABLE, max_pixels
from mmpr.problems import ProblemLog
from mmpr.prompts import strip_direct_instructions

# the ground-truth column of every registered benchmark (DynaMath's is ground_truth)
ANSWER_FIELDS = ("answer", "ground_truth")
NULL_ANSWER = "the ground truth is null"
# task folder -> the documents :func:`usable_docs` dropped in this process (file: the document), with the reason
SKIPPED: dict[str, ProblemLog] = {}


def prompt(question: str, style: str, choices: list[str] | None = None) -> str:
    """The user turn under ``style``; ``choices`` are listed as options (leave them out when the question or the
    image already shows them)."""
    return render(strip_direct_instructions(question), style, choices)


def null_answer(doc: dict) -> bool:
    """The document's ground truth is missing (null): nothing to score against."""
    return any(field in doc and doc[field] is None for field in ANSWER_FIELDS)


def ground_truth(target: Callable[[dict], Target], doc: dict) -> tuple[Target | None, str | None]:
    """The document's :class:`Target`, or None and why not: a null ground truth, or a null field the benchmark's
    rule reads (its choices, say)."""
    if null_answer(doc):
        return None, NULL_ANSWER
    try:
        return target(doc), None
    except (TypeError, AttributeError, ValueError) as e:
        nulls = sorted(k for k, v in doc.items() if v is None)
        if not nulls:
            raise
        return None, f"the ground truth cannot be read with {', '.join(nulls)} null ({type(e).__name__})"


def process(doc: dict, results: list[str], target: Target | None, style: str, categories: dict[str, list[str]],
            doc_id, reference: dict | None = None, judge_fn: Callable[[str], bool] | None = None,
            why_none: str = NULL_ANSWER) -> dict:
    """``reference`` keeps the document fields another scorer needs (for the agreement report and a benchmark's
    ``summarize``); ``judge_fn`` replaces the plain judge where the benchmark has its own rule. A ``target`` of
    None (see :func:`ground_truth`; ``why_none`` says why) makes the sample unscorable."""
    try:
        if target is None:
            raise ValueError(why_none)
        result = score_response(results[0], target, style, judge_fn)
    except ValueError as e:  # a benchmark rule that cannot judge this item: counted as unscorable, never raised
        extracted = extract(results[0], style)
        result = SampleScore(extracted=extracted, parsable=extracted is not None, correct=False, scorable=False,
                             problem=why_none if target is None else f"{type(e).__name__}: {e}")
    record = {"doc_id": doc_id, "target": dataclasses.asdict(target) if target else None,
              "extracted": result.extracted,
              "correct": result.correct, "parsable": result.parsable, "scorable": result.scorable,
              "problem": result.problem, "categories": categories, "reference": reference or {}}
    return {"accuracy": record, "unparsable": record}


def processors(target: Callable[[dict], Target], categories: Callable[[dict], dict[str, list[str]]],
               doc_id: Callable[[dict], object], reference: Callable[[dict], dict] | None = None,
               judge: Callable[[dict, str], bool] | None = None) -> dict[str, Callable]:
    """``doc_to_target``, ``process_docs`` (:func:`usable_docs` with the task's ``doc_to_visual``) and
    ``process_results_<style>`` for every prompt style, for a task's ``utils.py``: ``globals().update(processors(
    ...))``, called at its import. ``judge(doc, extracted)`` is the benchmark's own rule, if any; a document whose
    ground truth is null (:data:`ANSWER_FIELDS`) is unscorable."""

    def make(style: str):
        def process_results(doc, results):
            truth, why_none = ground_truth(target, doc)
            return process(doc, results, truth, style, categories(doc), doc_id(doc),
                           reference(doc) if reference else None,
                           (lambda extracted: judge(doc, extracted)) if judge else None, why_none or NULL_ANSWER)
        return process_results

    def doc_to_target(doc):
        truth, _ = ground_truth(target, doc)
        return "" if truth is None else truth.answer

    task = sys._getframe(1).f_globals  # the task's utils module, which calls this function at import

    def process_docs(dataset):
        return usable_docs(dataset, task, doc_id, Path(task["__file__"]).parent.name)

    return {"doc_to_target": doc_to_target, "process_docs": process_docs,
            **{f"process_results_{style}": make(style) for style in PROMPT_STYLES}}


def _image_columns(features) -> list[str]:
    from datasets import Image

    return [name for name, f in features.items()
            if isinstance(f, Image) or isinstance(getattr(f, "feature", None), Image)]


def _null(raw: dict, columns) -> list[str]:
    return [c for c in columns if raw[c] is None or (isinstance(raw[c], list) and None in raw[c])]


def _doc_problem(dataset, index: int, task: dict, columns: list[str], raw: dict) -> tuple[str, str] | None:
    """Why document ``index`` cannot be put to the model, as ``(code, message)`` (its images null, not decodable
    or above the pixel limit; a null field its prompt needs), or None."""
    from PIL import Image

    try:
        doc = dataset[index]
        visuals = task["doc_to_visual"](doc) or []
    except Image.DecompressionBombError:
        return _image("image_too_large")
    except UNREADABLE:
        return _image("image_unreadable")
    except (AttributeError, TypeError):
        if _null(raw, columns):
            return _image("image_missing")
        raise
    if any(v.width * v.height > max_pixels() for v in visuals):
        return _image("image_too_large")
    try:
        task["doc_to_text"](doc)
    except (AttributeError, TypeError):
        nulls = _null(raw, raw)
        if nulls:
            return "null_field", f"the prompt cannot be written with {', '.join(nulls)} null"
        raise
    return None


def _image(code: str) -> tuple[str, str]:
    return code, f"image {PROBLEMS[code]}"


def usable_docs(dataset, task: dict, doc_id, name: str):
    """``dataset`` without the documents that cannot be put to the model (images null, not decodable or above the
    pixel limit; a null field the prompt needs), each recorded in :data:`SKIPPED` under the task folder ``name``
    with the reason: one bad document never stops an evaluation. ``task``: the namespace of the task's utils."""
    from datasets import Image

    columns = _image_columns(dataset.features)
    raw = dataset
    for column in columns:  # the same rows with the images as stored: the labels of those that do not decode
        raw = raw.cast_column(column, _undecoded(dataset.features[column], Image))
    keep, skipped = [], ProblemLog()
    for index in range(len(dataset)):
        row = raw[index]
        try:
            problem = _doc_problem(dataset, index, task, columns, row)
        except (KeyError, MissingField):  # a column the task needs is missing: the field check names it first
            return dataset
        if problem is None:
            keep.append(index)
            continue
        try:
            label = str(doc_id(row))
        except (KeyError, TypeError, ValueError):
            label = f"row {index}"
        code, message = problem
        skipped.add(code, label, message)
    SKIPPED[name] = skipped
    return dataset.select(keep) if skipped.total else dataset


def _undecoded(feature, image_type):
    if isinstance(feature, image_type):
        return image_type(decode=False)
    return type(feature)(image_type(decode=False))


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
