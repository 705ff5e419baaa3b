"""Judge-free scoring of chain-of-thought answers, with the extraction and rules the data engine uses.

Each benchmark's document is mapped to a :class:`Target` (ground truth, answer type, choices); a response is
scored by extracting its final answer with :func:`mmpr.answers.extract_final_answer` and judging it with
:func:`mmpr.answers.answer_score`. A response with no extractable final answer is wrong *and* unparsable, never
snapped to the nearest choice or guessed, unless its benchmark's official scorer reads whole responses
(``Rules.whole_response``: M3CoT, MMMU, MathVision, DynaMath, LogicVista, MathVerse): then that scorer's own
extraction reads it. An item whose ground truth cannot be judged (it names none of its options) never stops a run:
its samples are wrong, marked unscorable with the reason, and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from evals import official
from mmpr.answers import (
    DEFAULT_RULES,
    Rules,
    UnscorableItem,
    extract_final_answer,
    gold_choices,
    is_correct,
    parse_number,
    split_thinking,
)
from mmpr.errors import UserError
from mmpr.schemas import AnswerType


class MissingField(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    answer: str | list[str]  # a list: any of these answers is right
    answer_type: AnswerType
    choices: list[str] | None = None
    precision: int | None = None
    rules: Rules = DEFAULT_RULES  # the benchmark's official rule where it departs from the data engine's


class SampleScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    extracted: str | None
    parsable: bool
    correct: bool
    scorable: bool = True
    problem: str | None = None


def require(doc: dict, fields: tuple[str, ...], benchmark: str) -> None:
    """Fail at once, naming the field, when a document lacks what scoring needs."""
    missing = [f for f in fields if f not in doc]
    if missing:
        raise MissingField(f"{benchmark}: the dataset has no field {', '.join(missing)} (a row has: "
                           f"{', '.join(sorted(doc))})")


MATHVISTA_FIELDS = ("question", "question_type", "answer_type", "choices", "precision", "unit", "answer", "metadata")


def mathvista_target(doc: dict) -> Target:
    """MathVista: multiple choice by option text or letter; free-form integer / float (at the item's precision)
    / text / list."""
    require(doc, MATHVISTA_FIELDS, "MathVista")
    if doc["question_type"] == "multi_choice":
        return Target(str(doc["answer"]), "multiple_choice", [str(c) for c in doc["choices"]])
    kind = doc["answer_type"]
    if kind not in ("integer", "float", "text", "list"):
        raise UserError(f"MathVista item {doc.get('pid')}: unknown answer_type {kind!r}")
    precision = doc.get("precision")
    return Target(str(doc["answer"]), kind, precision=int(precision) if precision is not None and kind == "float"
                  else None)


MATHVISION_FIELDS = ("question", "options", "answer")


MATHVISION_RULES = Rules(letter_gold=True, numbers="decimals", tolerance=2, whole_response="mathvision")


def mathvision_target(doc: dict) -> Target:
    """MathVision, as MATH-V's ``evaluation/evaluate.py`` + ``utils.is_equal`` judge it: options (if any) are
    multiple choice with a letter answer, named by letter or by the option's value; otherwise the expression,
    equal as text (case aside) or as values rounded to 2 decimals (math-verify where it is no plain number). A response
    stating no final answer is read whole, as ``evaluate.py`` reads it (:func:`evals.official.mathvision_extract`)."""
    require(doc, MATHVISION_FIELDS, "MathVision")
    options = [str(o) for o in doc["options"] or []]
    if options:
        return Target(str(doc["answer"]), "multiple_choice", options, rules=MATHVISION_RULES)
    return Target(str(doc["answer"]), "latex", rules=MATHVISION_RULES)


POPE_FIELDS = ("question", "answer")


def pope_target(doc: dict) -> Target:
    require(doc, POPE_FIELDS, "POPE")
    return Target(str(doc["answer"]), "yes_no")


def _at_precision(extracted: str, answer: str, precision: int) -> bool:
    """Both numbers rounded to ``precision`` decimals are equal; an answer that is no number is compared as text."""
    value, gold = parse_number(extracted), parse_number(answer)
    if gold is None:
        return is_correct(extracted, answer, answer_type="text")
    return value is not None and round(value, precision) == round(gold, precision)


def check_target(target: Target) -> None:
    """Raise :class:`mmpr.answers.UnscorableItem` when ``target`` cannot be judged whatever the response."""
    if target.answer_type == "multiple_choice":
        for answer in target.answer if isinstance(target.answer, list) else [target.answer]:
            gold_choices(answer, target.choices, letter_gold=target.rules.letter_gold)


def _mmmu_whole(response: str, target: Target) -> str | None:
    """MMMU's ``parse_multi_choice_response`` (no random pick) or what ``parse_open_response`` reads (the key-phrase
    tails and their numbers), one a line."""
    if target.answer_type == "multiple_choice":
        return official.mmmu_choice(response, target.choices or [])
    return "\n".join(str(p).strip() for p in official.mmmu_open(response)) or None


# benchmark -> its official extraction over a whole response (see Rules.whole_response), judged as a stated answer
WHOLE_RESPONSE: dict[str, Callable[[str, Target], str | None]] = {
    "m3cot": lambda response, target: official.m3cot_choice(response, target.choices or []),
    "mmmu": _mmmu_whole,
    "mathvision": lambda response, target: official.mathvision_extract(response) or None,
    "mathverse": lambda response, target: official.mathverse_extract(response),
    "dynamath": lambda response, target: official.dynamath_short_answer(response).strip() or None,
    "logicvista": lambda response, target: official.logicvista_choices(response, target.choices or LOGICVISTA_LETTERS),
}
LOGICVISTA_LETTERS = list("ABCDEFGHI")


def extract_answer(response: str, target: Target) -> str | None:
    """The final answer a CoT ``response`` states (:func:`mmpr.answers.extract_final_answer`); where it states none
    and the benchmark's official scorer reads the whole response (``target.rules.whole_response``), what that
    scorer's extraction reads from it. A think block that never closes stays unparsable."""
    extracted = extract_final_answer(response)
    name = target.rules.whole_response
    if extracted is not None or name is None:
        return extracted
    answer_part, _ = split_thinking(response)
    return WHOLE_RESPONSE[name](answer_part, target) if answer_part and answer_part.strip() else None


