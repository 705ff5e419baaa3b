import math
import threading

import pytest

from mmpr.answers import (
    DEFAULT_RULES,
    LETTERS,
    Rules,
    UnscorableItem,
    anls,
    answer_score,
    choice_index,
    choice_indices,
    extract_final_answer,
    gold_choices,
    is_correct,
    normalize_text,
    options_in_text,
    parse_number,
    split_thinking,
)

COT = "First we look at the figure carefully and compute. "
COT22 = "I compare the marked lengths in the figure one by one and work it out.\n"


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
    # forms found in the benchmarks' stored model outputs
    (COT22 + "\\[ \\text{Answer: D} \\]", "D"),
    (COT22 + "\\[\\boxed{\\text{E}}\\]", "E"),
    (COT22 + "Answer: (\\text{B})", "(B)"),
    (COT22 + "Answer:\n\nC", "C"),
    (COT22 + "<Answer>: <<C>>", "C"),
    (COT22 + "Answer: （A)", "（A)"),
    ("<think>" + COT22 + "</think>\nAnswer: B", "B"),
    ("<think>" + COT22 + "so it is B", None),
    (COT22 + "Therefore, the correct answer is (D) Ff.</s>", "(D) Ff"),
    (COT22 + "The answer is 2.9 km. That is all.", "2.9 km"),
    (COT22 + "the popular choice is automatically correct.", None),
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


# ---------------------------------------------------------------------------- real benchmark structures and sources

def test_identical_options_are_one_answer_and_lookalikes_are_not():
    dup = ["9", "12", "18", "18"]  # MathVista testmini pid 781
    for said in ("C", "D", "18", "(D) 18", "18.0"):
        assert is_correct(said, "18", answer_type="multiple_choice", choices=dup), said
    assert not is_correct("B", "18", answer_type="multiple_choice", choices=dup)
    assert choice_indices("18", dup) == {2, 3} and choice_index("18", dup) is None
    lookalike = ["60-k", "k", "60+k", "120-k", "120-2*k"]  # pid 434: 60-k and 60+k normalise alike
    assert is_correct("60-k", "60-k", answer_type="multiple_choice", choices=lookalike)
    assert not is_correct("60+k", "60-k", answer_type="multiple_choice", choices=lookalike)
    letters = ["A", "B", "C", "D", "E"]  # pid 10: a gold "E" is the option E
    assert is_correct("E", "E", answer_type="multiple_choice", choices=letters)


def test_a_gold_naming_no_option_is_an_unscorable_item():
    with pytest.raises(UnscorableItem, match="names none of the choices"):
        is_correct("A", "7", answer_type="multiple_choice", choices=["9", "12"])


@pytest.mark.parametrize("prediction, answer", [
    ("x>5", "x<5"), ("(0,1)", "[0,1)"), ("(0,1]", "(0,1)"), ("3", "\\pm 3"), ("2x+3", "3"), ("3", "2x+3"),
    ("2", "y=3x+2"), ("2y+3", "2x+3"), ("x \\geq 5", "x > 5"), ("3", "x^2 = 3"),
])
def test_math_verify_parsed_no_is_never_overturned(prediction, answer):
    assert not is_correct(prediction, answer, answer_type="latex")


def test_latex_falls_back_only_where_math_verify_parses_nothing():
    assert is_correct("Evelyn", "\\text{Evelyn}", answer_type="latex")
    assert is_correct("x = 5", "5", answer_type="latex")  # math-verify compares an equation's right-hand side


@pytest.mark.parametrize("prediction, answer, correct", [
    ("2019", "2018", False), ("2018", "2018", True), ("2018.0", "2018", True), ("1995", "1996", False),
    ("81.9%", "0.819", True), ("0.819", "81.9%", True), ("96%", "0.96", True), ("0.96", "96%", True),
    ("45", "45%", True), ("100%", "0.94", False), ("81.9", "0.819", False), ("0.0", "0", True),
])
def test_chart_years_exact_and_percent_forms(prediction, answer, correct):
    assert is_correct(prediction, answer, answer_type="chart") is correct


@pytest.mark.parametrize("text, normal", [
    ("1,000", "1000"), ("1,000,000 people", "1000000 people"), ("5.", "5"), ("3.5", "3.5"), ("The Cat!", "cat"),
    ("an apple, please", "apple please"), ("two dogs", "2 dogs"), ("1,2", "1,2"), ("e.g. this", "e g this"),
])
def test_vqa_normalisation(text, normal):
    assert normalize_text(text) == normal


