"""MathVision (testmini), scored judge-free by its official rule (MATH-V ``evaluation/evaluate.py`` with
``evaluation/utils.py`` ``is_equal``; see :func:`evals.scoring.mathvision_target`): an item with options is multiple
choice with a letter gold, named by the letter or by the gold option's value; otherwise the answer equals the gold
as text (case aside) or as a value rounded to 2 decimals, and math-verify judges the expressions beyond that."""

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
