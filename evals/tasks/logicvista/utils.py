"""LogicVista: logical reasoning over diagrams; the options are drawn in the image or written in the question.

Schema (lscpku/LogicVista, from the benchmark's data/dataset.json): imagename, question, answer, reasoning, skill
(list: inductive, deductive, numerical, spatial, mechanical), broad_capability (list: diagram, ocr, ...),
specific_capability (list), imagesource; some copies keep an older ``capability`` list. An answer is one option
letter ("C"), several ("B, D": all of them and no other), or the number of a numbered option ("3").

The official scorer (LogicVista ``eval/extract_accuracy.py``) has GPT-4 extract the chosen letters from the answer
and counts the item right when that set equals the gold set. The project reads the set without a model: each
part of the final answer is an option letter, or an option's text where the question lists the options
("Select from A, B, C, and D. (A) 140TWh (B) 400TWh ...").

A response stating no final answer (LogicVista's prompt asks for none, and its GPT-4 extraction reads any
response) is read by the rule its stored extractions imply (:func:`evals.official.logicvista_choices`: a bare
answer, a response that is an option, its leading letter, the one letter it marks): a departure from the official
LLM extraction, which infers a letter where a response only describes an option; on the 6,272 stored extractions of
``eval/results/*-accuracy-results.csv`` the verdicts agree on 98.2 %.
"""

from evals import task_utils as common
from evals.official import logicvista_choices
from evals.registry import get
from evals.scoring import Target, require
from evals.scoring import judge as shared_judge
from mmpr.answers import Rules, choice_set, options_in_text, several_choices

FIELDS = get("logicvista").fields
LETTERS = common.letters(9)
RULES = Rules(letter_gold=True, whole_response="logicvista")
CAPABILITIES = ("skill", "broad_capability", "specific_capability", "capability")


def options(doc) -> list[str]:
    """The options the question lists (their texts where written, else the letters A-I)."""
    found = options_in_text(str(doc["question"])) or []
    return found if len(found) >= 2 and all(found) else LETTERS


def target(doc) -> Target:
    require(doc, FIELDS, "LogicVista")
    answer = str(doc["answer"]).strip()
    if answer.isdigit():
        return Target(answer, "integer", rules=RULES)
    several = several_choices(answer)
    return Target(answer, "list" if several else "multiple_choice", None if several else options(doc), rules=RULES)


def judge(doc, extracted: str) -> bool:
    """The set of options the answer names is the gold set; an answer naming none is read by LogicVista's rule
    (:func:`evals.official.logicvista_choices`)."""
    t = target(doc)
    if t.answer_type == "integer":
        return shared_judge(extracted, t)
    gold = choice_set(t.answer, LETTERS)
    named = choice_set(extracted, options(doc))
    if named is None:  # "c ) c ) c", "c. c. c. o": read as the stored extractions read such an answer
        letters = logicvista_choices(extracted, options(doc))
        named = choice_set(letters, options(doc)) if letters and letters != extracted else None
    return gold is not None and named == gold


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return common.prompt(doc["question"], common.style_of(lmms_eval_specific_kwargs))


def categories(doc) -> dict[str, list[str]]:
    # lists in the benchmark's own json; a single string where a copy flattened them
    return {key: [doc[key]] if isinstance(doc[key], str) else [str(v) for v in doc[key]]
            for key in CAPABILITIES if doc.get(key)}


globals().update(common.processors(target, categories, lambda doc: doc.get("imagename"), judge=judge))
accuracy = common.accuracy
unparsable = common.unparsable