@pytest.mark.parametrize("response, expected", [
    ("<think>The bars add up to forty-two.</think><answer>42</answer>", "42"),
    ("<think>Adding both sides gives seven.</think>\n<answer>\\boxed{7}</answer>", "7"),
    ("第一步，读图。\n第二步，比较。\n答案: 5", "5"),
    ("第一步，读图。\n第二步，比较。\n答案：B", "B"),
    ("<answer>42</answer>", None),
])
def test_answer_tags_and_chinese_trigger(response, expected):
    assert extract_final_answer(response) == expected


def test_strict_extraction_rejects_several_different_final_answers():
    changed = COT + "Final answer: 3\nWait, no. Final answer: 4"
    assert extract_final_answer(changed) == "4"
    assert extract_final_answer(changed, strict=True) is None
    assert extract_final_answer(COT + "It is \\boxed{4}.\nFinal answer: 4", strict=True) == "4"
    assert extract_final_answer(COT + "It is \\boxed{3}.\nFinal answer: 4", strict=True) is None
    assert extract_final_answer(COT + "Final answer: 4.0\nFinal answer: 4", strict=True) == "4"


@pytest.mark.parametrize(("response", "expected"), [
    ("<think>The bars read 3 and 4, so the sum is 7.</think>\nFinal answer: 7", ("\nFinal answer: 7", 39)),
    ("The template opened the block. Counting gives 7.</think>Final answer: 7", ("Final answer: 7", 48)),
    ("<think>Counting the bars one by one: 3, then", (None, 37)),
    ("No tags here. Final answer: 7", ("No tags here. Final answer: 7", 0)),
])
def test_split_thinking(response, expected):
    assert split_thinking(response) == expected


def test_extraction_strips_thinking_and_counts_it_as_reasoning():
    assert extract_final_answer("<think>3 plus 4 makes 7, and the box says \\boxed{8}</think>\n"
                                "Final answer: 7", strict=True) == "7"
    assert extract_final_answer("<think>3 plus 4 makes 7. Final answer: 7") is None
    assert extract_final_answer("<think>\n\n</think>\n\nFinal answer: 7") is None  # no reasoning anywhere


# ------------------------------------------------------------------------ issue 22: scoring as the benchmarks score

EMPTY_ANSWERS = [*"#)(?-.,;:!*_~/\\|\"'`", "", " ", "...", "--", "()", "the", "a", "an", "The", "an the", "?!"]


@pytest.mark.parametrize("letter", list(LETTERS))
def test_nothing_that_normalises_to_nothing_is_ever_an_option(letter):
    """Punctuation and stop words against every letter option, as gold letter and as gold text."""
    choices = list(LETTERS[:LETTERS.index(letter) + 1])
    for rules in (DEFAULT_RULES, Rules(letter_gold=True)):
        for answer in EMPTY_ANSWERS:
            if answer.strip().upper() == letter:
                continue
            assert not is_correct(answer, letter, answer_type="multiple_choice", choices=choices, rules=rules), answer
    for answer in EMPTY_ANSWERS:
        if answer.strip().upper() != letter:
            assert not is_correct(answer, letter, answer_type="text"), answer
            assert not is_correct(answer, letter, answer_type="text", rules=Rules(text="contains")), answer


def test_a_letter_is_never_an_article():
    assert normalize_text("A") == "a" and normalize_text("the") == "the" and normalize_text("a cat") == "cat"
    assert is_correct("A", "A", answer_type="multiple_choice", choices=["A", "B", "C", "D"])
    assert not is_correct("#", "A", answer_type="multiple_choice", choices=["A", "B", "C", "D"])
    assert not is_correct("the", "a", answer_type="text")
    assert choice_index("A, C", list("ABCD")) is None  # two letters, not "c" once the article "a" is dropped


def test_a_letter_gold_is_read_as_a_letter_where_the_options_are_letters():
    options = ["F", "D", "B", "I", "No correct answer"]  # We-Math 2steps_9: "A. F; B. D; C. B; D. I"
    letter = Rules(letter_gold=True)
    assert gold_choices("B", options, letter_gold=True) == {1}
    assert gold_choices("B", options) == {2}  # MathVista's golds are option texts
    assert is_correct("B", "B", answer_type="multiple_choice", choices=options, rules=letter)
    assert not is_correct("D", "B", answer_type="multiple_choice", choices=options, rules=letter)  # the letter D
    assert not is_correct("C", "B", answer_type="multiple_choice", choices=options, rules=letter)


