import threading

import pytest

from mmpr.answers import anls, answer_score, choice_index, extract_final_answer, is_correct, parse_number

COT = "First we look at the figure carefully and compute. "


@pytest.mark.parametrize("response, expected", [
    (COT + "Final answer: 5", "5"),
    (COT + "Final Answer: (B) 3.5.", "(B) 3.5"),
    (COT + "**Final answer:** 12 cm", "12 cm"),
    (COT + "Final answer:\n\n  B\n", "B"),
    (COT + "Final answer: $\\frac{1}{2}$", "\\frac{1}{2}"),
    (COT + "Final answer: \\boxed{42}", "42"),
    (COT + "Final answer: 3\nWait, no. Final answer: 4", "4"),
    (COT + "Final answer is: yes", "yes"),
    (COT + "Final answer：C", "C"),
    (COT + "\nAnswer: \\boxed{\\sqrt{2}}", "\\sqrt{2}"),
    (COT + "so the result is \\boxed{7}.", "7"),
    (COT + "Answer: 17", "17"),
    (COT + "Answer: \\boxed{3}\nFinal answer: 3", "3"),
])
def test_extracts_the_last_stated_answer(response, expected):
    assert extract_final_answer(response) == expected


@pytest.mark.parametrize("response", [
    "Final answer: 5",                                 # no rationale
    "B",                                               # a bare answer
    COT + "so it must be one of the two.",             # no final answer at all (e.g. truncated)
    COT + "Final answer:",                             # empty answer
    COT + "Final answer: \\boxed{3} or \\boxed{4}",    # ambiguous
    COT + "it is \\boxed{3} or \\boxed{4}",            # ambiguous
    "",
])
def test_unparsable_responses_give_none(response):
    assert extract_final_answer(response) is None


def test_rationale_length_is_configurable():
    assert extract_final_answer("So. Final answer: 5", min_rationale_words=1) == "5"
    assert extract_final_answer("So. Final answer: 5") is None


CHOICES = ["3.5", "4", "5.5", "6"]


@pytest.mark.parametrize("text, index", [
    ("B", 1), ("(B)", 1), ("B.", 1), ("B)", 1), ("B: 4", 1), ("option B", 1), ("Option (B)", 1),
    ("the answer is (b)", 1), ("(B) 4", 1), ("The correct option is (B).", 1), ("[C]", 2), ("b", 1),
    ("4", 1), ("5.5", 2), ("6.0", 3), ("E", None), ("A or B", None), ("(A) or (B)", None), ("seven", None),
    ("", None),
])
def test_choice_index(text, index):
    assert choice_index(text, CHOICES) == index


def test_multiple_choice_ground_truth_as_letter_or_text():
    choices = ["a cat", "a dog", "a bird"]
    assert is_correct("B", "B", answer_type="multiple_choice", choices=choices)
    assert is_correct("(B) a dog", "a dog", answer_type="multiple_choice", choices=choices)
    assert is_correct("The Dog", "B", answer_type="multiple_choice", choices=choices)
    assert not is_correct("C", "a dog", answer_type="multiple_choice", choices=choices)
    with pytest.raises(ValueError, match="needs the choices"):
        is_correct("B", "B", answer_type="multiple_choice")
    with pytest.raises(ValueError, match="names none of the choices"):
        is_correct("B", "a fish", answer_type="multiple_choice", choices=choices)


@pytest.mark.parametrize("text, value", [
    ("12", 12), ("12 cm", 12), ("$12", 12), ("12°", 12), ("12^\\circ", 12), ("1,234", 1234), ("-3.5", -3.5),
    ("x = 5", 5), ("3/4", 0.75), ("\\frac{3}{4}", 0.75), ("45%", 45), ("45\\%", 45), ("12 cm^2", 12),
    ("12 m²", 12), ("\\text{5 apples}", 5), (".5", 0.5), ("1e3", 1000), ("seven", 7), ("2 and 3", None),
    ("none of them", None), ("abc", None), ("3/0", None), ("10.5 kg", 10.5),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("prediction, answer, answer_type, correct", [
    ("12", "12", "integer", True), ("12.0", "12", "integer", True), ("12 apples", "12", "integer", True),
    ("13", "12", "integer", False), ("12.4", "12", "integer", False), ("twelve", "12", "integer", True),
    ("3.1416", "3.14159", "float", True), ("3.15", "3.14159", "float", False), ("0.5", "1/2", "float", True),
    ("45%", "45", "float", True), ("1,000.0", "1000", "float", True), ("no idea", "3", "float", False),
    ("0", "0", "float", True), ("0.0001", "0", "float", False),
    ("Yes", "yes", "yes_no", True), ("Yes, there is.", "Yes", "yes_no", True), ("No.", "yes", "yes_no", False),
    ("True", "Yes", "yes_no", True), ("maybe", "no", "yes_no", False),
    ("The Dog.", "dog", "text", True), ("dogs", "dog", "text", False), ("two", "2", "text", True),
    ("It isn't", "it isnt", "text", True), ("red car", "car red", "text", False),
    ("[1, 2, 3]", "1,2,3", "list", True), ("(1; 2; 3)", "[1, 2, 3]", "list", True),
    ("[1, 3, 2]", "[1, 2, 3]", "list", False), ("[1, 2]", "[1, 2, 3]", "list", False),
    ("[a, B]", "[A, b]", "list", True),
    ("104", "100", "chart", True), ("95.1", "100", "chart", True), ("106", "100", "chart", False),
    ("Canada", "canada", "chart", True), ("0", "0", "chart", True),
    ("Monday", "monday", "document", True), ("Mon", "Monday", "document", False),
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2", "latex", True), ("2x+1", "1+2x", "latex", True),
    ("x^2", "x^3", "latex", False), ("\\{1,2\\}", "\\{2,1\\}", "latex", True), ("0.5", "\\frac{1}{2}", "latex", True),
])
def test_is_correct_by_type(prediction, answer, answer_type, correct):
    assert is_correct(prediction, answer, answer_type=answer_type) is correct


def test_anls_is_a_similarity_with_threshold():
    assert anls("hello", "hello") == 1.0
    assert anls("hallo", "hello") == pytest.approx(0.8)
    assert anls("xyz", "hello") == 0.0
    assert answer_score("hallo", "hello", answer_type="document") == pytest.approx(0.8)
    assert answer_score("hallo", ["nope", "hello"], answer_type="document") == pytest.approx(0.8)


def test_missing_prediction_scores_zero_and_unknown_type_is_an_error():
    assert answer_score(None, "1", answer_type="integer") == 0.0
    assert answer_score("  ", "1", answer_type="integer") == 0.0
    with pytest.raises(ValueError, match="unknown answer_type"):
        answer_score("1", "1", answer_type="bogus")


def test_latex_judging_works_outside_the_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(is_correct("\\frac{2}{4}", "0.5", answer_type="latex")))
    thread.start()
    thread.join()
    assert results == [True]
