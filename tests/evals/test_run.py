import json
import re

import pytest
import yaml
from datasets import Dataset

from evals.registry import get
from evals.run import _write, evaluate, main, task_yaml
from evals.scoring import MissingField
from mmpr.schemas import Response
from tests.evals.conftest import MATHVISTA_FEATURES, mathvista_rows
from tests.evals.tasks import rows as bench_rows


def test_unknown_benchmark_and_missing_data_fail_at_once(tmp_path, capsys):
    assert main(["--tasks", "mathvista,chartqa", "--model", "m", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark chartqa; available: mathvista, mathvision, pope, m3cot" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"mathvista={tmp_path / 'nope'}",
                 "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"pope={tmp_path}", "--out", str(tmp_path)]) == 2
    assert "--data: unknown key pope (valid keys: mathvista)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--tasks", "mathvista", "--model", "m", "--prompt", "sketchy", "--out", str(tmp_path)])
    assert main(["--tasks", "synthetic_grid", "--model", "m", "--out", str(tmp_path)]) == 2
    assert "synthetic_grid has no Hub dataset; name its file with --data synthetic_grid=PATH" in \
        capsys.readouterr().err


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


def _with_real_option_structures(rows):
    """Rows 0-2 take testmini's duplicated-option structures (pids 781, 740, 587); row 4's gold names none of its
    options (unscorable)."""
    real = [(["9", "12", "18", "18"], "18"), (["15", "100", "50", "50"], "15"),
            (["20海里", "20√{2}海里", "15海里", "20海里"], "20√{2}海里")]
    for row, (choices, answer) in zip(rows, real, strict=False):
        row.update(choices=choices, answer=answer, question_type="multi_choice", answer_type="text", precision=None)
    rows[4].update(choices=["1", "2", "3"], answer="7", question_type="multi_choice", answer_type="text",
                   precision=None)
    return rows


def test_unscorable_items_are_counted_and_every_item_scored(tmp_path):
    from evals.tasks.mathvista import utils

    rows = _with_real_option_structures(mathvista_rows(6))
    cot = "I compare the bars in the figure one by one.\nFinal answer: "
    responses = [cot + "D", cot + "A", cot + "B", cot + "3", cot + "C", "no answer"]
    task = "mmpr_mathvista_testmini_cot"
    samples = [{**utils.process_results_cot(doc, [resp]), "resps": [[resp]]}
               for doc, resp in zip(rows, responses, strict=True)]
    raw = {"samples": {task: samples}, "configs": {task: {"dataset_path": "local", "generation_kwargs": {}}}}
    result = _write(raw, [get("mathvista")], "cot", "m", "hf", None, tmp_path, {}, None).tasks["mathvista"]
    assert (result.total, result.correct, result.unscorable) == (6, 3, 1)
    assert list(result.unscorable_items) == ["5"] and "names none of the choices" in result.unscorable_items["5"]
    saved = json.loads((tmp_path / "results.json").read_text())["tasks"]["mathvista"]
    assert saved["unscorable"] == 1
    lines = [json.loads(line) for line in (tmp_path / f"samples_{task}.jsonl").read_text().splitlines()]
    assert [s["scorable"] for s in lines] == [True, True, True, True, False, True]


class ScriptedEngine:
    """Answers row ``i`` (its question ends in ``(i)``) with ``answers[i]``: the scoring path without a model."""

    def __init__(self, answers: list[str]):
        self.answers = answers

    def generate(self, requests, sampling):
        out = []
        for r in requests:
            i = int(re.search(r"\((\d+)\)", r.question)[1])
            out.append([Response(item_id=r.key, sample_index=0, text=self.answers[i], prompt_tokens=1,
                                 completion_tokens=1)])
        return out


@pytest.mark.slow
def test_a_run_over_duplicated_option_items_scores_every_item(tmp_path):
    rows = _with_real_option_structures(mathvista_rows(6))
    path = tmp_path / "dups.parquet"
    Dataset.from_list(rows, features=MATHVISTA_FEATURES).to_parquet(str(path))
    cot = "I compare the bars in the figure one by one.\nFinal answer: "
    engine = ScriptedEngine([cot + "(D) 18", cot + "15", cot + "B", cot + "3.5", cot + "C", cot + "5.5"])
    result = evaluate(["mathvista"], "scripted", out=tmp_path / "run", data={"mathvista": str(path)},
                      engine_instance=engine).tasks["mathvista"]
    assert (result.total, result.correct, result.unscorable, result.unparsable) == (6, 5, 1, 0)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())["tasks"]["mathvista"]
    assert saved["unscorable"] == 1 and list(saved["unscorable_items"]) == ["5"]


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
