import pytest

from evals.registry import get
from evals.scoring import MissingField
from mmpr.errors import UserError
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


def test_worst_case_stops_when_no_seed_has_two_variants():
    """lmms-eval's DynaMath loader groups a seed's variants by ``id``; a split where every row has its own id would
    make the worst case equal the average, so it stops with one line instead."""
    rows = [{**row, "id": str(i)} for i, row in enumerate(ROWS["dynamath"](seeds=2, variants=2))]
    records = [utils.process_results_cot(row, [COT + "Final answer: B"])["accuracy"] for row in rows]
    with pytest.raises(UserError, match="no seed has two variants"):
        utils.summarize(records)
    assert utils.summarize(records[:1])["seeds"] == 1  # one sample is no grouping failure


@pytest.mark.parametrize("kind, gold, answer, correct", [
    ("float", "75.398", "24π", True), ("float", "2.0944", "2π/3", True), ("float", "2.0944", "2.0956", False),
    ("float", "2.0944", "2.0950", True), ("float", "1.5", "It could be 1 or 2.", False),
    ("text", "Sep", "September", True), ("text", "Sep", "Oct", False), ("text", "y = 4", "Y = 4", True),
])
def test_the_official_rule_absolute_floats_and_containment(kind, gold, answer, correct):
    row = {**doc("dynamath", 1), "answer_type": kind, "ground_truth": gold}
    assert utils.process_results_cot(row, [COT + f"Final answer: {answer}"])["accuracy"]["correct"] is correct
