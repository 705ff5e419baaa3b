"""POPE (object hallucination, yes/no), scored judge-free with the chain-of-thought prompt."""

from evals import task_utils as common
from evals.scoring import pope_target


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], pope_target(doc), common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {"category": [str(doc["category"])]} if doc.get("category") else {}


def process_results_cot(doc, results):
    return common.process(doc, results, pope_target(doc), "cot", categories(doc), doc.get("question_id"))


accuracy = common.accuracy
unparsable = common.unparsable
