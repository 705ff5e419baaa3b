import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import ROWS, doc, smoke

utils = get("dynamath").utils()
COT = "I read the two points off the plot and divide rise by run.\n"


def test_multiple_choice_in_the_question_text_and_floats():
    mc, area = doc("dynamath", 0), doc("dynamath", 1)
    assert utils.target(mc).choices == ["1", "2", "3"]  # "Choices: (A) 1 (B) 2 (C) 3"
    assert utils.process_results_cot(mc, [COT + "Final answer: (B) 2"])["accuracy"]["correct"]
    assert utils.process_results_cot(mc, [COT + "Final answer: 2"])["accuracy"]["correct"]
    assert not utils.process_results_cot(mc, [COT + "Final answer: A"])["accuracy"]["correct"]
    assert utils.process_results_cot(area, [COT + "Final answer: 1.5"])["accuracy"]["correct"]
    assert utils.process_results_cot(area, [COT + "Final answer: 1.5004"])["accuracy"]["correct"]
    assert not utils.process_results_cot(area, [COT + "Final answer: 1.6"])["accuracy"]["correct"]


def test_worst_case_needs_every_variant_of_a_seed():
    rows = ROWS["dynamath"](seeds=3, variants=3)
    # seed 1 always right; seed 2 wrong on its last variant; seed 3 always wrong
    answers = {"1": ["B"] * 3, "2": ["1.5", "2.5", "9"], "3": ["0"] * 3}
    records, seen = [], {}
    for row in rows:
        k = seen[row["id"]] = seen.get(row["id"], -1) + 1
        records.append(utils.process_results_cot(row, [COT + f"Final answer: {answers[row['id']][k]}"])["accuracy"])
    metrics = utils.summarize(records)
    assert metrics["worst_case"] == 33.33 and metrics["average"] == round(100 * 5 / 9, 2)
    assert metrics["seeds"] == 3 and metrics["min_variants_per_seed"] == 3
    # a --limit that cuts seeds short is visible
    assert utils.summarize(records[:4])["min_variants_per_seed"] == 1


def test_a_missing_field_is_named():
    with pytest.raises(MissingField, match="DynaMath: the dataset has no field ground_truth"):
        utils.target({k: v for k, v in doc("dynamath", 0).items() if k != "ground_truth"})


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "dynamath") > 100
