"""DynaMath: each seed question comes in several generated variants (10 in DynaMath_Sample); the headline is the
worst case, a seed counting as solved only when every one of its variants is answered right.

Schema (DynaMath/DynaMath_Sample; lscpku/DynaMath_Sample adds the split sample_all with all ten variants): id (the
seed question, shared by its variants), question, image, decoded_image, ground_truth, answer_type ("multiple
choice", "float", or free text), subject, knowledge_level. Multiple-choice questions list their options in the
question text ("Choices: (A) yes (B) no"); the ground truth is the letter.

That ``id`` groups a seed's variants is what lmms-eval's loader relies on (``tasks/dynamath/reasoning/utils.py``:
``dynamath_aggregate_results`` takes the minimum over the results sharing ``doc["id"]`` for its worst case);
:func:`summarize` stops with one line when no two samples share an id, rather than report the average as the worst.

The official rule (DynaMath ``evaluation/opensource_json_eval.py``, the same in the gpt4o/gemini/claude scripts):
a float is right within an absolute 0.001 of the ground truth (``24π`` read as 24 x pi); a multiple-choice answer
is the option's letter (here also the option's text or value, as the choices are in the question); any other
answer is right when it contains the ground truth ("September" for "Sep"; case aside). A response stating no
final answer is read as that script reads it: the "short answer" of its JSON output, else its last line less the
last character.
"""

import re
from collections import defaultdict

from evals import task_utils as common
from evals.registry import get
from evals.scoring import Target, require
from mmpr.answers import Rules, options_in_text
from mmpr.errors import UserError

FIELDS = get("dynamath").fields
FLOAT_RULES = Rules(numbers="absolute", tolerance=1e-3, whole_response="dynamath")
TEXT_RULES = Rules(text="contains", whole_response="dynamath")
CHOICE_RULES = Rules(letter_gold=True, whole_response="dynamath")
_LETTER = re.compile(r"^\(?([A-H])\)?$")


def target(doc) -> Target:
    require(doc, FIELDS, "DynaMath")
    answer, kind = str(doc["ground_truth"]).strip(), str(doc["answer_type"]).strip().lower()
    if kind == "multiple choice":
        options = options_in_text(doc["question"]) or []
        gold = _LETTER.match(answer)
        count = max(len(options), ord(gold[1]) - ord("A") + 1 if gold else 0, 2)
        if len(options) < count or not all(options):
            options = common.letters(count)
        return Target(answer, "multiple_choice", options, rules=CHOICE_RULES)
    if kind == "float":
        return Target(answer, "float", rules=FLOAT_RULES)
    return Target(answer, "text", rules=TEXT_RULES)


def doc_to_visual(doc):
    return [doc["decoded_image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    return {key: [str(doc[key])] for key in ("subject", "knowledge_level", "answer_type") if doc.get(key)}


def reference(doc) -> dict:
    return {"seed": str(doc["id"]), "answer_type": str(doc["answer_type"]), "ground_truth": str(doc["ground_truth"])}


def summarize(records: list[dict]) -> dict[str, float]:
    """Average accuracy over all variants and worst-case accuracy over seed questions (DynaMath, section 4).

    Raises :class:`mmpr.errors.UserError` when the samples cannot be grouped into seeds (no two share an id):
    the worst case would silently equal the average."""
    by_seed: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_seed[r["reference"]["seed"]].append(bool(r["correct"]))
    seeds = len(by_seed)
    if len(records) > 1 and seeds == len(records):
        raise UserError(f"DynaMath: the {len(records)} samples name {seeds} different ids, so no seed has two "
                        "variants and the worst case cannot be computed; evaluate a split whose id is the seed "
                        "question (lscpku/DynaMath_Sample sample_all) with every variant (no --limit)")
    return {"average": round(100 * sum(r["correct"] for r in records) / max(len(records), 1), 2),
            "worst_case": round(100 * sum(all(v) for v in by_seed.values()) / max(seeds, 1), 2),
            "seeds": seeds, "min_variants_per_seed": min((len(v) for v in by_seed.values()), default=0)}


globals().update(common.processors(target, categories, lambda doc: doc.get("id"), reference))
accuracy = common.accuracy
unparsable = common.unparsable
