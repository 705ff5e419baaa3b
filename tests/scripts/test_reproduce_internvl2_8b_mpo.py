"""scripts/reproduce_internvl2_8b_mpo.sh end to end on tiny stand-ins, so the reproduction cannot rot: a tiny
original-layout InternVL (InternLM2), a tiny MMPR release, CPU, two optimizer steps, MathVista-schema eval data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from mmpr.testing import tiny_images, tiny_original_internvl, write_release
from mpo_train.convert_internvl.files import read_state
from tests.evals.conftest import MATHVISTA_FEATURES, mathvista_rows
from tests.test_readme import printed, run_printed

ROOT = Path(__file__).resolve().parents[2]


def _release(root: Path) -> Path:
    images = {f"shapes/{i}.png": img for i, img in enumerate(tiny_images(4, size=(80, 60)))}
    rows = [{"image": f"shapes/{i % 4}.png", "question": f"How many shapes are there? ({i})",
             "chosen": f"I count them. Final answer: {i % 3 + 1}", "rejected": f"Guess. Final answer: {i % 3 + 5}"}
            for i in range(8)]
    return write_release(root, {"shapes_en": rows}, images=images)


@pytest.mark.slow
def test_reproduction_script_runs_on_tiny_stand_ins(tmp_path):
    work = tmp_path / "work"
    original = tiny_original_internvl(work / "original" / "InternVL2-8B", "internlm2", layers=1,
                                      answers_end_at_once=True)
    _release(work / "MMPR-v1.0")
    mathvista = tmp_path / "mathvista.parquet"
    Dataset.from_list(mathvista_rows(4), features=MATHVISTA_FEATURES).to_parquet(str(mathvista))
    # the README's command exactly as printed, no environment activated; the settings point it at the stand-ins
    env = dict(WORK=str(work), NUM_GPUS="1", HF_HUB_OFFLINE="1", MMPR_CACHE=str(tmp_path / "cache"),
               ACCELERATE_ARGS="--cpu --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no",
               TRAIN_OVERRIDES="max_steps=2 gradient_accumulation_steps=1 per_device_batch_size=2 precision=fp32 "
                               "gradient_checkpointing=false max_length=512 num_workers=0 save_steps=100",
               EVAL_ENGINE="transformers", EVAL_COT_TASKS="mathvista", EVAL_DIRECT_TASKS="mathvista",
               EVAL_ARGS=f"--limit 2 --data mathvista={mathvista}")
    done = run_printed(printed("bash scripts/reproduce_internvl2_8b_mpo.sh"), ROOT, timeout=600, **env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "7/7 compare" in done.stdout
    # training moved the weights; the released layout holds exactly the trained tensors
    trained = read_state(work / "original" / "InternVL2-8B-MPO")
    before = read_state(original)
    assert sorted(trained) == sorted(before)
    name = "language_model.model.layers.0.attention.wqkv.weight"
    assert not torch.equal(trained[name], before[name])
    config = json.loads((work / "original" / "InternVL2-8B-MPO" / "config.json").read_text())
    assert config["architectures"] == ["InternVLChatModel"] and "auto_map" in config
    assert (work / "original" / "InternVL2-8B-MPO" / "modeling_internvl_chat.py").exists()
    for run in ("InternVL2-8B-cot", "InternVL2-8B-MPO-cot", "InternVL2-8B-direct", "InternVL2-8B-MPO-direct"):
        assert (work / "eval" / run).is_dir(), run
    assert any((work / "compare-cot").iterdir()) and any((work / "compare-direct").iterdir())
