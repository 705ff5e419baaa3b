"""MathVerse testmini, vision-only version: the question and its options are drawn in the diagram.

Schema (CaraJ/MathVerse-lmmseval, config testmini_version_split, split vision_only): sample_index, problem_index,
problem_version, question, image, answer, question_type ("multi-choice" or "free-form"), metadata (split, source,
subject, subfield), query_wo, query_cot, question_for_eval. The prompt shows the version's ``question`` text (what
this version keeps outside the image, as lmms-eval's custom prompt does) and says the rest is in the image.
Multiple-choice answers are option letters; the options are drawn in the image, and the published
``question_for_eval`` lists them too ("Choices:\nA:5\nB:6 ..."), so an answer given as the option's text or value
counts as that option. Free-form answers go to math-verify.

The official scorer (MathVerse ``evaluation/score_answer_s2.py``) asks GPT-4 to match an extraction against the
answer, with a ``quick_match`` (the extraction equals the answer, as lmms-eval's ``tasks/mathverse/
mathverse_evals.py`` keeps it) as its rule-based mode; the project's rule is that exact match widened to the
option's text and to equal values. A response stating no final answer is read by the rule the extraction's
demonstrations (``evaluation/prompts.py`` ``demo_prompt_extract``) show (:func:`evals.official.mathverse_extract`):
a departure from the official GPT-4 extraction, which has no rule of its own.
"""

from evals import task_utils as common
from evals.registry import get
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import Rules, choice_set, options_in_text, several_choices

FIELDS = get("mathverse").fields
RULES = Rules(letter_gold=True, whole_response="mathverse")
SEE_IMAGE = "Answer the question shown in the image."
SEE_OPTIONS = "Answer the question shown in the image; its options are shown there too. Give the option's letter."


def options(doc) -> list[str]:
    """The options ``question_for_eval`` lists ("Choices:\nA:5\nB:6 ..."), else the letters A-E."""
    found = options_in_text(str(doc.get("question_for_eval") or "")) or []
    return found if len(found) >= 2 and all(found) else common.letters(5)


def _letters(answer: str) -> bool:
    return all(len(p) == 1 and p.upper() in "ABCDEFGH" for p in answer.replace(",", " ").split())


def target(doc) -> Target:
    require(doc, FIELDS, "MathVerse")
    answer = str(doc["answer"]).strip()
    if doc["question_type"] == "multi-choice" and answer and _letters(answer):
        choices = options(doc)
        if max("ABCDEFGH".find(p.upper()) for p in answer.replace(",", " ").split()) >= len(choices):
            choices = common.letters(8)
        return Target(answer, "list" if several_choices(answer) else "multiple_choice",
                      None if several_choices(answer) else choices, rules=RULES)
    return Target(answer, "latex", rules=RULES)


def judge(doc, extracted: str) -> bool:
    """A gold of several letters ("C\nD") is right only as exactly that set of options."""
    t = target(doc)
    if t.answer_type != "list":
        return shared_judge(extracted, t)
    choices = options(doc) if len(options(doc)) >= 2 else common.letters(8)
    gold = choice_set(t.answer, common.letters(len(choices)))
    return gold is not None and choice_set(extracted, choices) == gold


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


globals().update(common.processors(target, categories, lambda doc: doc.get("sample_index"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
