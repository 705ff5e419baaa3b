from evals.registry import get
from evals.scoring import mathvision_target
from tests.evals.tasks.rows import doc, smoke

utils = get("mathvision").utils()
COT = "I measure the sides in the figure and compare the options.\n"


def test_a_letter_gold_named_by_letter_or_by_the_options_value():
    mc = doc("mathvision", 0)  # options 1..5, gold C
    assert utils.process_results_cot(mc, [COT + "Answer: C"])["accuracy"]["correct"]
    assert utils.process_results_cot(mc, [COT + "Answer: 3"])["accuracy"]["correct"]
    assert not utils.process_results_cot(mc, [COT + "Answer: 2"])["accuracy"]["correct"]


def test_free_form_values_are_equal_at_two_decimals():
    free = {**doc("mathvision", 1), "answer": "2.5"}
    assert utils.process_results_cot(free, [COT + "Answer: 2.504"])["accuracy"]["correct"]
    assert not utils.process_results_cot(free, [COT + "Answer: 2.51"])["accuracy"]["correct"]
    assert utils.process_results_cot(doc("mathvision", 1), [COT + "Answer: $2\\sqrt{3}$"])["accuracy"]["correct"]


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "mathvision", mathvision_target) > 100