def score(response: str, target: Target, *, style: str = "cot") -> SampleScore:
    """Extract the final answer of ``response`` (:func:`extract_answer`) and judge it against ``target``. With
    ``style="direct"`` (the direct-answer prompt) the whole response is the answer."""
    extracted = extract_answer(response, target) if style == "cot" else (response.strip().rstrip(".") or None)
    return score_extracted(extracted, target)


def score_extracted(extracted: str | None, target: Target,
                    judge_fn: Callable[[str], bool] | None = None) -> SampleScore:
    """Judge an extracted answer (None: unparsable) with the shared judge, or with ``judge_fn`` where a benchmark
    has its own rule. An unscorable target gives a wrong, unscorable score naming the problem; it never raises."""
    try:
        check_target(target)
    except UnscorableItem as e:
        return SampleScore(extracted=extracted, parsable=extracted is not None, correct=False, scorable=False,
                           problem=str(e))
    if extracted is None:
        return SampleScore(extracted=None, parsable=False, correct=False)
    return SampleScore(extracted=extracted, parsable=True,
                       correct=judge_fn(extracted) if judge_fn else judge(extracted, target))


def judge(extracted: str, target: Target) -> bool:
    if target.answer_type in ("float", "integer") and target.precision is not None:
        answers = target.answer if isinstance(target.answer, list) else [target.answer]
        return any(_at_precision(extracted, a, target.precision) for a in answers)
    return is_correct(extracted, target.answer, answer_type=target.answer_type, choices=target.choices,
                      rules=target.rules)
