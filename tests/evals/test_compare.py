from datetime import UTC, datetime

from evals.compare import main, paper_number, table
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
