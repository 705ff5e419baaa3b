"""MathVista testmini, scored judge-free (see evals.scoring.mathvista_target)."""

from evals import task_utils as common
from evals.scoring import mathvista_target


def doc_to_visual(doc):
    return [doc["decoded_image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    target = mathvista_target(doc)
    question = doc["question"]
    if doc.get("unit"):
        question += f" (Unit: {doc['unit']})"
    return common.prompt(question, common.style_of(lmms_eval_specific_kwargs), target.choices)


def categories(doc) -> dict[str, list[str]]:
    meta = doc.get("metadata") or {}
    out = {"question_type": [doc["question_type"]], "answer_type": [doc["answer_type"]]}
    for key in ("skills", "task", "category", "context", "grade", "source"):
        value = meta.get(key)
        if value:
            out[key] = list(value) if isinstance(value, list) else [value]
    return out


def reference(doc) -> dict:
    """What lmms-eval's own MathVista scoring reads (for evals.agreement)."""
    return {k: doc.get(k) for k in ("pid", "query", "question_type", "answer_type", "choices", "precision",
                                    "answer")}


globals().update(common.processors(mathvista_target, categories, lambda doc: doc.get("pid"), reference))
accuracy = common.accuracy
unparsable = common.unparsable
