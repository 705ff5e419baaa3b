"""MMMU (validation), judge-free.

Schema (MMMU/MMMU, lmms-lab/MMMU): id ("validation_<Subject>_<n>"), question, options (a Python list written as a
string), explanation, image_1 .. image_7, img_type, answer, topic_difficulty, question_type ("multiple-choice" or
"open"), subfield. The question and options name their images "<image N>"; the images go in that order.

The official rule (MMMU ``mmmu/utils/eval_utils.py``, kept by lmms-eval's ``tasks/mmmu/utils.py``): a
multiple-choice answer is the option's letter or its text (``parse_multi_choice_response``: a bare " B " in the answer,
or an option's text within an answer of more than five words); the answer field may list several acceptable answers
(any counts); an open answer is right when one of its numbers equals a numeric gold after rounding both to 2
decimals, or when it contains a text gold, case aside (``eval_open``: "Tampa, Florida" for ["Tampa", "Florida"];
a one-letter gold must stand as a word). A response stating no final answer is read whole, as
``parse_multi_choice_response`` / ``parse_open_response`` read it; where MMMU picks a random option for a response
naming none, the project counts it wrong.
"""

import ast
import re

from evals import task_utils as common
from evals.official import mmmu_choice, mmmu_open
from evals.registry import get
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import Rules, choice_indices, numbers_match, parse_number

FIELDS = get("mmmu").fields
_IMAGE = re.compile(r"<image (\d+)>")


def options(doc) -> list[str]:
    value = doc["options"]
    parsed = ast.literal_eval(value) if isinstance(value, str) else value
    return [str(o) for o in parsed or []]


def answers(doc) -> list[str]:
    """The acceptable answers: one, or several when the answer field is a list (written as a string or not)."""
    value = doc["answer"]
    if isinstance(value, str) and value.strip().startswith("["):
        value = ast.literal_eval(value.strip())
    return [str(a).strip() for a in value] if isinstance(value, list) else [str(value).strip()]


CHOICE_RULES = Rules(letter_gold=True, whole_response="mmmu")
NUMBER_RULES = Rules(numbers="decimals", tolerance=2, whole_response="mmmu")
TEXT_RULES = Rules(text="contains", whole_response="mmmu")


def targets(doc) -> list[Target]:
    require(doc, FIELDS, "MMMU")
    if doc["question_type"] == "multiple-choice":
        return [Target(a, "multiple_choice", options(doc), rules=CHOICE_RULES) for a in answers(doc)]
    return [Target(a, "float", rules=NUMBER_RULES) if _plain_number(a) else Target(a, "text", rules=TEXT_RULES)
            for a in answers(doc)]


def _plain_number(text: str) -> bool:
    """MMMU's ``check_is_number``: a gold that ``float`` reads once commas are dropped is compared as a number."""
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def target(doc) -> Target:
    return targets(doc)[0]


def _numbers(extracted: str) -> list[float]:
    """The numbers an open answer states: its one value (fractions and units read), and the numbers MMMU's
    ``parse_open_response`` reads from it (those after "is", "=", "answer", ... of each sentence)."""
    value = parse_number(extracted)
    return ([] if value is None else [value]) + [p for p in mmmu_open(extracted) if not isinstance(p, str)]


def judge(doc, extracted: str) -> bool:
    found = targets(doc)
    if doc["question_type"] == "multiple-choice":
        if choice_indices(extracted, options(doc)):
            return any(shared_judge(extracted, t) for t in found)
        # MMMU's parse_multi_choice_response on the stated answer: " B " or, in more than five words, an option's text
        named = mmmu_choice(extracted, options(doc))
        return named is not None and named in answers(doc)
    numbers = _numbers(extracted)
    for t in found:
        if t.answer_type == "float":
            gold = float(str(t.answer).replace(",", ""))
            if any(numbers_match(n, gold, NUMBER_RULES) for n in numbers):
                return True
        elif shared_judge(extracted, t):
            return True
    return False


def image_order(doc) -> list[int]:
    text = doc["question"] + " " + " ".join(options(doc))
    return sorted({int(n) for n in _IMAGE.findall(text)})


def doc_to_visual(doc):
    return [doc[f"image_{n}"].convert("RGB") for n in image_order(doc) if doc.get(f"image_{n}") is not None]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    choices = options(doc) if doc["question_type"] == "multiple-choice" else None
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs), choices)


def subject(doc) -> str:
    """"validation_Art_Theory_12" -> "Art_Theory"."""
    parts = str(doc["id"]).split("_")
    return "_".join(parts[1:-1]) or str(doc["id"])


def categories(doc) -> dict[str, list[str]]:
    out = {"subject": [subject(doc)], "question_type": [str(doc["question_type"])]}
    for key in ("subfield", "topic_difficulty"):
        if doc.get(key):
            out[key] = [str(doc[key])]
    return out


def reference(doc) -> dict:
    """What MMMU's own scoring reads (for evals.agreement)."""
    return {"question_type": str(doc["question_type"]), "options": options(doc), "answers": answers(doc)}


globals().update(common.processors(target, categories, lambda doc: doc.get("id"), reference, judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
