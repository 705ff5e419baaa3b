"""MMMU (validation), judge-free.

Schema (MMMU/MMMU, lmms-lab/MMMU): id ("validation_<Subject>_<n>"), question, options (a Python list written as a
string), explanation, image_1 .. image_7, img_type, answer, topic_difficulty, question_type ("multiple-choice" or
"open"), subfield. The question and options name their images "<image N>"; the images go in that order.

MMMU's own rules (its eval_utils, kept by lmms-eval): an answer may list several acceptable answers (any counts);
numeric open answers are compared after rounding to 2 decimals. Open text answers are compared after the shared
judge's normalisation (stricter than MMMU's substring test, which accepts any response containing the answer).
"""

import ast
import re

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import parse_number

FIELDS = BENCHMARKS["mmmu"].fields
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


def targets(doc) -> list[Target]:
    require(doc, FIELDS, "MMMU")
    if doc["question_type"] == "multiple-choice":
        return [Target(a, "multiple_choice", options(doc)) for a in answers(doc)]
    # MMMU compares numbers rounded to 2 decimals
    return [Target(a, "float", precision=2) if parse_number(a) is not None and _plain_number(a) else Target(a, "text")
            for a in answers(doc)]


def _plain_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def target(doc) -> Target:
    return targets(doc)[0]


def judge(doc, extracted: str) -> bool:
    return any(shared_judge(extracted, t) for t in targets(doc))


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


globals().update(common.processors(target, categories, lambda doc: doc.get("id"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
