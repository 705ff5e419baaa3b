"""Percentile-bootstrap intervals for scores that are means over units (items, seeds, problems), alone or paired.

Every headline ``evals.run`` reports is the mean of one value per unit (a sample's 0/100 correctness; DynaMath's
worst case per seed; WeMath's strict credit per problem), so one resampling rule serves them all: draw the units
with replacement ``resamples`` times, take the mean of each draw, and report the ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles of those means (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
ch. 13). A paired difference draws the same units for both runs (ibid., ch. 15), so an item both runs got right
or both got wrong adds nothing to its spread, and two identical runs give exactly ``(0, 0)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def _draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` rows of ``n`` unit indices drawn with replacement, the same for the same ``(n, seed)``."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _quantiles(means: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED,
                   level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` percentile-bootstrap interval of the mean of ``values`` (one value per unit).

    For 0/1 values with mean ``p`` over ``n`` units it approaches the normal interval
    ``p -/+ z * sqrt(p (1 - p) / n)``; a single unit, or units that all agree, give a zero-width interval.
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no units to resample: the interval of an empty score is undefined")
    return _quantiles(data[_draws(data.size, resamples, seed)].mean(axis=1), level)


def paired_bootstrap(before: Sequence[float], after: Sequence[float], *, resamples: int = RESAMPLES,
                     seed: int = SEED, level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` interval of ``mean(after) - mean(before)`` over the same units, each draw taking the same
    units from both (``before[i]`` and ``after[i]`` are one unit's values in the two runs)."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values must be per unit alike: {a.size} before, {b.size} after")
    if a.size == 0:
        raise ValueError("no common units to resample: the runs share no items")
    return _quantiles((b - a)[_draws(a.size, resamples, seed)].mean(axis=1), level)


def excludes_zero(interval: tuple[float, float]) -> bool:
    """Whether a difference's interval lies wholly on one side of zero (a zero-width [0, 0] does not)."""
    low, high = interval
    return low > 0 or high < 0
