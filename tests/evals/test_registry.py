import re
from pathlib import Path

import pytest

from evals import registry
from evals.registry import BENCHMARKS, PRESETS, Benchmark, resolve
from tests.evals.tasks.rows import FEATURES

FACTS = Path("/work/shared/reference/mpo-mmpr-facts.md")


def test_presets_name_the_papers_benchmarks_and_the_reasoning_suite():
    assert [b.name for b in resolve("reasoning")] == ["mmmu", "mathvista", "mathvision", "mathverse", "dynamath",
                                                      "wemath", "logicvista"]
    assert {"m3cot", "mmmu", "mathvista", "mathvision", "pope"} == set(PRESETS["paper"])
    # presets and names mix; each benchmark once, in order
    assert [b.name for b in resolve("pope,paper")] == ["pope", "mathvista", "mathvision", "m3cot", "mmmu"]


def test_unknown_names_list_what_is_available():
    with pytest.raises(ValueError, match=r"unknown benchmark chartqa; available: mathvista, .*; presets: paper, "
                                         r"reasoning"):
        resolve("mathvista,chartqa")


def test_every_record_has_its_task_folder_and_the_published_schema():
    for bench in BENCHMARKS.values():
        utils = bench.utils()
        for name in ("doc_to_visual", "doc_to_text", "doc_to_target", "accuracy", "unparsable",
                     *(f"process_results_{p}" for p in bench.prompts)):
            assert callable(getattr(utils, name)), f"{bench.folder}/utils.py has no {name}"
        if bench.headline != "accuracy":
            assert callable(utils.summarize)
        if bench.name in FEATURES:  # the hand-made rows carry the published columns
            assert set(bench.fields) <= set(FEATURES[bench.name]), bench.name


def test_paper_numbers_are_the_facts_files():
    text = FACTS.read_text() if FACTS.exists() else ""  # the shared facts file, where this checkout has it
    assert BENCHMARKS["m3cot"].paper_number("InternVL2-8B-MPO", "cot") == (79.2, "reported")
    assert BENCHMARKS["mmmu"].paper_number("InternVL2-8B", "direct") == (51.2, "reported")
    assert BENCHMARKS["mathvista"].paper_number("InternVL2-8B", "direct") == (58.3, "direct")
    assert BENCHMARKS["mathverse"].paper_number("InternVL2-8B", "cot") is None
    if text:
        for name, label in (("m3cot", "M3CoT"), ("mmmu", "MMMU"), ("pope", "POPE")):
            base, mpo = (BENCHMARKS[name].paper[m]["reported"] for m in (registry.BASE, registry.MPO))
            assert re.search(rf"{label} {base} -> {mpo}", text), name


def test_a_new_benchmark_is_one_record():
    record = Benchmark(name="synthetic", folder="mathvista", task="mmpr_synthetic", dataset="local", split="test",
                       fields=("question", "answer"), scorer="integer")
    assert record.task_name("reasoning") == "mmpr_synthetic_reasoning" and record.prompts == registry.PROMPTS
