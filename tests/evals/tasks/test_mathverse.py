import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc

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
