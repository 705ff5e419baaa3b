"""M3CoT (test): multi-domain multi-step multimodal CoT, multiple choice with a letter answer.

Schema (LightChen2333/M3CoT): id, category, image_id, question, choices (list), context, answer ("A".."E"),
rationale, split, image, domain, topic. The context, when present, goes before the question.

The official rule (M3CoT ``utils/metric.py``, ``judge_answer``): the answer is the option letter (an integer
answer is an index into A-F), read from "(B)", else the option's text, else a bare letter. The project reads the
extracted final answer the shared judge's way (an option whose text starts "option D in the image ..." is matched as
text, not as the letter D), and where that names no option, with ``judge_answer`` itself. A response stating no
final answer (a chain of thought that ends "... so container A is the correct answer.", a bare "B") is read as
``judge_answer`` reads it, whole (``Rules.whole_response``).
"""

import re

from evals import task_utils as common
from evals.official import m3cot as official_judge
from evals.registry import get
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import LETTERS, Rules, choice_indices

FIELDS = get("m3cot").fields
RULES = Rules(letter_gold=True, whole_response="m3cot")


def target(doc) -> Target:
    require(doc, FIELDS, "M3CoT")
    answer = doc["answer"]
    gold = LETTERS[answer] if isinstance(answer, int) else str(answer).strip()
    return Target(gold, "multiple_choice", [str(c) for c in doc["choices"]], rules=RULES)


def judge(doc, extracted: str) -> bool:
    """The shared reading of the stated answer; where it names no option, M3CoT's ``judge_answer`` on it (an
    option's text within it, a bare letter), unless it names two options in parentheses ("(A) or (B)")."""
    t = target(doc)
    if choice_indices(extracted, t.choices) or len(set(re.findall(r"\(([A-Za-z])\)", extracted))) > 1:
        return shared_judge(extracted, t)
    return official_judge(extracted, t.choices, t.answer)[1]


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")] if doc.get("image") is not None else []


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    context = (doc.get("context") or "").strip()
    question = f"{context}\n{doc['question']}" if context else doc["question"]
    return common.prompt(question, common.style_of(lmms_eval_specific_kwargs), target(doc).choices)


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("domain", "topic", "category") if doc.get(key)}


globals().update(common.processors(target, categories, lambda doc: doc.get("id"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
