import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc, smoke

utils = get("mmmu").utils()
COT = "Reading the figure and recalling the relevant facts step by step.\n"


def _record(d, response):
    return utils.process_results_cot(d, [response])["accuracy"]


def test_multiple_choice_with_options_written_as_a_string():
    d = doc("mmmu", 0)
    assert utils.options(d) == ["Baroque", "Rococo", "Gothic"]
    assert _record(d, COT + "Final answer: B")["correct"]
    assert _record(d, COT + "Final answer: Rococo")["correct"]
    assert not _record(d, COT + "Final answer: C")["correct"]
    assert _record(d, COT + "Final answer: B")["categories"] == {
        "subject": ["Art_Theory"], "question_type": ["multiple-choice"], "subfield": ["Art History"],
        "topic_difficulty": ["Medium"]}


def test_several_acceptable_answers_any_counts():
    d = {**doc("mmmu", 0), "answer": "['A', 'C']"}
    assert _record(d, COT + "Final answer: A")["correct"] and _record(d, COT + "Final answer: C")["correct"]
    assert not _record(d, COT + "Final answer: B")["correct"]
    opened = {**doc("mmmu", 1), "answer": "['3.429', '24/7']"}
    assert _record(opened, COT + "Final answer: 3.43")["correct"]


@pytest.mark.parametrize("response, correct", [
    ("Final answer: 3.14", True), ("Final answer: 3.1416 m/s", True), ("Final answer: 3.144", True),
    ("Final answer: 3.15", False), ("Final answer: 3.1", False),
])
def test_open_numbers_are_compared_at_two_decimals(response, correct):
    assert _record(doc("mmmu", 1), COT + response)["correct"] is correct


def test_open_text_answers_are_normalised():
    d = {**doc("mmmu", 1), "answer": "Newton's second law"}
    assert _record(d, COT + "Final answer: newton's second law.")["correct"]


def test_images_in_the_order_the_question_and_options_name_them():
    d = {**doc("mmmu", 0), "question": "Compare <image 2> with <image 1>.", "options": "['<image 3>', 'neither']",
         "image_2": doc("mmmu", 1)["image_1"], "image_3": doc("mmmu", 2)["image_1"]}
    assert utils.image_order(d) == [1, 2, 3] and len(utils.doc_to_visual(d)) == 3


def test_a_missing_field_is_named():
    with pytest.raises(MissingField, match="MMMU: the dataset has no field question_type"):
        utils.target({k: v for k, v in doc("mmmu", 0).items() if k != "question_type"})


def _doc(question_type, answer, options="[]"):
    return {**doc("mmmu", 0), "id": "validation_Math_1", "question_type": question_type, "answer": answer,
            "options": options}


def test_lmms_evals_own_mmmu_cases_under_the_cot_format():
    # the cases of lmms-eval's test/eval/test_mmmu_utils.py, answered in the CoT format
    assert _record(_doc("open", "0.5"), COT + "Final answer: 0.5")["correct"]
    assert not _record(_doc("open", "0.5"), COT + "Final answer: 42")["correct"]
    assert _record(_doc("open", "hexagon"), COT + "Final answer: hexagon.")["correct"]
    mc = _doc("multiple-choice", "B", "['first', 'second', 'third', 'fourth']")
    assert _record(mc, COT + "Final answer: B")["correct"] and _record(mc, COT + "Final answer: second")["correct"]


@pytest.mark.parametrize("gold, pred", [("3.14", "3.1416"), ("3.14", "3.15"), ("0.5", "0.50"), ("12", "12.004"),
                                        ("1,200", "1200"), ("2.675", "2.68"), ("-0.3", "-0.304"), ("7", "7.01")])
def test_numbers_agree_with_mmmus_own_rounding(gold, pred):
    from lmms_eval.tasks.mmmu.utils import normalize_str

    theirs = normalize_str(pred)[0] in normalize_str(gold)
    assert _record(_doc("open", gold), COT + f"Final answer: {pred}")["correct"] is theirs


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "mmmu") > 100
