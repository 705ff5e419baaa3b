import re

import pytest

from evals import registry
from evals.registry import PRESETS, Benchmark, benchmarks, get, resolve
from mmpr.registry import UnknownName
from tests.evals.tasks.rows import FEATURES


def test_presets_name_the_papers_benchmarks_and_the_reasoning_suite():
    assert [b.name for b in resolve("reasoning")] == ["mmmu", "mathvista", "mathvision", "mathverse", "dynamath",
                                                      "wemath", "logicvista"]
    assert {"m3cot", "mmmu", "mathvista", "mathvision", "pope"} == set(PRESETS["paper"])
    # presets and names mix; each benchmark once, in order
    assert [b.name for b in resolve("pope,paper")] == ["pope", "mathvista", "mathvision", "m3cot", "mmmu"]


def test_unknown_names_list_what_is_available():
    with pytest.raises(UnknownName, match=r"^unknown benchmark 'chartqa'; available: dynamath, .*mathvista, .*; "
                                          r"presets: paper, reasoning$"):
        resolve("mathvista,chartqa")
    with pytest.raises(UnknownName, match=r"unknown benchmark 'mathvist' \(did you mean 'mathvista'\?\)"):
        get("mathvist")


def test_every_record_has_its_task_folder_and_the_published_schema():
    for bench in benchmarks():
        utils = bench.utils()
        for name in ("doc_to_visual", "doc_to_text", "doc_to_target", "accuracy", "unparsable",
                     *(f"process_results_{p}" for p in bench.prompts)):
            assert callable(getattr(utils, name)), f"{bench.folder}/utils.py has no {name}"
        if bench.headline != "accuracy":
            assert callable(utils.summarize)
        if bench.name in FEATURES:  # the hand-made rows carry the published columns
            assert set(bench.fields) <= set(FEATURES[bench.name]), bench.name


def test_paper_numbers_are_the_ones_the_registry_cites():
    cited = {label: (float(base), float(mpo)) for label, base, mpo in
             re.findall(r"(\w+) ([\d.]+) -> ([\d.]+)", registry.PAPER_RESULTS)}
    labels = {"mathvision": "MathVision", "m3cot": "M3CoT", "pope": "POPE", "mmmu": "MMMU"}
    for name, label in labels.items():
        paper = get(name).paper
        assert (paper[registry.BASE]["reported"], paper[registry.MPO]["reported"]) == cited[label], name
    direct = dict(re.findall(r"(InternVL2-8B(?:-MPO)?) ([\d.]+ / [\d.]+)", registry.PAPER_RESULTS))
    for model in (registry.BASE, registry.MPO):
        numbers = get("mathvista").paper[model]
        assert f"{numbers['direct']} / {numbers['cot']}" == direct[model], model
    # the headline pairs the base model's best (direct) with the MPO model's CoT score
    assert cited["MathVista"] == (get("mathvista").paper[registry.BASE]["direct"],
                                  get("mathvista").paper[registry.MPO]["cot"])
    every = {b.name for b in benchmarks() if b.paper}
    assert every == set(labels) | {"mathvista"}, "a benchmark with paper numbers the registry does not cite"
    assert get("m3cot").paper_number("InternVL2-8B-MPO", "cot") == (79.2, "reported")
    assert get("mathvista").paper_number("InternVL2-8B", "direct") == (58.3, "direct")
    assert get("mathverse").paper_number("InternVL2-8B", "cot") is None


def test_a_new_benchmark_is_one_record():
    record = Benchmark(name="synthetic", folder="mathvista", task="mmpr_synthetic", dataset="local", split="test",
                       fields=("question", "answer"), scorer="integer")
    assert record.task_name("reasoning") == "mmpr_synthetic_reasoning" and record.prompts == registry.PROMPTS
