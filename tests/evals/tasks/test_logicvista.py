import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc, smoke

utils = get("logicvista").utils()
COT = "The square moves one cell to the right each time, so the missing figure follows.\n"


@pytest.mark.parametrize("i, response, correct", [
    (0, "Final answer: C", True), (0, "Final answer: (C)", True), (0, "Final answer: D", False),
    (1, "Final answer: A, C", True), (1, "Final answer: C and A", True), (1, "Final answer: (A) and (C)", True),
    (1, "Final answer: A", False), (1, "Final answer: A, B, C", False),
    (2, "Final answer: 3", True), (2, "Final answer: 4", False),
])
def test_single_and_several_letters_and_numbered_options(i, response, correct):
    record = utils.process_results_cot(doc("logicvista", i), [COT + response])["accuracy"]
    assert record["parsable"] and record["correct"] is correct


def test_categories_are_the_skills_and_capabilities():
    assert utils.categories(doc("logicvista", 0)) == {"skill": ["inductive"], "capability": ["diagram"]}
    published = {**doc("logicvista", 0), "capability": None, "broad_capability": ["diagram and ocr"],
                 "specific_capability": ["chart"]}  # the fields of lscpku/LogicVista
    assert utils.categories(published) == {"skill": ["inductive"], "broad_capability": ["diagram and ocr"],
                                           "specific_capability": ["chart"]}


def test_options_written_in_the_question_are_named_by_their_text():
    row = {**doc("logicvista", 0), "question": "Select from A, B, C, and D. (A) 140TWh (B) 400TWh (C) 64TWh (D) 96TWh"}
    assert utils.process_results_cot(row, [COT + "Final answer: 64TWh"])["accuracy"]["correct"]
    assert not utils.process_results_cot(row, [COT + "Final answer: 96TWh"])["accuracy"]["correct"]
    assert utils.categories({**doc("logicvista", 0), "skill": "deductive"})["skill"] == ["deductive"]


def test_a_missing_field_is_named():
    with pytest.raises(MissingField, match="LogicVista: the dataset has no field answer"):
        utils.target({k: v for k, v in doc("logicvista", 0).items() if k != "answer"})


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "logicvista") > 100
