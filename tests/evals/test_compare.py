import json
from datetime import UTC, datetime

import pytest

from evals.compare import NotComparable, load, main, paired_differences, paper_number, table
from evals.run import CategoryScore, RunResult, TaskResult
from mmpr.io import atomic_write_text


def _run(model, accuracy, prompt="cot"):
    task = TaskResult(benchmark="mathvista", task="t", accuracy=accuracy, correct=int(accuracy), total=100,
                      unparsable=3, unparsable_rate=3.0, dataset="AI4Math/MathVista",
                      categories={"skills": {"algebraic reasoning": CategoryScore(accuracy=accuracy - 5,
                                                                                  correct=1, total=2)}})
    return RunResult(model=model, engine="vllm", prompt=prompt, prompt_template="t", generation={},
                     lmms_eval_version="0.7.3", created_at=datetime.now(UTC), limit=None,
                     tasks={"mathvista": task})


def test_table_has_deltas_categories_and_the_papers_numbers():
    runs = [("a", _run("OpenGVLab/InternVL2-8B", 57.0)), ("b", _run("OpenGVLab/InternVL2-8B-MPO", 66.5))]
    text = table(runs)
    assert "| **mathvista** | 57.00 | 66.50 | +9.50 | InternVL2-8B (cot): 56.8; InternVL2-8B-MPO (cot): 67.0 |" in text
    assert "| mathvista / skills / algebraic reasoning | 52.00 | 61.50 | +9.50 | - |" in text
    assert paper_number(_run("OpenGVLab/InternVL2-8B", 1, prompt="direct"), "mathvista") == 58.3
    assert paper_number(_run("my/model", 1), "mathvista") is None


def test_cli_writes_markdown_and_png(tmp_path, capsys):
    for name, acc in (("a", 50.0), ("b", 60.0)):
        (tmp_path / name).mkdir()
        atomic_write_text(tmp_path / name / "results.json", _run(f"m/{name}", acc).model_dump_json())
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 0
    assert (tmp_path / "cmp" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "+10.00" in (tmp_path / "cmp" / "comparison.md").read_text()
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "cmp")]) == 2
    assert "no results" in capsys.readouterr().err


def _suite(model, prompt="cot", limit=None, worst=40.0):
    run = _run(model, 60.0, prompt=prompt)
    dyn = TaskResult(benchmark="dynamath", task="t", accuracy=70.0, correct=7, total=10, unparsable=0,
                     unparsable_rate=0.0, dataset="d", headline="worst_case", score=worst,
                     metrics={"average": 70.0, "worst_case": worst, "seeds": 5})
    m3 = TaskResult(benchmark="m3cot", task="t", accuracy=75.0, correct=3, total=4, unparsable=0,
                    unparsable_rate=0.0, dataset="d")
    return run.model_copy(update={"limit": limit, "tasks": {**run.tasks, "dynamath": dyn, "m3cot": m3}})


def test_headline_scores_metrics_and_papers_numbers_without_a_stated_prompt():
    text = table([("a", _suite("OpenGVLab/InternVL2-8B", worst=40.0)),
                  ("b", _suite("OpenGVLab/InternVL2-8B-MPO", worst=50.0))])
    assert "| **dynamath** (worst_case) | 40.00 | 50.00 | +10.00 | - |" in text
    assert "| dynamath: accuracy | 70.00 | 70.00 | +0.00 | - |" in text
    assert "| dynamath: seeds | 5.00 | 5.00 | +0.00 | - |" in text
    assert ("| **m3cot** | 75.00 | 75.00 | +0.00 | InternVL2-8B (prompt not stated): 59.3; "
            "InternVL2-8B-MPO (prompt not stated): 79.2 |") in text


def test_runs_with_different_prompts_or_limits_are_refused_or_flagged(tmp_path, capsys):
    base = _suite("OpenGVLab/InternVL2-8B")
    with pytest.raises(NotComparable, match="different --prompt: a: cot, b: reasoning"):
        table([("a", base), ("b", _suite("OpenGVLab/InternVL2-8B-MPO", prompt="reasoning"))])
    with pytest.raises(NotComparable, match="different --limit: a: None, b: 8"):
        table([("a", base), ("b", _suite("m/b", limit=8))])
    flagged = table([("a", base), ("b", _suite("m/b", limit=8))], allow_mismatch=True)
    assert flagged.startswith("> **WARNING: NOT COMPARABLE: different --limit")
    for name, run in (("a", base), ("b", _suite("m/b", prompt="direct"))):
        (tmp_path / name).mkdir()
        atomic_write_text(tmp_path / name / "results.json", run.model_dump_json())
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp")]) == 2
    assert "not comparable" in capsys.readouterr().err and not (tmp_path / "cmp").exists()
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp"), "--allow-mismatch"]) == 0
    assert "WARNING" in (tmp_path / "cmp" / "comparison.md").read_text()


def _with_samples(folder, model, right):
    """A run folder whose MathVista samples are right on the first ``right`` of 100 items."""
    folder.mkdir()
    with open(folder / "samples_t.jsonl", "w") as f:
        for i in range(100):
            f.write(json.dumps({"doc_id": str(i), "correct": i < right, "reference": {}, "response": "r"}) + "\n")
    atomic_write_text(folder / "results.json", _run(model, float(right)).model_dump_json())


def test_paired_differences_have_intervals_and_those_consistent_with_zero_are_marked(tmp_path, capsys):
    for name, right in (("a", 50), ("same", 50), ("slightly", 52), ("better", 70)):
        _with_samples(tmp_path / name, f"m/{name}", right)
    runs = [(str(tmp_path / n), load(tmp_path / n)) for n in ("a", "same", "slightly", "better")]
    paired = paired_differences(runs)["mathvista"]
    assert [p[0] for p in paired] == [0.0, 2.0, 20.0]
    assert (paired[0][1].low, paired[0][1].high) == (0.0, 0.0), "two identical runs: [0, 0]"
    assert paired[1][1].low == 0.0 and paired[2][1].low > 10 and paired[2][1].units == 100
    text = table(runs, paired=paired_differences(runs))
    row = next(line for line in text.splitlines() if line.startswith("| **mathvista**"))
    assert "| +0.00 [+0.0, +0.0] ~0 |" in row and "| +2.00 [+0.0, +5.0] ~0 |" in row
    assert f"| +20.00 [{paired[2][1].low:+.1f}, {paired[2][1].high:+.1f}] |" in row
    assert "~0 marks a delta whose interval includes zero" in text
    assert main([str(tmp_path / "a"), str(tmp_path / "better"), "--out", str(tmp_path / "cmp")]) == 0
    assert "+20.00 [+" in (tmp_path / "cmp" / "comparison.md").read_text()
    # a run whose samples are gone still compares, without the interval
    (tmp_path / "better" / "samples_t.jsonl").unlink()
    assert paired_differences(runs)["mathvista"][2] is None
