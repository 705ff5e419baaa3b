"""DynaMath: each seed question comes in several generated variants (10 in DynaMath_Sample); the headline is the
worst case, a seed counting as solved only when every one of its variants is answered right.

Schema (DynaMath/DynaMath_Sample; lscpku/DynaMath_Sample adds the split sample_all with all ten variants): id (the
seed question, shared by its variants), question, image, decoded_image, ground_truth, answer_type ("multiple
choice", "float", or free text), subject, knowledge_level. Multiple-choice questions list their options in the
question text; the ground truth is the letter.
"""

import re
from collections import defaultdict

from evals import task_utils as common
from evals.registry import BENCHMARKS
from evals.scoring import Target, require

FIELDS = BENCHMARKS["dynamath"].fields
_OPTION = re.compile(r"(?:^|\s)\(?([A-H])[).:]\s")


def target(doc) -> Target:
    require(doc, FIELDS, "DynaMath")
    answer, kind = str(doc["ground_truth"]).strip(), str(doc["answer_type"]).strip().lower()
    if kind == "multiple choice":
        shown = {m for m in _OPTION.findall(doc["question"])}
        count = max([ord(letter) - ord("A") + 1 for letter in shown | {answer[:1].upper()}] + [2])
        return Target(answer, "multiple_choice", common.letters(count))
    if kind == "float":
        return Target(answer, "float")
    return Target(answer, "text")


def doc_to_visual(doc):
    return [doc["decoded_image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("subject", "knowledge_level", "answer_type") if doc.get(key)}


def reference(doc) -> dict:
    return {"seed": str(doc["id"])}


def summarize(records: list[dict]) -> dict[str, float]:
    """Average accuracy over all variants and worst-case accuracy over seed questions (DynaMath, section 4)."""
    by_seed: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_seed[r["reference"]["seed"]].append(bool(r["correct"]))
    seeds = len(by_seed)
    return {"average": round(100 * sum(r["correct"] for r in records) / max(len(records), 1), 2),
            "worst_case": round(100 * sum(all(v) for v in by_seed.values()) / max(seeds, 1), 2),
            "seeds": seeds, "min_variants_per_seed": min((len(v) for v in by_seed.values()), default=0)}


globals().update(common.processors(target, categories, lambda doc: doc.get("id"), reference))
accuracy = common.accuracy
unparsable = common.unparsable
