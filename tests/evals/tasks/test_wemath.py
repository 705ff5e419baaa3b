import itertools

import pandas as pd
import pytest

from evals.registry import get
from evals.scoring import MissingField
from tests.evals.tasks.rows import doc, smoke

utils = get("wemath").utils()
COT = "The rectangle is 2 cm by 4 cm, so its area is their product.\n"


def test_options_are_split_and_judged_by_letter_or_text():
    d = doc("wemath", 2)
    assert utils.choices(d) == ["6 cm²", "8 cm²", "12 cm²", "24 cm²", "No correct answer"]
    assert utils.process_results_cot(d, [COT + "Final answer: B"])["accuracy"]["correct"]
    assert utils.process_results_cot(d, [COT + "Final answer: 8 cm²"])["accuracy"]["correct"]
    assert not utils.process_results_cot(d, [COT + "Final answer: C"])["accuracy"]["correct"]
    assert utils.categories(d) == {"knowledge_concept": ["Area of rectangles"], "steps": ["2steps"]}
    assert utils.categories(doc("wemath", 3))["steps"] == ["1step"]


@pytest.mark.parametrize("option, answer, response, correct", [
    ("A. F;    B. D;    C. B;    D. I; E. No correct answer", "B", "<Answer>: <<B>>", True),  # 2steps_9: letters
    ("A. F;    B. D;    C. B;    D. I; E. No correct answer", "B", "Answer: C", False),
    ("A. 45° B. 60° ;C. 120°; D. 150°; E. No correct answer", "C", "Answer: 120°", True),  # stray separators
    ("A. ①;B．②;C. ③; D. Cannot be determined; E. No correct answer", "B", "Answer: ②", True),
])
def test_letter_golds_and_irregular_option_strings(option, answer, response, correct):
    d = {**doc("wemath", 2), "option": option, "answer": answer}
    assert utils.process_results_cot(d, [COT + response])["accuracy"]["correct"] is correct
    assert "A. " not in utils.doc_to_text(d) or "\nA. " in utils.doc_to_text(d)


def _records(problems: dict[str, tuple[list[bool], bool]]) -> list[dict]:
    out = []
    for pid, (steps, whole) in problems.items():
        n = len(steps)
        for i, ok in enumerate(steps, 1):
            out.append({"correct": ok, "reference": {"ID": pid, "key": f"{n}steps_{i}"}})
        out.append({"correct": whole, "reference": {"ID": pid, "key": f"{n}steps_multi"}})
    return out


def _every_case() -> dict[str, tuple[list[bool], bool]]:
    """Every combination of step and whole answers, for two- and three-step problems."""
    problems, pid = {}, 0
    for n in (2, 3):
        for combo in itertools.product([True, False], repeat=n + 1):
            pid += 1
            problems[str(pid)] = (list(combo[:n]), combo[n])
    return problems


def test_loose_and_strict_counts_match_lmms_eval_wemath_scoring():
    from lmms_eval.tasks.wemath.wemath_utils import calculate_metrics, compute_final_scores, process_steps_data

    records = _records(_every_case())
    ours = utils.summarize(records)
    frame = pd.DataFrame([{"ID": r["reference"]["ID"], "key": r["reference"]["key"], "joker": r["correct"]}
                          for r in records])
    two = process_steps_data(frame[frame["key"].str.contains("2steps")], 2)
    three = process_steps_data(frame[frame["key"].str.contains("3steps")], 3)
    counts, _ = compute_final_scores(calculate_metrics(two, three), total_count=ours["problems"])
    assert ours["problems"] == 8 + 16
    assert (ours["IK"], ours["IG"]) == (counts["InsufficientKnowledge"], counts["InadequateGeneralization"])
    assert (ours["RM_loose"], ours["RM_strict"]) == (counts["RoteMemorization_loose"],
                                                    counts["RoteMemorization_strict"])
    assert (ours["CM_loose"], ours["CM_strict"]) == (counts["CompleteMastery_loose"], counts["CompleteMastery_strict"])
    n = ours["problems"]
    assert ours["strict"] == round(100 * (n - 0.5 * ours["IG"] - ours["RM_strict"] - ours["IK"]) / n, 2)
    assert ours["loose"] >= ours["strict"]


def test_hand_worked_scores_and_cut_short_problems():
    problems = {"1": ([True, True], True),     # complete mastery
                "2": ([True, False], True),    # rote memorisation (strict), mastery (loose)
                "3": ([False, False], True),   # rote memorisation (both)
                "4": ([True, True], False)}    # inadequate generalisation
    scores = utils.summarize(_records(problems))
    assert scores["strict"] == pytest.approx(100 * (4 - 0.5 - 2) / 4, abs=0.01)
    assert scores["loose"] == pytest.approx(100 * (4 - 0.5 - 1) / 4, abs=0.01)
    # a problem whose whole-problem answer was not evaluated (cut by --limit) is left out
    assert utils.summarize(_records(problems)[:-1])["problems"] == 3
    assert utils.summarize([]) == {"problems": 0}


def test_a_missing_field_is_named():
    with pytest.raises(MissingField, match="WeMath: the dataset has no field key"):
        utils.target({k: v for k, v in doc("wemath", 0).items() if k != "key"})


def test_every_published_option_structure_gets_a_target():
    assert smoke(utils, "wemath") > 100
