"""MathVision (testmini), scored judge-free: options -> multiple choice, else math-verify on the expression."""

from evals import task_utils as common
from evals.scoring import mathvision_target


def doc_to_visual(doc):
    return [doc["decoded_image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    # the question names its figure "<image1>"; the image itself goes first in the user turn
    question = doc["question"].replace("<image1>", "").strip()
    return common.prompt(question, common.style_of(lmms_eval_specific_kwargs), mathvision_target(doc).choices)


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("subject", "level") if doc.get(key) is not None}


globals().update(common.processors(mathvision_target, categories, lambda doc: doc.get("id")))
accuracy = common.accuracy
unparsable = common.unparsable
