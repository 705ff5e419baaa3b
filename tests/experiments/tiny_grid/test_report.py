import json
from datetime import UTC, datetime

import pytest

from evals.results import RunResult, TaskResult
from experiments.tiny_grid import report as gr
from experiments.tiny_grid.generate import Baselines, TaskSummary
from mmpr.build.summary import BuildSummary, SourceStats
from mmpr.schemas import Manifest


def test_mean_ci_is_a_student_t_interval():
    stat = gr.mean_ci([40.0, 44.0, 48.0])
    # sd 4, n 3: half width 4.303 * 4 / sqrt(3) = 9.94
    assert stat["mean"] == 44.0 and stat["ci95"] == [34.06, 53.94]
    assert gr.mean_ci([50.0])["ci95"] is None


def test_paired_ci_pairs_the_same_questions():
    a = {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 1.0, "extra": 1.0}
    b = {"q1": 0.0, "q2": 1.0, "q3": 0.0, "q4": 0.0}
    d = gr.paired_ci(a, b)
    # diffs 100, 0, 0, 100: mean 50, sd 57.735, half 1.96 * 57.735 / 2 = 56.58
    assert d["questions"] == 4 and d["mean"] == 50.0 and d["ci95"] == [-6.58, 106.58]
    with pytest.raises(ValueError):
        gr.paired_ci({"x": 1.0}, {"y": 1.0})


def _eval(folder, prompt, correct, unparsable=0):
    folder.mkdir(parents=True)
    task = f"mmpr_synthetic_grid_{prompt.split('_')[0]}"
    n = len(correct)
    result = TaskResult(benchmark="synthetic_grid", task=task, accuracy=100 * sum(correct) / n, correct=sum(correct),
                        total=n, unparsable=unparsable, unparsable_rate=100 * unparsable / n, dataset="test.parquet")
    run = RunResult(model="m", engine="hf", prompt=prompt.split("_")[0], prompt_template="", generation={},
                    lmms_eval_version="0.7.3", created_at=datetime.now(UTC), limit=None,
                    tasks={"synthetic_grid": result})
    (folder / "results.json").write_text(run.model_dump_json())
    (folder / f"samples_{task}.jsonl").write_text("".join(
        json.dumps({"doc_id": f"q{i}", "correct": bool(c)}) + "\n" for i, c in enumerate(correct)))


def _task_and_pairs(out):
    """``data/task.json`` and ``pairs/manifest.json`` as the generator and the build write them."""
    (out / "data").mkdir()
    task = TaskSummary(side=3, train=80, val=0, test=100, sft=20, direct_share=0.9, seed=0,
                       baselines=Baselines(chance=0.25, majority=0.4))
    (out / "data" / "task.json").write_text(task.model_dump_json())
    (out / "pairs").mkdir()
    build = BuildSummary(pairs={"correctness": 10, "format": 3},
                         sources={"synthetic_grid": SourceStats(judged=80, correct=36, unparsable=4)})
    manifest = Manifest(name="pairs", dataset_version="1.0.0", content_hash="0" * 64, num_pairs=13, subsets={},
                        extra={"build": build.model_dump()})
    (out / "pairs" / "manifest.json").write_text(manifest.model_dump_json())


def test_report_reads_the_run_layout_and_checks_gates_and_effects(tmp_path):
    _task_and_pairs(tmp_path)
    n = 100
    start_cot = [i < 40 for i in range(n)]
    start_direct = [i < 50 for i in range(n)]
    _eval(tmp_path / "eval/sft/seed0/cot", "cot", start_cot, unparsable=10)
    _eval(tmp_path / "eval/sft/seed0/direct", "direct", start_direct)
    _eval(tmp_path / "eval/sft/seed0/cot_shuffled", "cot", [i < 26 for i in range(n)])
    _eval(tmp_path / "eval/sft/seed0/direct_shuffled", "direct", [i < 27 for i in range(n)])
    arms = {"sft_chosen": 50, "dpo": 52, "mpo": 60, "high_lr_dpo": 30, "high_lr_mpo": 58}
    for arm, right in arms.items():
        for seed, shift in enumerate((-1, 0, 1)):
            _eval(tmp_path / f"eval/{arm}/seed{seed}/cot", "cot", [i < right + shift for i in range(n)],
                  unparsable=8 if arm == "high_lr_dpo" else 1)
            _eval(tmp_path / f"eval/{arm}/seed{seed}/direct", "direct", start_direct)
    results = gr.report(tmp_path)
    assert results["sampled_cot_accuracy_t1"] == 45.0
    assert results["sft"]["accuracy"]["mean"] == 40.0 and results["mpo"]["accuracy"]["mean"] == 60.0
    assert results["mpo_minus_sft_ci95"]["mean"] == 20.0 and results["mpo_minus_sft_ci95"]["ci95"][0] > 0
    assert results["gates"] == {"shuffled_accuracy": {"cot": 26.0, "direct": 27.0}, "reads_image": True,
                                "cot_below_direct": True, "sampled_cot_in_30_70": True}
    assert results["effects"] == {"mpo_lifts_cot_5_points": True, "mpo_cot_passes_direct": True,
                                  "high_lr_dpo_loses_accuracy": True, "high_lr_dpo_more_unparsable": True,
                                  "mpo_beats_sft_chosen_3_points": True}
    assert "| mpo | 60.0 [" in gr.table(results)
    assert gr.main([str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["baselines"] == {"chance": 25.0, "majority": 40.0}
    assert (tmp_path / "results.png").stat().st_size > 1000


def test_a_run_with_missing_outputs_is_one_line_and_exit_2(tmp_path, capsys):
    assert gr.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "task.json" in err and "\n" not in err


def test_a_step_output_that_is_not_its_record_is_one_line_naming_the_file(tmp_path, capsys):
    _task_and_pairs(tmp_path)
    (tmp_path / "data" / "task.json").write_text(json.dumps({"baselines": {"chance": 0.25, "majority": 0.4}}))
    assert gr.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "task.json: not a TaskSummary" in err and "\n" not in err
