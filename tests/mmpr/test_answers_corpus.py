"""The judge against cases taken from the public scorers' own rules, tests and stored results.

Each line of ``judge_corpus/*.jsonl`` cites its ``source`` (``repository:path``), the source's verdict and the
project's expected verdict; where the two differ, ``why`` says why the project is right. See the README there.
"""

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from evals.registry import get
from evals.scoring import judge, mathvision_target, mathvista_target, score_extracted
from evals.tasks.mmmu import utils as mmmu
from mmpr.answers import extract_final_answer, is_correct

CORPUS = Path(__file__).parent / "judge_corpus"
SCORERS = {"is_correct", "mathvista", "mmmu", "extract", "benchmark"}
SUITE = ("mmmu", "mathverse", "dynamath", "wemath", "logicvista", "m3cot", "mathvision")


def _load() -> list[dict]:
    cases = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            case = json.loads(line)
            case["_at"] = f"{path.name}:{n}"
            cases.append(case)
    return cases


CASES = _load()


def source_says(case: dict):
    return case["source_result"] if case["scorer"] == "extract" else case["source_verdict"]


def benchmark_says(case: dict) -> bool:
    """A suite benchmark's verdict through its task's own rule: on the whole ``response`` (extracted as a CoT
    evaluation does) or on the stated ``prediction``. The corpus keeps the fields the rule reads; the rest of the
    benchmark's schema is filled with None."""
    bench = get(case["benchmark"])
    utils = bench.utils()
    doc = {**{f: None for f in bench.fields}, **case["doc"]}
    if "response" in case:
        return utils.process_results_cot(doc, [case["response"]])["accuracy"]["correct"]
    target = mathvision_target(doc) if bench.name == "mathvision" else utils.target(doc)
    rule = getattr(utils, "judge", None)
    return score_extracted(case["prediction"].strip() or None, target,
                           (lambda extracted: rule(doc, extracted)) if rule else None).correct


def project_says(case: dict):
    scorer = case["scorer"]
    if scorer == "extract":
        return extract_final_answer(case["response"], strict=case["strict"])
    if scorer == "benchmark":
        return benchmark_says(case)
    prediction = case["prediction"]
    if scorer == "is_correct":
        return is_correct(prediction, case["answer"], answer_type=case["answer_type"], choices=case.get("choices"))
    if scorer == "mathvista":
        doc = {**case["item"], "question": "q", "metadata": {}, "pid": case["ref"]}
        return bool(prediction.strip()) and judge(prediction, mathvista_target(doc))
    # the corpus keeps the fields the rule reads; the rest of MMMU's schema is filled in
    doc = {"id": "validation_Math_1", "image_1": None, "subfield": "", "topic_difficulty": "", **case["item"]}
    return mmmu.judge(doc, prediction)


def test_the_corpus_is_large_and_well_formed():
    assert len(CASES) >= 200
    for case in CASES:
        assert case["scorer"] in SCORERS, case["_at"]
        repo, _, path = case["source"].partition(":")
        assert repo.count("/") == 1 and path, f"{case['_at']}: source must be 'owner/repo:path'"
        differs = source_says(case) != case["expected"]
        assert differs == bool(case.get("why")), f"{case['_at']}: a 'why' exactly where the verdicts differ"
    assert len({c["source"].split(":")[0] for c in CASES}) >= 5


def test_every_suite_benchmark_has_its_own_cases():
    for name in SUITE:
        cases = [c for c in CASES if c["scorer"] == "benchmark" and c["benchmark"] == name]
        assert len(cases) >= 25, name
        assert len({c["source"].split(":")[0] for c in cases}) >= 1


@pytest.mark.parametrize("case", CASES, ids=[c["_at"] for c in CASES])
def test_case(case):
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    assert project_says(case) == case["expected"], case.get("why", "agrees with the source")


def agreement() -> dict[str, tuple[int, int]]:
    """source -> (cases agreeing with the source, cases)."""
    total, agree = Counter(), Counter()
    for case in CASES:
        total[case["source"]] += 1
        agree[case["source"]] += source_says(case) == case["expected"]
    return {s: (agree[s], total[s]) for s in sorted(total)}


def test_disagreements_are_the_exception():
    agreeing = sum(a for a, _ in agreement().values())
    assert agreeing / len(CASES) > 0.8


if __name__ == "__main__":  # python -m tests.mmpr.test_answers_corpus: the agreement table
    for source, (a, n) in agreement().items():
        print(f"{a:4d}/{n:<4d} {100 * a / n:5.1f}%  {source}")
    print(f"{sum(a for a, _ in agreement().values())}/{len(CASES)} cases agree with their source")
