"""M3CoT (test): multi-domain multi-step multimodal CoT, multiple choice with a letter answer.

Schema (LightChen2333/M3CoT): id, category, image_id, question, choices (list), context, answer ("A".."E"),
rationale, split, image, domain, topic. The context, when present, goes before the question.
"""

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require

FIELDS = BENCHMARKS["m3cot"].fields


def target(doc) -> Target:
    require(doc, FIELDS, "M3CoT")
    return Target(str(doc["answer"]).strip(), "multiple_choice", [str(c) for c in doc["choices"]])


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")] if doc.get("image") is not None else []


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    context = (doc.get("context") or "").strip()
    question = f"{context}\n{doc['question']}" if context else doc["question"]
    return common.prompt(question, common.style_of(lmms_eval_specific_kwargs), target(doc).choices)


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("domain", "topic", "category") if doc.get(key)}


globals().update(common.processors(target, categories, lambda doc: doc.get("id")))
accuracy = common.accuracy
unparsable = common.unparsable
