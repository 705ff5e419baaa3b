import pytest

from evals.scoring import (
    MissingField,
    Target,
    extract_answer,
    mathvision_target,
    mathvista_target,
    pope_target,
    score,
)
from evals.tasks.m3cot import utils as m3cot
from evals.tasks.mmmu import utils as mmmu
from mmpr.answers import DEFAULT_RULES, extract_final_answer

COT = "Looking at the figure carefully, I work it out step by step.\n"


def _mathvista(**kw):
    doc = {"question": "q", "question_type": "free_form", "answer_type": "integer", "choices": None,
           "precision": None, "unit": None, "answer": "3", "metadata": {}, "pid": "7"}
    return {**doc, **kw}


@pytest.mark.parametrize("doc, response, correct", [
    (_mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog"),
     COT + "Final answer: (B) dog", True),
    (_mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog"),
     COT + "Final answer: B", True),
    (_mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog"),
     COT + "Final answer: cat", False),
    (_mathvista(answer="3"), COT + "Final answer: 3 apples", True),
    (_mathvista(answer="3"), COT + "Final answer: 4", False),
    (_mathvista(answer_type="float", precision=1.0, answer="1.5"), COT + "Final answer: 1.49", True),
    (_mathvista(answer_type="float", precision=1.0, answer="1.5"), COT + "Final answer: 1.56", False),
    (_mathvista(answer_type="float", precision=2.0, answer="0.33"), COT + "Final answer: $\\frac{1}{3}$", True),
    (_mathvista(answer_type="list", answer="[1, 2]"), COT + "Final answer: [1, 2]", True),
    (_mathvista(answer_type="text", answer="Yes"), COT + "Final answer: yes", True),
])
def test_mathvista(doc, response, correct):
    result = score(response, mathvista_target(doc))
    assert result.parsable and result.correct is correct


def test_no_final_answer_is_wrong_and_unparsable_never_a_guess():
    doc = _mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog")
    for response in ("dog", "I think it is a dog", COT + "It could be either.", ""):
        result = score(response, mathvista_target(doc))
        assert not result.parsable and not result.correct and result.extracted is None


M3COT = {"id": "physics-1", "question": "q", "choices": ["Pair 1", "Pair 2", "Neither"], "answer": "B",
         "category": None, "context": None, "image": None, "domain": None, "topic": None}


@pytest.mark.parametrize("response, extracted, correct", [
    ("The magnets in Pair 2 are closer, so the force is larger in Pair 2.", "B", True),  # an option's text
    ("B", "B", True), ("(A)", "A", False),                                                 # bare answers
    (COT + "Final answer: (A)", "(A)", False),                                           # a stated answer first
    ("<think>the force is larger in Pair 2", None, False),                                # an unclosed think block
])
def test_whole_response_reading_where_the_official_scorer_has_one(response, extracted, correct):
    target = m3cot.target(M3COT)
    assert target.rules.whole_response == "m3cot"
    assert extract_answer(response, target) == extracted
    record = m3cot.process_results_cot(M3COT, [response])["accuracy"]
    assert (record["extracted"], record["correct"], record["parsable"]) == (extracted, correct, extracted is not None)


def test_the_data_engine_and_mathvista_never_read_a_whole_response():
    doc = _mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog")
    assert mathvista_target(doc).rules.whole_response is None and DEFAULT_RULES.whole_response is None
    assert extract_answer("It is a dog (B).", Target("B", "multiple_choice", ["cat", "dog"])) is None


def test_direct_answers_are_the_whole_response():
    doc = _mathvista(question_type="multi_choice", answer_type="text", choices=["cat", "dog"], answer="dog")
    assert score("B", mathvista_target(doc), style="direct").correct
    assert score("dog.", mathvista_target(doc), style="direct").correct
    assert not score("", mathvista_target(doc), style="direct").parsable


def test_mathvision_and_pope():
    mc = {"question": "q", "options": ["1", "2", "3"], "answer": "C"}
    assert score(COT + "Final answer: (C)", mathvision_target(mc)).correct
    free = {"question": "q", "options": [], "answer": "2\\sqrt{3}"}
    assert mathvision_target(free).answer_type == "latex"
    assert score(COT + "Final answer: $2\\sqrt{3}$", mathvision_target(free)).correct
    assert not score(COT + "Final answer: $3\\sqrt{2}$", mathvision_target(free)).correct
    assert score(COT + "Final answer: No, there is none.", pope_target({"question": "q", "answer": "no"})).correct


def test_missing_fields_are_named():
    with pytest.raises(MissingField, match="MathVista: the dataset has no field precision, unit"):
        mathvista_target({k: v for k, v in _mathvista().items() if k not in ("precision", "unit")})
    with pytest.raises(ValueError, match="unknown answer_type"):
        mathvista_target(_mathvista(answer_type="matrix"))


def test_scoring_is_deterministic():
    target = Target("4", "integer")
    assert {score(COT + "Final answer: 4", target).model_dump_json() for _ in range(5)} == {
        score(COT + "Final answer: 4", target).model_dump_json()}


def _mmmu(**kw):
    return {"id": "validation_Math_1", "question": "q", "question_type": "open", "options": "[]", "answer": "3.14",
            "image_1": None, "subfield": "", "topic_difficulty": "", **kw}


@pytest.mark.parametrize("doc, said, correct", [
    (_mmmu(), "3.14159", True),                                   # MMMU rounds both to 2 decimals
    (_mmmu(), "3.146", False),
    (_mmmu(answer="12"), "12.004", True),
    (_mmmu(answer="1,234"), "1234", True),
    (_mmmu(answer="['24/7', '3.429']"), "3.43", True),             # a list: any of its answers
    (_mmmu(answer="['24/7', '3.429']"), "3.5", False),
    (_mmmu(answer="Paris"), "paris", True),
    (_mmmu(answer="Paris"), "not paris", True),                    # MMMU's eval_open: the gold contained
    (_mmmu(answer="['Tampa', 'Florida']"), "Tampa, Florida", True),
    (_mmmu(answer="embryonic"), "embryonic stage", True),
    (_mmmu(answer="a"), "cat", False),                             # a one-letter gold stands as a word
    (_mmmu(question_type="multiple-choice", options="['cat', 'dog', 'bird']", answer="B"), "(B) dog", True),
    (_mmmu(question_type="multiple-choice", options="['cat', 'dog', 'bird']", answer="B"), "bird", False),
])
def test_mmmu(doc, said, correct):
    assert mmmu.judge(doc, extract_final_answer(COT + f"Final answer: {said}")) is correct
