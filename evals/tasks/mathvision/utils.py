"""MathVision (testmini), scored judge-free: options -> multiple choice, else math-verify on the expression."""

from evals import task_utils as common
from evals.scoring import mathvision_target


def doc_to_visual(doc):
    return [doc["decoded_image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    # the question names its figure "<image1>"; the image itself goes first in the user turn
    question = doc["question"].replace("<image1>", "").strip()
    return common.prompt(question, mathvision_target(doc), common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("subject", "level") if doc.get(key) is not None}


def process_results_cot(doc, results):
    return common.process(doc, results, mathvision_target(doc), "cot", categories(doc), doc.get("id"))


accuracy = common.accuracy
unparsable = common.unparsable
