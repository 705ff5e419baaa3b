"""The re-implemented official scorers, on responses and items of the benchmarks' own repositories."""

import pytest

from evals import official

MMMU_OPTIONS = ["Singly linked list", "Doubly linked list", "Circularly linked list", "Array"]


@pytest.mark.parametrize("response, expected", [
    ("(B)", "B"), ("The answer is (A), not (C).", "C"), ("I pick B here", "B"),
    ("The data structure pictured in the image is a doubly linked list.", "B"),  # more than five words: text
    ("linked list", None),                                                        # MMMU would pick at random
])
def test_mmmu_multiple_choice_parsing(response, expected):
    assert official.mmmu_choice(response, MMMU_OPTIONS) == expected


@pytest.mark.parametrize("response, answers, correct", [
    ("The speed is 3.14159 m/s.", ["3.14"], True), ("Therefore the answer is 1,234", ["1234"], True),
    ("So the capital is Paris", ["Paris"], True), ("Tampa, Florida", ["Tampa", "Florida"], True),
    ("The result is 7", ["8"], False), ("it is a cat", ["a"], True), ("it is the cat", ["a"], False),
])
def test_mmmu_open_answers(response, answers, correct):
    assert official.mmmu(response, "open", [], answers)[1] is correct


@pytest.mark.parametrize("response, answer, expected, correct", [
    ("The cherry blossoms are in bloom, so it is likely spring.\nThe answer is (D)", "D", "D", True),
    ("The scientific name of the black-footed cat is Felis nigripes.", "A", "A", True),   # the option's text
    ("allele for a spotted tail (I), so Mer has an unspotted tail. The answer is B: an unspotted tail.", "B", "I",
     False),                                                                              # its last "(x)" wins
])
def test_m3cot_judge_answer(response, answer, expected, correct):
    choices = ["Felis nigripes", "Phoebastria nigripes", "Macropus giganteus", "Spring"]
    assert official.m3cot(response, choices, answer) == (expected, correct)


@pytest.mark.parametrize("response, expected", [  # MathVerse evaluation/prompts.py demo_prompt_extract, 1-6
    ("Rounded to two decimal places, the perimeter of the sector is approximately:\n\n(-2, 1)", "(-2, 1)"),
    ("Therefore, the correct option that represents the meaning of the intersection points of the graphs is:\n\n"
     "D. They give the solutions.", "D. They give the solutions."),
    ("the range in interval notation is \\((-4, 1]\\).\n\nFinal values:\nDomain: \\((-3, 3]\\)\nRange: \\((-4, 1]\\)",
     "Domain: \\((-3, 3]\\)\nRange: \\((-4, 1]\\)"),
    ("As it stands, I cannot provide the correct option letter because there isn't enough information to solve for "
     "'y'.", None),
    ("we can now substitute into the equation:\n\nd = 17.6 / cos(38°)\n\nTherefore, to one decimal place, the "
     "distance d between Ned and Bart is approximately 22.3 meters.", "22.3 meters"),
    ("Therefore, the equation for the graphed function \\( f \\) is:\n\\( f(x) = -x^2 - 2x + 1 \\)",
     "\\( f(x) = -x^2 - 2x + 1 \\)"),
])
def test_mathverse_extract(response, expected):
    assert official.mathverse_extract(response) == expected


LOGICVISTA = ["Alpha", "Beta", "Charlie", "Delta", "Echo"]


@pytest.mark.parametrize("response, expected", [  # LogicVista eval/results/*-accuracy-results.csv raw answers
    ("The answer is A. BECAUSE:.", "A"), ("The answer is (B", "B"), ("A and C", "A and C"), ("✗ Echo", "Echo"),
    ("C) Some dolphins are whales", "C) Some dolphins are whales"),     # itself an option: judged whole
    ("Based on the image, the piece that matches is B.", "B"),
    ("The figure could be (A) or (C).", None),                         # several letters marked: none read
    ("I cannot see the image.", None),
])
def test_logicvista_choices(response, expected):
    assert official.logicvista_choices(response, LOGICVISTA) == expected


@pytest.mark.parametrize("response, options, answer, correct", [
    ("so the area is $\\boxed{\\frac{1}{2}}$", [], "\\frac{1}{2}", True),
    ("Therefore, the answer is (D).", ["1", "2", "3", "4", "5"], "D", True),
    ("The answer is 4.", ["1", "2", "3", "4", "5"], "D", True),                              # the option's value
    ("so the sum is 48 km.\n\n\\boxed{48}", [], "46", False),
])
def test_mathvision_evaluate(response, options, answer, correct):
    assert official.mathvision(response, options, answer)[1] is correct


@pytest.mark.parametrize("response, kind, gold, correct", [
    ('{"solution": "...", "short answer": "2.094"}', "float", "2.0944", True),
    ('{"solution": "...", "short answer": "24π"}', "float", "75.398", True),
    ('{"solution": "...", "short answer": "2π/3"}', "float", "2.0944", False),  # its transfer() reads 2π
    ('{"solution": "...", "short answer": "(B)"}', "multiple choice", "B", True),
    ('{"solution": "...", "short answer": "September"}', "text", "Sep", True),
    ("no json here\nthe answer is 5.", "float", "5", False),
])
def test_dynamath_rule(response, kind, gold, correct):
    assert official.dynamath(response, kind, gold)[1] is correct


@pytest.mark.parametrize("response, expected", [
    ("... so the area is 8.\n<Answer>: <<C>>", "C"), ("Answer: B. 8 cm²", "B"), ("Answer: 8 cm²", None),
])
def test_wemath_accuracy(response, expected):
    assert official.wemath(response, "C") == (expected, expected == "C")
