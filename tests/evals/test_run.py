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
    assert "unknown benchmark 'chartqa'; available: dynamath, logicvista, m3cot, mathverse" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"mathvista={tmp_path / 'nope'}",
                 "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--data", f"pope={tmp_path}", "--out", str(tmp_path)]) == 2
    assert "--data: unknown key pope (valid keys: mathvista)" in capsys.readouterr().err
    assert main(["--tasks", "mathvista", "--model", "m", "--prompt", "sketchy", "--out", str(tmp_path)]) == 2
    assert "unknown prompt style 'sketchy'; available: cot, direct, reasoning" in capsys.readouterr().err
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
    args = ["--tasks", "mathvista", "--model", "tiny:qwen2_vl", "--engine", "transformers", "--limit", "8",
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


def test_results_hold_the_interval_the_judged_comparison_and_thinking(tmp_path):
    from evals.run import summary_line
    from evals.tasks.mathvista import utils
    from tests.evals.judge_server import JudgeServer

    rows = mathvista_rows(8)
    cot = "I count the shapes in the figure one by one.\n"
    # rows alternate multiple choice (answer i % 4 + 1, options 1-4) and float (i.5, one decimal): rows 0, 1, 7
    # right; row 3's answer only the judge reads; row 6 never closes its think block
    responses = [cot + "Final answer: 1", cot + "Final answer: 1.5", cot + "Final answer: 2",
                 "<think>" + cot + "</think>so it comes to 3.5", cot + "Final answer: 4", cot + "Final answer: 9",
                 "<think>never done", cot + "Final answer: 7.5"]
    task = "mmpr_mathvista_testmini_cot"
    samples = [{**utils.process_results_cot(doc, [resp]), "resps": [[resp]], "doc_id": i}
               for i, (doc, resp) in enumerate(zip(rows, responses, strict=True))]
    raw = {"samples": {task: samples}, "configs": {task: {"dataset_path": "local", "generation_kwargs": {}}}}
    with JudgeServer() as server:
        result = _write(raw, [get("mathvista")], "cot", "m", "hf", None, tmp_path, {}, server.url).tasks["mathvista"]
    assert (result.correct, result.total, result.unparsable) == (3, 8, 2)
    assert result.interval.low <= 37.5 <= result.interval.high and result.interval.units == 8
    assert result.interval.method == "percentile bootstrap over items" and result.interval.resamples == 1000
    comparison = result.judge_comparison
    assert (comparison.judge_free, comparison.judged, comparison.judge_failures) == (37.5, 50.0, 0)
    assert [(d.doc_id, d.judge_free_extracted, d.judged_extracted) for d in comparison.differing] == [
        ("4", None, "3.5")]
    assert (result.thinking.responses_with_thinking, result.thinking.unclosed) == (2, 1)
    saved = json.loads((tmp_path / "results.json").read_text())["tasks"]["mathvista"]
    assert saved["interval"]["level"] == 0.95 and saved["judge_comparison"]["judged"] == 50.0
    assert "| 4 | 3.5 | - | False | 3.5 | 3.5 | True |" in (tmp_path / f"judged_{task}.md").read_text()
    line = summary_line("mathvista", result)
    assert line.startswith(f"mathvista: 37.50 [{result.interval.low:.1f}, {result.interval.high:.1f}] (3/8)")
    assert "judged 50.00 [" in line and "1 items differ, 0 judge failures" in line and "1 never closed" in line


@pytest.mark.slow
def test_samples_judge_and_thinking_end_to_end_resume_without_the_engine(tmp_path, capsys):
    from tests.evals.judge_server import JudgeServer

    class Sampler(ScriptedEngine):
        """Greedy: the scripted answer; sampled: item i's first i % 3 + 1 samples right, the rest "2" (wrong)."""

        def generate(self, requests, sampling):
            if not sampling.temperature:
                return super().generate(requests, sampling)
            self.sampled = getattr(self, "sampled", 0) + 1
            items = [int(re.search(r"\((\d+)\)", r.question)[1]) for r in requests]
            return [[Response(item_id=r.key, sample_index=j, text=cot + "Final answer: " + (
                gold[i] if j < i % 3 + 1 else "2"), prompt_tokens=1, completion_tokens=1) for j in range(r.n)]
                for r, i in zip(requests, items, strict=True)]

    rows = mathvista_rows(4)
    gold = [r["answer"] for r in rows]
    path = tmp_path / "mv.parquet"
    Dataset.from_list(rows, features=MATHVISTA_FEATURES).to_parquet(str(path))
    cot = "I count the shapes in the figure one by one.\n"
    engine = Sampler([cot + "Final answer: 1", "<think>" + cot + "</think>Final answer: 1.5", cot + "A",
                      "<think>no end"])
    with JudgeServer() as server:
        kwargs = dict(out=tmp_path / "run", data={"mathvista": str(path)}, engine_instance=engine, samples=3,
                      temperature=0.8, strip_thinking=True, judge=server.url)
        result = evaluate(["mathvista"], "scripted", **kwargs).tasks["mathvista"]
        assert (result.correct, result.unparsable) == (2, 2) and result.thinking.unclosed == 1
        sampled = result.sampled
        # 1, 2, 3 and 1 right samples of 3: avg 7/12; the majority is right on items 1 and 2
        assert (sampled.k, sampled.items, sampled.temperature) == (3, 4, 0.8)
        assert sampled.pass_at_k == 100.0 and sampled.avg_at_k == pytest.approx(58.33)
        assert sampled.majority_at_k == 50.0 and sampled.avg_at_k_interval.units == 4
        assert result.judge_comparison.items == 4 and result.judge_comparison.judge_failures == 0
        def extractions():
            return sum("Extracted answer:" in r["messages"][0]["content"] for r in server.requests)

        assert extractions() == 4
        again = evaluate(["mathvista"], "scripted", **kwargs).tasks["mathvista"]
        assert extractions() == 4, "the judged protocol's replies are cached too"
    assert engine.sampled == 1, "every sample was cached: the rerun does not sample again"
    assert again.sampled == sampled and again.interval == result.interval
