"""MathVerse testmini, vision-only version: the question and its options are drawn in the diagram.

Schema (CaraJ/MathVerse-lmmseval, config testmini_version_split, split vision_only): sample_index, problem_index,
problem_version, question, image, answer, question_type ("multi-choice" or "free-form"), metadata (split, source,
subject, subfield), query_wo, query_cot, question_for_eval. The prompt shows the version's ``question`` text (what
this version keeps outside the image, as lmms-eval's custom prompt does) and says the rest is in the image.
Multiple-choice answers are option letters; since the options exist only in the image, the letter is what is
judged. Free-form answers go to math-verify.
"""

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require

FIELDS = BENCHMARKS["mathverse"].fields
SEE_IMAGE = "Answer the question shown in the image."
SEE_OPTIONS = "Answer the question shown in the image; its options are shown there too. Give the option's letter."


def target(doc) -> Target:
    require(doc, FIELDS, "MathVerse")
    answer = str(doc["answer"]).strip()
    if doc["question_type"] == "multi-choice" and len(answer) == 1 and answer.upper() in "ABCDEFGH":
        return Target(answer, "multiple_choice", common.letters(max(5, "ABCDEFGH".find(answer.upper()) + 1)))
    return Target(answer, "latex")


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")] if doc.get("image") is not None else []


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    question = (doc["question"] or "").strip()
    instruction = SEE_OPTIONS if doc["question_type"] == "multi-choice" else SEE_IMAGE
    return common.prompt(f"{question}\n{instruction}" if question else instruction,
                         common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    meta = doc.get("metadata") or {}
    out = {"question_type": [str(doc["question_type"])]}
    for key in ("subject", "subfield", "source"):
        if meta.get(key):
            out[key] = [str(meta[key])]
    return out


globals().update(common.processors(target, categories, lambda doc: doc.get("sample_index")))
accuracy = common.accuracy
unparsable = common.unparsable
