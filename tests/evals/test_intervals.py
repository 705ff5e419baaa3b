import math

import pytest

from evals.intervals import bootstrap_mean, excludes_zero, paired_bootstrap


@pytest.mark.parametrize(("n", "right"), [(400, 240), (1000, 150)])
def test_interval_of_a_known_set_matches_the_normal_closed_form(n, right):
    values = [1.0] * right + [0.0] * (n - right)
    p = right / n
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    low, high = bootstrap_mean(values, resamples=4000, seed=1)
    # the percentile bootstrap of a proportion approaches p -/+ z sqrt(p(1-p)/n); 4000 draws: within 0.006
    assert low == pytest.approx(p - half, abs=0.006) and high == pytest.approx(p + half, abs=0.006)
    assert low < p < high


def test_intervals_are_seeded_and_agreeing_units_give_zero_width():
    values = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    assert bootstrap_mean([1, 1, 1], resamples=50) == (1.0, 1.0)
    with pytest.raises(ValueError, match="empty score"):
        bootstrap_mean([])


def test_paired_interval_of_two_identical_runs_is_zero_and_of_a_real_change_excludes_it():
    run = [1, 0, 1, 1, 0, 0, 1, 0] * 25
    assert paired_bootstrap(run, run) == (0.0, 0.0)
    assert not excludes_zero((0.0, 0.0))
    better = [1] * 200
    low, high = paired_bootstrap(run, better, seed=2)
    assert 0 < low < 0.5 < high < 1 and excludes_zero((low, high))
    # the pairing removes the items' own spread: flipping 5 of 200 items is a small, certain change
    flipped = list(run)
    for i in (1, 4, 5, 7, 9):
        flipped[i] = 1
    low, high = paired_bootstrap(run, flipped)
    assert 0 < low <= high < 0.06
    with pytest.raises(ValueError, match="per unit alike"):
        paired_bootstrap([1, 0], [1])
