import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc, smoke

utils = get("mathverse").utils()
COT = "The angle at the centre is twice the inscribed angle, so I halve it.\n"


@pytest.mark.parametrize("i, response, correct", [
    (0, "Final answer: C", True), (0, "Final answer: (C) 30°", True), (0, "Final answer: D", False),
    (1, "Final answer: 12", True), (1, "Final answer: $12$", True), (1, "Final answer: 13", False),
])
def test_vision_only_letters_and_free_form(i, response, correct):
    record = utils.process_results_cot(doc("mathverse", i), [COT + response])["accuracy"]
    assert record["parsable"] and record["correct"] is correct


def test_the_prompt_points_at_the_image_and_lists_no_options():
    text = utils.doc_to_text(doc("mathverse", 0), {"prompt": "cot"})
    assert "shown in the image" in text and "Options:" not in text
    assert utils.categories(doc("mathverse", 0)) == {"question_type": ["multi-choice"], "subject": ["Plane Geometry"],
                                                     "subfield": ["Angle"], "source": ["GeoQA"]}


def test_a_missing_field_is_named():
    with pytest.raises(MissingField, match="MathVerse: the dataset has no field question_type"):
        utils.target({k: v for k, v in doc("mathverse", 0).items() if k != "question_type"})


def test_an_item_the_rules_cannot_judge_is_counted_not_a_crash():
    from evals import task_utils

    d = doc("mathverse", 0)
    target = utils.target(d)
    bad = type(target)("Z", "multiple_choice", ["A", "B"])  # a ground truth naming no option
    record = task_utils.process(d, [COT + "Final answer: A"], bad, "cot", {}, "1")["accuracy"]
    assert record["correct"] is False and not record["scorable"] and "names none of the choices" in record["problem"]
    assert record["parsable"] and record["extracted"] == "A"


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "mathverse") > 100
