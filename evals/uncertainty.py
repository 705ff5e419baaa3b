"""Each benchmark's headline as a mean over its units, and the intervals made from them.

A plain accuracy averages over items; DynaMath's worst case over seed questions (a seed is right only when all
its variants are), WeMath's strict and loose scores over multi-step problems. Resampling items of an aggregate
would split a seed's variants or a problem's steps across draws, so each benchmark's units are its
``resample_by`` groups, and a unit's value is the benchmark's own ``summarize`` of that unit's samples.
"""

from __future__ import annotations

from collections import defaultdict

from evals.intervals import LEVEL, RESAMPLES, SEED, bootstrap_mean, paired_bootstrap
from evals.registry import Benchmark
from evals.results import Interval


def units(bench: Benchmark, records: list[dict]) -> dict[str, float]:
    """Unit key -> the unit's headline value in percent; their mean is the headline. Samples of one document
    that appears twice are told apart by their order, so two runs over the same items share keys."""
    if bench.resample_by is None:
        if bench.headline != "accuracy":
            raise ValueError(f"{bench.name}: headline {bench.headline!r} is an aggregate but the registry names no "
                             "resample_by field to group its units; add one")
        seen: dict[str, int] = defaultdict(int)
        out = {}
        for r in records:
            doc = str(r["doc_id"])
            out[f"{doc}#{seen[doc]}"] = 100.0 * bool(r["correct"])
            seen[doc] += 1
        return out
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[str(r["reference"][bench.resample_by])].append(r)
    summarize = bench.utils().summarize
    values = {unit: summarize(group).get(bench.headline) for unit, group in groups.items()}
    # a unit cut short by --limit has no headline value; the benchmark's score leaves it out too
    return {unit: float(v) for unit, v in values.items() if v is not None}


def interval(values: list[float], unit: str, *, resamples: int = RESAMPLES, seed: int = SEED,
             method: str = "percentile bootstrap") -> Interval:
    low, high = bootstrap_mean(values, resamples=resamples, seed=seed)
    return Interval(low=round(low, 2), high=round(high, 2), level=LEVEL, method=f"{method} over {unit}s",
                    units=len(values), resamples=resamples, seed=seed)


def headline_interval(bench: Benchmark, records: list[dict], *, resamples: int = RESAMPLES,
                      seed: int = SEED) -> Interval | None:
    """The 95 % interval of ``bench``'s headline over ``records``; None when no unit has a value."""
    values = list(units(bench, records).values())
    return interval(values, bench.unit, resamples=resamples, seed=seed) if values else None


def paired_difference(before: dict[str, float], after: dict[str, float], unit: str, *,
                      resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, Interval] | None:
    """``(after - before, its interval)`` over the units both runs have (:func:`units` of each); None when they
    share none."""
    common = sorted(before.keys() & after.keys())
    if not common:
        return None
    a, b = [before[k] for k in common], [after[k] for k in common]
    low, high = paired_bootstrap(a, b, resamples=resamples, seed=seed)
    delta = sum(b) / len(b) - sum(a) / len(a)
    return round(delta, 2), Interval(low=round(low, 2), high=round(high, 2), level=LEVEL,
                                     method=f"paired percentile bootstrap over {unit}s", units=len(common),
                                     resamples=resamples, seed=seed)
