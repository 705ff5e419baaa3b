import pytest

from evals.sampling import majority_correct, sampled_scores


def _s(extracted, correct):
    return {"extracted": extracted, "parsable": extracted is not None, "correct": correct}


def test_majority_votes_over_parsable_normalised_answers_ties_to_the_first():
    assert majority_correct([_s("B", True), _s("c", False), _s("C.", False), _s(None, False)]) is False
    assert majority_correct([_s("The answer", True), _s("answer", True), _s("7", False)]) is True
    assert majority_correct([_s("7", False), _s("8", True)]) is False
    assert majority_correct([_s(None, False)] * 3) is False


def test_avg_pass_and_majority_at_k():
    items = [[_s("1", True), _s("1", True), _s("2", False), _s("1", True)],   # 75 %, pass, majority right
             [_s("3", False), _s("4", True), _s("3", False), _s(None, False)],  # 25 %, pass, majority wrong
             [_s("5", False), _s("5", False), _s("5", False), _s("5", False)]]  # 0 %
    scores = sampled_scores(items, temperature=0.7)
    assert (scores.k, scores.items, scores.temperature, scores.unparsable_samples) == (4, 3, 0.7, 1)
    assert scores.avg_at_k == pytest.approx(100 / 3, abs=0.01)
    assert (scores.pass_at_k, scores.majority_at_k) == (pytest.approx(66.67), pytest.approx(33.33))
    interval = scores.avg_at_k_interval
    assert interval.low <= scores.avg_at_k <= interval.high and interval.units == 3
    with pytest.raises(ValueError, match="at least one"):
        sampled_scores([[]], 1.0)
