"""POPE (object hallucination, yes/no), scored judge-free."""

from evals import task_utils as common
from evals.scoring import pope_target


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {"category": [str(doc["category"])]} if doc.get("category") else {}


globals().update(common.processors(pope_target, categories, lambda doc: doc.get("question_id")))
accuracy = common.accuracy
unparsable = common.unparsable
