import json

import pytest
import yaml
from datasets import Dataset

from evals.registry import get
from evals.run import evaluate, main, task_yaml
from evals.scoring import MissingField
from tests.evals.conftest import MATHVISTA_FEATURES, mathvista_rows
from tests.evals.tasks import rows as bench_rows


def test_unknown_benchmark_and_missing_data_fail_at_once(tmp_path, capsys):
    assert main(["--tasks", "mathvista,chartqa", "--model", "m", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark chartqa; available: mathvista, mathvision, pope, m3cot" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"mathvista={tmp_path / 'nope'}",
                 "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"pope={tmp_path}", "--out", str(tmp_path)]) == 2
    assert "--data for pope, which is not among the benchmarks run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--tasks", "mathvista", "--model", "m", "--prompt", "sketchy", "--out", str(tmp_path)])


def test_task_yaml_follows_the_registry_record(tmp_path):
    text = task_yaml(get("mathverse"), "reasoning")
    config = yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line))
    assert config["task"] == "mmpr_mathverse_testmini_vision_only_reasoning"
    assert (config["dataset_path"], config["dataset_name"], config["test_split"]) == (
        "CaraJ/MathVerse-lmmseval", "testmini_version_split", "vision_only")
    assert config["lmms_eval_specific_kwargs"]["default"]["prompt"] == "reasoning"
    assert "process_results: !function utils.process_results_reasoning" in text
    (tmp_path / "w.parquet").touch()
    local_text = task_yaml(get("wemath"), "cot", str(tmp_path / "w.parquet"), max_new_tokens=32)
    local = yaml.safe_load("\n".join(line for line in local_text.splitlines() if "!function" not in line))
    assert local["dataset_path"] == "parquet" and local["dataset_kwargs"]["data_files"] == {
        "testmini": [str(tmp_path / "w.parquet")]}
    assert local["generation_kwargs"]["max_new_tokens"] == 32


def test_a_dataset_missing_a_field_fails_before_generating(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "precision"} for r in mathvista_rows(2)]
    features = MATHVISTA_FEATURES.copy()
    del features["precision"]
    path = tmp_path / "bad.parquet"
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    with pytest.raises(MissingField, match="has no field precision"):
        evaluate(["mathvista"], "unused-model", out=tmp_path / "out", data={"mathvista": str(path)})
    assert not (tmp_path / "out" / "cache" / "responses.jsonl").exists()


def test_a_new_benchmarks_dataset_missing_a_field_fails_before_generating(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "key"} for r in bench_rows.wemath()]
    features = bench_rows.FEATURES["wemath"].copy()
    del features["key"]
    path = tmp_path / "wemath.parquet"
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    with pytest.raises(MissingField, match="WeMath: the dataset has no field key"):
        evaluate("wemath", "unused-model", out=tmp_path / "out", data={"wemath": str(path)})
    assert not (tmp_path / "out" / "cache" / "responses.jsonl").exists()


@pytest.mark.slow
def test_mathvista_end_to_end_through_lmms_eval_resumes_and_repeats(mathvista_parquet, tmp_path, capsys):
    args = ["--tasks", "mathvista", "--model", "tiny:qwen2_vl", "--engine", "hf", "--limit", "8",
            "--data", f"mathvista={mathvista_parquet}", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert "mathvista:" in capsys.readouterr().out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    task = results["tasks"]["mathvista"]
    assert task["total"] == 8 and results["lmms_eval_version"] == "0.7.3" and results["prompt"] == "cot"
    assert "Final answer" in results["prompt_template"]
    assert results["generation"]["mmpr_mathvista_testmini_cot"]["temperature"] == 0.0
    assert set(task["categories"]) >= {"skills", "question_type", "answer_type"}
    assert task["categories"]["skills"]["arithmetic reasoning"]["total"] == 8
    samples = [json.loads(line) for line in
               (tmp_path / "run" / "samples_mmpr_mathvista_testmini_cot.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and all({"extracted", "correct", "parsable", "response"} <= set(s) for s in samples)
    assert task["unparsable"] == sum(not s["parsable"] for s in samples)
    assert all(s["correct"] is False for s in samples if not s["parsable"])

    cache = tmp_path / "run" / "cache" / "responses.jsonl"
    lines = cache.read_text().splitlines()
    assert len(lines) == 8
    # a crash after half the samples, mid-write: the rerun answers the rest and repeats the result exactly
    cache.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])
    assert main(args) == 0
    keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
    assert len(keys) == 8 and len(set(keys)) == 8, "the torn line is dropped, the rest answered once"
    again = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["mathvista"]
    assert (again["accuracy"], again["unparsable"]) == (task["accuracy"], task["unparsable"])


@pytest.mark.slow
def test_reasoning_suite_end_to_end_on_local_files(mathvista_parquet, tmp_path, capsys):
    data = [f"mathvista={mathvista_parquet}"] + [
        f"{name}={bench_rows.write_parquet(name, tmp_path / f'{name}.parquet')}"
        for name in ("mmmu", "mathvision", "mathverse", "dynamath", "wemath", "logicvista")]
    args = ["--tasks", "reasoning", "--model", "tiny:qwen2_vl", "--engine", "hf", "--limit", "3",
            "--max-new-tokens", "16", "--prompt", "reasoning", "--out", str(tmp_path / "run")]
    for d in data:  # WeMath's first three rows are one whole two-step problem; DynaMath's cover two seeds
        args += ["--data", d]
    assert main(args) == 0
    assert "wemath:" in capsys.readouterr().out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["prompt"] == "reasoning" and "<answer>" in results["prompt_template"] and results["limit"] == 3
    tasks = results["tasks"]
    assert list(tasks) == ["mmmu", "mathvista", "mathvision", "mathverse", "dynamath", "wemath", "logicvista"]
    expected_breakdowns = {"mmmu": "subject", "mathvista": "skills", "mathvision": "subject",
                           "mathverse": "subject", "dynamath": "knowledge_level", "wemath": "knowledge_concept",
                           "logicvista": "skill"}
    for name, key in expected_breakdowns.items():
        task = tasks[name]
        assert task["total"] == 3, name
        assert sum(c["total"] for c in task["categories"][key].values()) >= task["total"], name
        assert results["generation"][task["task"]]["max_tokens"] == 16
        samples = (tmp_path / "run" / f"samples_{task['task']}.jsonl").read_text().splitlines()
        assert len(samples) == task["total"]
    assert tasks["dynamath"]["headline"] == "worst_case" and tasks["dynamath"]["metrics"]["seeds"] == 2
    assert tasks["dynamath"]["score"] == tasks["dynamath"]["metrics"]["worst_case"]
    assert tasks["wemath"]["metrics"]["problems"] == 1 and tasks["wemath"]["score"] is not None
    assert {"loose", "strict"} <= set(tasks["wemath"]["metrics"])
