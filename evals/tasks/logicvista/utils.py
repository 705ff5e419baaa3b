"""LogicVista: logical reasoning over diagrams; the options are drawn in the image or written in the question.

Schema (lscpku/LogicVista, from the benchmark's data/dataset.json): imagename, question, answer, reasoning, skill
(list: inductive, deductive, numerical, spatial, mechanical), broad_capability (list: diagram, ocr, ...),
specific_capability (list), imagesource; some copies keep an older ``capability`` list. An answer is one option
letter ("C"), several ("B, D": all of them and no other), or the number of a numbered option ("3").

The official scorer (LogicVista ``eval/extract_accuracy.py``) has GPT-4 extract the chosen letters from the answer
and counts the item right when that set equals the gold set. The project reads the set without a model: each
part of the final answer is an option letter, or an option's text where the question lists the options
("Select from A, B, C, and D. (A) 140TWh (B) 400TWh ...").
"""

import re

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import Rules, choice_index, options_in_text

FIELDS = BENCHMARKS["logicvista"].fields
_SPLIT = re.compile(r"\s*(?:,|;|&|/|\band\b)\s*", re.I)
LETTERS = common.letters(9)
RULES = Rules(letter_gold=True)
CAPABILITIES = ("skill", "broad_capability", "specific_capability", "capability")


def options(doc) -> list[str]:
    """The options the question lists (their texts where written, else the letters A-I)."""
    found = options_in_text(str(doc["question"])) or []
    return found if len(found) >= 2 and all(found) else LETTERS


def _letters(text: str, choices: list[str]) -> frozenset[int] | None:
    """The options ``text`` names, each part read by the shared judge as a letter or an option's text; None if a
    part names no option."""
    whole = choice_index(text, choices)
    if whole is not None:
        return frozenset({whole})
    found = set()
    for part in (p for p in _SPLIT.split(text.strip()) if p):
        index = choice_index(part, choices)
        if index is None:
            return None
        found.add(index)
    return frozenset(found) or None


def target(doc) -> Target:
    require(doc, FIELDS, "LogicVista")
    answer = str(doc["answer"]).strip()
    if answer.isdigit():
        return Target(answer, "integer")
    several = len(_SPLIT.split(answer)) > 1
    return Target(answer, "list" if several else "multiple_choice", None if several else options(doc), rules=RULES)


def judge(doc, extracted: str) -> bool:
    t = target(doc)
    if t.answer_type == "integer":
        return shared_judge(extracted, t)
    gold = _letters(t.answer, LETTERS)
    return gold is not None and _letters(extracted, options(doc)) == gold


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    # lists in the benchmark's own json; a single string where a copy flattened them
    return {key: [doc[key]] if isinstance(doc[key], str) else [str(v) for v in doc[key]]
            for key in CAPABILITIES if doc.get(key)}


globals().update(common.processors(target, categories, lambda doc: doc.get("imagename"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
