import random

import pytest

from evals.registry import get
from evals.uncertainty import headline_interval, paired_difference, units


def _dynamath(seeds=40, variants=10, seed=0):
    rng = random.Random(seed)
    return [{"doc_id": str(s), "correct": rng.random() < 0.8, "reference": {"seed": str(s)}}
            for s in range(seeds) for _ in range(variants)]


def _wemath(problems=30, seed=0):
    rng = random.Random(seed)
    records = []
    for p in range(problems):
        steps = 2 + p % 2
        keys = [f"{steps}steps_{i}" for i in range(1, steps + 1)] + [f"{steps}steps_multi"]
        records += [{"doc_id": str(p), "correct": rng.random() < 0.6, "reference": {"ID": str(p), "key": k}}
                    for k in keys]
    # a one-step item and a problem cut short by --limit: neither is a unit of the strict score
    records += [{"doc_id": "x", "correct": True, "reference": {"ID": "x", "key": "1"}},
                {"doc_id": "y", "correct": True, "reference": {"ID": "y", "key": "2steps_1"}}]
    return records


def test_aggregate_headlines_are_means_over_their_units():
    for name, records, headline in (("dynamath", _dynamath(), "worst_case"), ("wemath", _wemath(), "strict")):
        bench = get(name)
        values = units(bench, records)
        expected = bench.utils().summarize(records)[headline]
        assert sum(values.values()) / len(values) == pytest.approx(expected, abs=0.01), name
    assert len(units(get("dynamath"), _dynamath())) == 40, "seeds are resampled, not variants"
    assert len(units(get("wemath"), _wemath())) == 30, "whole problems are resampled"


def test_headline_intervals_name_their_units_and_bracket_the_score():
    dyn = headline_interval(get("dynamath"), _dynamath())
    worst = get("dynamath").utils().summarize(_dynamath())["worst_case"]
    assert dyn.method == "percentile bootstrap over seeds" and dyn.units == 40 and dyn.resamples == 1000
    assert dyn.low <= worst <= dyn.high and dyn.level == 0.95
    wemath = headline_interval(get("wemath"), _wemath())
    assert wemath.method == "percentile bootstrap over problems" and wemath.units == 30
    plain = [{"doc_id": "7", "correct": i % 2 == 0} for i in range(50)]
    assert len(units(get("mathvista"), plain)) == 50, "a document that appears twice is two units"
    assert headline_interval(get("mathvista"), plain).method == "percentile bootstrap over items"


def test_paired_difference_of_identical_runs_is_zero_and_uses_common_units():
    bench = get("dynamath")
    before = units(bench, _dynamath())
    delta, interval = paired_difference(before, before, bench.unit)
    assert delta == 0 and (interval.low, interval.high) == (0.0, 0.0) and interval.units == 40
    after = units(bench, _dynamath(seeds=30, seed=1))
    assert paired_difference(before, after, "seed")[1].units == 30
    assert paired_difference(before, {"other": 1.0}, "seed") is None


def test_an_aggregate_headline_without_units_fails_loudly():
    bench = get("dynamath").model_copy(update={"resample_by": None})
    with pytest.raises(ValueError, match="names no resample_by"):
        units(bench, _dynamath())
