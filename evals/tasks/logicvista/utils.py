"""LogicVista: logical reasoning over diagrams; the options are drawn in the image or written in the question.

Schema (lscpku/LogicVista, from the benchmark's data/dataset.json): question, image, answer, and where kept
imagename, reasoning, skill (list: inductive, deductive, numerical, spatial, mechanical), capability (list),
imagesource. An answer is one option letter ("C"), several ("A, C": all of them and no other), or the number of a
numbered option ("3").
"""

import re

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import choice_index

FIELDS = BENCHMARKS["logicvista"].fields
_SPLIT = re.compile(r"\s*(?:,|;|&|/|\band\b)\s*", re.I)
LETTERS = common.letters(9)


def _letters(text: str) -> frozenset[int] | None:
    """The option letters ``text`` names, each through the shared judge's reading of a letter; None if a part
    names no letter."""
    found = set()
    for part in (p for p in _SPLIT.split(text.strip()) if p):
        index = choice_index(part, LETTERS)
        if index is None:
            return None
        found.add(index)
    return frozenset(found) or None


def target(doc) -> Target:
    require(doc, FIELDS, "LogicVista")
    answer = str(doc["answer"]).strip()
    if answer.isdigit():
        return Target(answer, "integer")
    return Target(answer, "list" if len(_SPLIT.split(answer)) > 1 else "multiple_choice",
                  None if len(_SPLIT.split(answer)) > 1 else LETTERS)


def judge(doc, extracted: str) -> bool:
    t = target(doc)
    if t.answer_type == "integer":
        return shared_judge(extracted, t)
    gold = _letters(t.answer)
    return gold is not None and _letters(extracted) == gold


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    # lists in the benchmark's own json; a single string where a copy flattened them
    return {key: [doc[key]] if isinstance(doc[key], str) else [str(v) for v in doc[key]]
            for key in ("skill", "capability") if doc.get(key)}


globals().update(common.processors(target, categories, lambda doc: doc.get("imagename"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