@pytest.mark.parametrize("text, options", [
    ("Is it periodic? Choices: (A) Yes (B) No", ["Yes", "No"]),
    ("how many zeros? choice: (A) 2 (B) 1 (C) 0", ["2", "1", "0"]),
    ("A. 45° B. 60° ;C. 120°; D. 150°; E. No correct answer", ["45°", "60°", "120°", "150°", "No correct answer"]),
    ("A. ①;B．②;C. ③; D. Cannot be determined", ["①", "②", "③", "Cannot be determined"]),
    ("A. ①; ③;B. ②; ③;C. ②; ④", ["①; ③", "②; ③", "②; ④"]),
    ("A. Yes;B. No.; F. No correct answer", ["Yes", "No."]),
    ("the angle is ()\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°", ["40°", "60°", "120°", "140°"]),
    ("Select from A, B, C, and D. (A) 140TWh (B) 400TWh (C) 64TWh (D) 96TWh", ["140TWh", "400TWh", "64TWh", "96TWh"]),
    ("What diagram replaces it? Select from A, B, C, and D. (A) (B) (C) (D)", ["", "", "", ""]),
    ("its equation.A. \\frac{x^2}{81} = 1 B. Can not determine.", ["\\frac{x^2}{81} = 1", "Can not determine."]),
    ("Which figure comes next?", None), ("Point A lies on BC.", None),
])
def test_options_written_in_the_question(text, options):
    assert options_in_text(text) == options


@pytest.mark.parametrize("prediction, choices, index", [
    ("（A)", ["3", "4"], 0), ("(b)", ["3", "4"], 1), ("(\\text{B})", ["3", "4"], None),
    ("option D in the image is the answer.", ["the solution is option A in the image.", "option B in the image",
                                             "x", "option D in the image is the answer."], 3),
    ("Image C", list("ABCD"), 2), ("(a) the kinetic energy is 9672 J", ["9673J", "5723J"], None),
    ("$\\frac{1}{300}$", ["$\\frac{1}{100}$", "$\\frac{1}{300}$"], 1),
    ("50(5-\\sqrt{5})", ["$50(5+\\sqrt{5})$", "$50(5-\\sqrt{5})$"], 1),
    ("96", ["$3 \\cdot 2^{5}$", "$3^{6}$"], 0),
])
def test_choice_forms(prediction, choices, index):
    assert choice_index(prediction, choices) == index


@pytest.mark.parametrize("text, value", [
    ("24π", 24 * math.pi), ("2π/3", 2 * math.pi / 3), ("\\frac{2\\pi}{3}", 2 * math.pi / 3), ("-π", -math.pi),
    ("It could be 4 or 5.", None), ("The length is 5.", 5), ("1,22", 1.22), ("1000,99", 1000.99),
    ("1 000", 1000), ("1\\,000", 1000), ("1\u2009000", 1000), ("1,234", 1234), ("(1,2)", None),
])
def test_numbers_as_the_benchmarks_write_them(text, value):
    assert parse_number(text) == (None if value is None else pytest.approx(value))


def test_rules_for_numbers_and_containment():
    absolute = Rules(numbers="absolute", tolerance=1e-3)
    assert is_correct("75.398", "75.3982", answer_type="float", rules=absolute)
    assert is_correct("24π", "75.398", answer_type="float", rules=absolute)
    assert not is_correct("75.45", "75.398", answer_type="float", rules=absolute)  # relative 1e-3 would accept
    assert is_correct("0.0009", "0", answer_type="float", rules=absolute)
    decimals = Rules(numbers="decimals", tolerance=2)
    assert is_correct("3.141", "3.14", answer_type="float", rules=decimals)
    assert not is_correct("3.146", "3.14", answer_type="float", rules=decimals)
    contains = Rules(text="contains")
    assert is_correct("September", "Sep", answer_type="text", rules=contains)
    assert is_correct("the embryonic stage", "embryonic", answer_type="text", rules=contains)
    assert not is_correct("cat", "a", answer_type="text", rules=contains)
    assert not is_correct("September", "Sep", answer_type="text")


def test_a_sign_is_never_normalised_away():
    assert not is_correct("$1 + \\frac{1}{\\mathrm{e}}$", "$1 - \\frac{1}{\\mathrm{e}}$", answer_type="latex")
    assert is_correct("$1 - \\frac{1}{\\mathrm{e}}$", "$1 - \\frac{1}{\\mathrm{e}}$", answer_type="latex")
    assert is_correct("1,22", "1.22", answer_type="latex") and is_correct("1 000", "1000", answer_type="latex")
