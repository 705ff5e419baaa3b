"""The lmms-eval task of the synthetic grid-counting questions of ``experiments.tiny_grid.generate`` (integer counts,
yes/no comparisons), judge-free."""

from evals import task_utils as common
from evals.scoring import Target, require

FIELDS = ("id", "question", "answer", "answer_type", "kind")


def target(doc) -> Target:
    require(doc, FIELDS, "synthetic_grid")
    return Target(str(doc["answer"]), doc["answer_type"])


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {"kind": [doc["kind"]]}


globals().update(common.processors(target, categories, lambda doc: doc.get("id")))
accuracy = common.accuracy
unparsable = common.unparsable
