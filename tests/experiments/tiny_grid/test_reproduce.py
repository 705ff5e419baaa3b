import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import checkout_view, printed, run_printed

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = "experiments/tiny_grid/reproduce.sh"


@pytest.mark.slow
def test_quick_run_writes_results_gates_and_chart(tmp_path):
    """The README's command exactly as printed, from a checkout, no environment activated."""
    command = printed("bash experiments/tiny_grid/reproduce.sh runs/tiny --quick")
    view = checkout_view(tmp_path / "checkout")
    out = view / "runs" / "tiny"
    done = run_printed(command, view, HF_HUB_OFFLINE="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for arm in ("sft", "sft_chosen", "dpo", "mpo"):
        assert 0 <= results[arm]["accuracy"]["mean"] <= 100
        assert 0 <= results[arm]["unparsable"]["mean"] <= 100
    assert set(results["high_lr"]) == {"dpo", "mpo", "mpo_minus_dpo_ci95"}
    assert results["mpo_minus_sft_ci95"]["questions"] == 24
    assert set(results["gates"]) == {"shuffled_accuracy", "reads_image", "cot_below_direct", "sampled_cot_in_30_70"}
    assert results["baselines"]["chance"] < 30
    assert sum(results["pairs"].values()) > 0
    assert (out / "results.png").stat().st_size > 1000
    # the first stage trains every weight; the shift and the arms leave the image side (tower, projector) as it is
    def trained(log):
        total, count = re.search(r"\(([\d,]+) parameters, ([\d,]+) trained\)", log.read_text()).groups()
        return int(count.replace(",", "")) / int(total.replace(",", ""))
    assert trained(out / "sft_cot.log") == 1
    assert all(trained(log) < 0.9 for log in [out / "sft.log", *out.glob("arms/*/seed0.log")])
    # every step resumes: a second run finds everything done and trains, samples and evaluates nothing
    done = sorted(out.glob("**/final/config.json")) + [out / "pairs" / "manifest.json"]
    done += sorted(out.glob("eval/**/results.json"))
    assert len(done) == 2 + 5 + 1 + 4 + 10  # start stages, arms; pairs; start evaluations, arm evaluations
    stamps = [p.stat().st_mtime_ns for p in done]
    again = run_printed(command, view, timeout=600, HF_HUB_OFFLINE="1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert not re.search(r"^\[\d+s\] (SFT on|SFT shift|arm )", again.stdout, re.M), again.stdout
    assert [p.stat().st_mtime_ns for p in done] == stamps


@pytest.mark.parametrize("task_seed", [None, "1"])
def test_task_seed_draws_the_questions_and_the_model(tmp_path, task_seed):
    # a stand-in interpreter that records each command, lets the two generator steps pass and fails the first
    # training step, so that the script stops right after writing the task and the model
    calls = tmp_path / "calls.txt"
    shim = tmp_path / "python"
    shim.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n[[ "$2" == experiments.tiny_grid.generate ]]\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHON": str(shim)}
    env.pop("TASK_SEED", None)
    if task_seed:
        env["TASK_SEED"] = task_seed
    done = subprocess.run(["bash", SCRIPT, str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "failed: SFT on CoT" in done.stdout
    data, model, train = calls.read_text().splitlines()
    assert data.startswith("-m experiments.tiny_grid.generate data")
    assert model.startswith("-m experiments.tiny_grid.generate model")
    assert train.startswith("-m mpo_train")
    assert data.endswith(f"--seed {task_seed or 0}") and model.endswith(f"--seed {task_seed or 0}")


@pytest.mark.parametrize("flags, env_seed, says", [([], "1", "seed is 0 but this run asks for 1"),
                                                   (["--quick"], None, "train is 1000 but this run asks for 24")])
def test_resume_into_another_runs_folder_is_refused(tmp_path, flags, env_seed, says):
    out = tmp_path / "run"
    (out / "data").mkdir(parents=True)
    (out / "data" / "task.json").write_text(json.dumps({"train": 1000, "test": 300, "sft": 4000, "seed": 0}))
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("TASK_SEED", None)
    if env_seed:
        env["TASK_SEED"] = env_seed
    done = subprocess.run(["bash", SCRIPT, str(out), *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"{out / 'data' / 'task.json'}: {says}; give another OUT"
    assert sorted(p.name for p in out.rglob("*")) == ["data", "task.json"]
