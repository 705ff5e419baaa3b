"""Scoring over the real option structures of all 1000 MathVista testmini items (answers, options, types and
precisions from lupantech/MathVista data/testmini.json; questions and images left out): nothing raises, and the
gold answer, by text or by any letter of an option carrying it, is always judged correct."""

import json
from pathlib import Path

import pytest

from evals.scoring import mathvista_target, score
from mmpr.answers import LETTERS

COT = "Reading the figure step by step, I work the answer out.\n"
ITEMS = [json.loads(line) for line in (Path(__file__).parent / "data" / "mathvista_testmini_items.jsonl")
         .read_text(encoding="utf-8").splitlines()]


def _doc(item: dict) -> dict:
    return {**item, "question": "q", "metadata": {}}


def test_the_structures_are_testmini():
    assert len(ITEMS) == 1000
    duplicated = {i["pid"] for i in ITEMS if i["choices"] and len(set(i["choices"])) < len(i["choices"])}
    assert duplicated == {"587", "740", "781"}
    assert {i["answer_type"] for i in ITEMS} == {"text", "integer", "float", "list"}
    assert {i["precision"] for i in ITEMS if i["answer_type"] == "float"} == {1, 2}


@pytest.mark.parametrize("item", ITEMS, ids=[i["pid"] for i in ITEMS])
def test_every_item_scores_and_its_gold_is_correct(item):
    target = mathvista_target(_doc(item))
    gold = item["answer"]
    assert score(COT + f"Final answer: {gold}", target).correct
    responses = [COT + "Final answer: I cannot tell", COT + "Final answer: 3.75 cm", COT + "Final answer: [1, 2]",
                 COT + "no final answer here", "", COT + "Final answer: (Z)", COT + "Final answer: \\frac{1}{3}"]
    for response in responses:
        assert score(response, target).scorable
    for i, choice in enumerate(item["choices"] or []):
        by_letter = score(COT + f"Final answer: ({LETTERS[i]})", target)
        by_text = score(COT + f"Final answer: {choice}", target)
        assert by_letter.correct is (choice == gold), (i, choice)
        assert by_text.correct is (choice == gold), (i, choice)


def test_a_duplicated_option_is_one_answer():
    item = next(i for i in ITEMS if i["pid"] == "781")
    assert item["choices"] == ["9", "12", "18", "18"] and item["answer"] == "18"
    target = mathvista_target(_doc(item))
    for said, correct in (("C", True), ("D", True), ("18", True), ("(D) 18", True), ("B", False), ("12", False)):
        assert score(COT + f"Final answer: {said}", target).correct is correct, said


def test_a_gold_naming_no_option_is_unscorable_not_an_error():
    target = mathvista_target(_doc({"pid": "x", "question_type": "multi_choice", "answer_type": "text",
                                    "choices": ["9", "12"], "precision": None, "answer": "18", "unit": None}))
    for response in (COT + "Final answer: A", "no answer"):
        result = score(response, target)
        assert not result.scorable and not result.correct
        assert "names none of the choices" in result.problem
