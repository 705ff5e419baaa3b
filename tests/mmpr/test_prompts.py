import pytest

from mmpr.answers import extract_final_answer
from mmpr.prompts import TEMPLATES, format_question, get_template, strip_direct_instructions
from mmpr.registry import UnknownName


@pytest.mark.parametrize("question, stripped", [
    ("What colour is the car?\nAnswer the question using a single word or phrase.", "What colour is the car?"),
    ("Which is larger?\nA. 1\nB. 2\nAnswer with the option's letter from the given choices directly.",
     "Which is larger?\nA. 1\nB. 2"),
    ("Is it raining? Please answer yes or no.", "Is it raining?"),
    ("Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
     "Question: Which shape is red?", "Question: Which shape is red?"),
    ("Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, "
     "at the end.\nQuestion: How many cubes?", "Question: How many cubes?"),
    ("Hint: Please answer the question requiring a floating-point number with two decimal places and provide the "
     "final value, e.g., 1.23, 1.34, 1.45, at the end.\nQuestion: What is x?", "Question: What is x?"),
    ("How many people are there?", "How many people are there?"),
])
def test_strip_direct_instructions(question, stripped):
    assert strip_direct_instructions(question) == stripped


def test_options_are_listed_once():
    assert format_question("Pick one.", ["cat", "dog"]) == "Pick one.\nOptions:\nA. cat\nB. dog"
    listed = "Pick one.\nA. cat\nB. dog"
    assert format_question(listed, ["cat", "dog"]) == listed
    assert format_question("How many?", None) == "How many?"


def test_templates_render_and_name_their_answer_format():
    cot = get_template("mpo_cot").render("How many?", None)
    assert "How many?" in cot and "Final answer:" in cot
    boxed = get_template("boxed_cot").render("How many?")
    assert "\\boxed{...}" in boxed
    assert {get_template(name).style for name in TEMPLATES} == {"cot", "direct"}
    with pytest.raises(UnknownName, match="unknown prompt template 'nope'; available: boxed_cot, direct, "
                                          "direct_choice, mpo_cot"):
        get_template("nope")
    assert "did you mean 'mpo_cot'" in str(pytest.raises(UnknownName, get_template, "mpo_cto").value)


def test_a_response_in_the_requested_form_is_parsable():
    for name in ("mpo_cot", "boxed_cot"):
        form = "Final answer: 7" if name == "mpo_cot" else "Answer: \\boxed{7}"
        assert extract_final_answer("Three plus four makes seven.\n" + form) == "7"
