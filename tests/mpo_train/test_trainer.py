import json
import logging
import re

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmpr.errors import NothingMade, UserError
from mmpr.testing import LAYER_TYPE_FAMILIES
from mpo_train import trainer as trainer_module
from mpo_train.__main__ import main
from mpo_train.config import TrainConfig
from mpo_train.trainer import Trainer, freeze, latest_checkpoint
from tests.mpo_train.conftest import write_pairs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("pairs"), 40)


def _cfg(model, data, out, **kw):
    base = dict(model=str(model), data=[str(data)], output_dir=out, precision="fp32", gradient_checkpointing=False,
                num_workers=0, learning_rate=1e-3, warmup_ratio=0.0, per_device_batch_size=4, max_length=256,
                save_steps=None, seed=0)
    return TrainConfig(**{**base, **kw})


def _losses(out):
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in r]


def test_training_learns_the_preference_on_held_out_pairs(tiny_model_dir, data, tmp_path):
    cfg = _cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "run", eval_fraction=0.25, num_epochs=5,
               reference="precomputed")
    result = Trainer(cfg, progress=False).train()
    assert result.steps == 40
    assert result.eval_metrics["eval_rewards_accuracy"] > 0.9
    assert result.eval_metrics["eval_rewards_margin"] > 0
    losses = _losses(tmp_path / "run")
    assert losses[0][1] > losses[-1][1]
    assert (tmp_path / "run" / "training_curves.png").stat().st_size > 10_000
    card = (result.final_dir / "README.md").read_text()
    assert "Mixed Preference Optimization" in card and "eval_rewards_accuracy" in card
    model = AutoModelForImageTextToText.from_pretrained(result.final_dir)
    processor = AutoProcessor.from_pretrained(result.final_dir)
    inputs = processor(text=["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"], return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=4, do_sample=False).shape[1] > inputs["input_ids"].shape[1]


def test_a_resumed_run_continues_with_the_same_losses(tiny_model_dir, data, tmp_path, monkeypatch):
    kw = dict(max_steps=8, save_steps=3, per_device_batch_size=3, gradient_accumulation_steps=2)
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "whole", **kw), progress=False).train()

    real = Trainer._checkpoint

    def killed_after_step_3(self, state):
        real(self, state)
        if state["global_step"] == 3:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Trainer, "_checkpoint", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "resumed", **kw), progress=False).train()
    monkeypatch.setattr(Trainer, "_checkpoint", real)
    assert latest_checkpoint(tmp_path / "resumed").name == "step-0000003"
    result = Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "resumed", **kw), progress=False).train()
    whole, resumed = _losses(tmp_path / "whole"), _losses(tmp_path / "resumed")
    assert [s for s, _ in resumed] == list(range(1, 9)), "no step lost or logged twice"
    for (_, a), (_, b) in zip(whole, resumed, strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    deltas = [json.loads(line)["delta"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert deltas[3] != 0.0, "the BCO delta survives the resume"
    assert result.steps == 8


def test_precomputed_reference_gives_the_online_losses_scoring_only_the_pairs_used(tiny_model_dir, data, tmp_path):
    kw = dict(limit=16)
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "online", reference="online", max_steps=4, **kw),
            progress=False).train()
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "pre", reference="precomputed", max_steps=2, **kw),
            progress=False).train()
    (cache,) = (tmp_path / "pre" / "cache").glob("reference-*.json")
    assert len(json.loads(cache.read_text())) == 8, "2 steps x 4 pairs: only the pairs the run uses are scored"
    assert not (tmp_path / "pre" / "checkpoints").exists(), "save_steps unset: no checkpoint"
    assert (tmp_path / "pre" / "final" / "model.safetensors").exists()
    # a longer run in the same folder scores the rest, and trains with the online losses
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "pre", reference="precomputed", max_steps=4, **kw),
            progress=False).train()
    assert len(json.loads(cache.read_text())) == 16
    online, pre = _losses(tmp_path / "online"), _losses(tmp_path / "pre")
    assert len(pre) == 4
    for (_, a), (_, b) in zip(online, pre, strict=True):
        assert a == pytest.approx(b, rel=1e-4)


def test_the_forward_mode_used_keys_the_reference_cache_and_is_named_in_the_log_and_card(tiny_model_dir, data,
                                                                                          tmp_path, caplog):
    """The precompute's cache is keyed by the mode that scored it (auto records the mode it decided, not "auto"),
    and the mode used, with why, is in the training log and on the model card."""
    caches = {}
    for forward, used in (("auto", "packed: packed forward checked against plain on 1 image signatures"),
                          ("packed", "packed: set by forward: packed"), ("plain", "plain: set by forward: plain")):
        out = tmp_path / forward
        with caplog.at_level(logging.INFO, logger="mpo_train"):
            result = Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, out, reference="precomputed", forward=forward,
                                  max_steps=1, limit=4), progress=False).train()
        (cache,) = (out / "cache").glob("reference-*.json")
        caches[forward] = cache.name
        assert any(m.startswith(f"forward used: {used}") for m in caplog.messages), caplog.messages
        assert any(f"with the {used.split(':')[0]} forward; cache {cache.name}" in m for m in caplog.messages)
        card = (result.final_dir / "README.md").read_text()
        assert f"Forward used: {used}" in card and "reference log-probs: precomputed." in card
        caplog.clear()
    assert caches["auto"] == caches["packed"] != caches["plain"]


def test_gradient_accumulation_matches_the_larger_batch(tiny_model_dir, data, tmp_path):
    kw = dict(max_steps=1, limit=4, loss_weights=(1.0, 0.0, 0.0))
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "b4", per_device_batch_size=4, **kw),
            progress=False).train()
    Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "a2x2", per_device_batch_size=2,
                 gradient_accumulation_steps=2, **kw), progress=False).train()
    b4, a2 = (json.loads((tmp_path / d / "metrics.jsonl").read_text().splitlines()[0]) for d in ("b4", "a2x2"))
    assert b4["grad_norm"] == pytest.approx(a2["grad_norm"], rel=1e-4)
    assert b4["loss"] == pytest.approx(a2["loss"], rel=1e-5)


def test_lora_with_the_adapter_disabled_as_reference(tiny_model_dir, data, tmp_path):
    cfg = _cfg(tiny_model_dir("llava"), data, tmp_path / "lora", max_steps=3, limit=12, reference="lora_base",
               lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    result = Trainer(cfg, progress=False).train()
    lines = [json.loads(line) for line in (tmp_path / "lora" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["rewards_margin"] == pytest.approx(0.0, abs=1e-6), "LoRA starts at zero: policy == base"
    assert (result.final_dir / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForImageTextToText.from_pretrained(result.final_dir)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir("llava"))
    changed = [n for (n, p), (_, q) in zip(merged.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(p, q)]
    assert changed and all("q_proj" in n or "v_proj" in n for n in changed)


def test_freezing_by_part(tiny_model_dir):
    for family, vision_name in (("qwen2_vl", "visual.blocks"), ("llava", "vision_tower"), ("internvl",
                                                                                            "vision_tower")):
        model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir(family))
        assert freeze(model, vision=True, projector=False) > 0
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        assert any(vision_name in n for n in frozen)
        assert not any("language_model" in n for n in frozen)
        projector = {n for n, p in model.named_parameters() if p.requires_grad and
                     any(part in n for part in trainer_module.PROJECTOR_PARTS)}
        assert projector, f"{family}: the projector stays trainable"


def test_cli_reports_config_errors(capsys, tmp_path):
    assert main(["model=m", "data=[d]", f"output_dir={tmp_path}", "bogus=1"]) == 2
    assert "valid keys:" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_run_killed_with_sigkill_resumes(tiny_model_dir, data, tmp_path):
    """`python -m mpo_train` in a real process, killed after its first checkpoint, finishes on rerun with the
    uninterrupted run's losses."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "mpo_train", f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]",
            "precision=fp32", "gradient_checkpointing=false", "num_workers=0", "learning_rate=1e-3",
            "warmup_ratio=0", "per_device_batch_size=2", "max_steps=12", "save_steps=2", "max_length=256"]
    whole = subprocess.run(args + [f"output_dir={tmp_path / 'whole'}"], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    proc = subprocess.Popen(args + [f"output_dir={tmp_path / 'run'}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while latest_checkpoint(tmp_path / "run") is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = int(latest_checkpoint(tmp_path / "run").name.split("-")[1])
    assert step < 12, "killed before the end"
    rerun = subprocess.run(args + [f"output_dir={tmp_path / 'run'}"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from" in rerun.stdout
    for (s1, a), (s2, b) in zip(_losses(tmp_path / "whole"), _losses(tmp_path / "run"), strict=True):
        assert s1 == s2 and a == pytest.approx(b, rel=1e-5, abs=1e-6)


def test_internvl_with_checkpointing_bf16_and_tensorboard(tiny_model_dir, data, tmp_path):
    cfg = _cfg(tiny_model_dir("internvl"), data, tmp_path / "ivl", max_steps=2, limit=8, gradient_checkpointing=True,
               precision="bf16", report_to=["tensorboard"], freeze_vision_tower=True)
    result = Trainer(cfg, progress=False).train()
    assert result.steps == 2 and result.metrics["loss"] > 0
    assert list((tmp_path / "ivl").rglob("events.out.tfevents.*")), "tensorboard got the metrics"


@pytest.mark.slow
def test_two_process_ddp_with_text_only_batches(tiny_model_dir, tmp_path):
    """Two CPU processes (gloo DDP), half the micro-batches without an image: the run completes, the BCO delta is
    reduced across ranks, one set of full weights is saved."""
    import subprocess
    import sys

    data = write_pairs(tmp_path / "pairs", 16, text_only_every=2)
    config = tmp_path / "ddp.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_CPU\nnum_processes: 2\n"
                      "num_machines: 1\nmachine_rank: 0\nmixed_precision: 'no'\nuse_cpu: true\n"
                      "main_process_ip: 127.0.0.1\nmain_process_port: 29561\nrdzv_backend: static\n")
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "-m",
                          "mpo_train", f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]",
                          f"output_dir={tmp_path / 'out'}", "precision=fp32", "gradient_checkpointing=false",
                          "num_workers=0", "per_device_batch_size=1", "max_steps=6", "learning_rate=1e-3",
                          "save_steps=3", "max_length=256"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1]["delta"] != 0.0
    assert (tmp_path / "out" / "final" / "model.safetensors").exists()


def test_training_from_a_release_folder_prints_and_counts_its_bad_rows(tiny_model_dir, tmp_path, capsys):
    from mmpr.testing import tiny_images, write_release

    rows = [{"image": "i.png", "question": f"How many shapes ({i})?", "chosen": "Three. Final answer: 3",
             "rejected": "Five. Final answer: 5"} for i in range(8)]
    rows[2] = '{"image": "i.png", "question": "cut off'
    rows[5] = {"image": "i.png", "question": "q?", "chosen": "same", "rejected": "same"}
    rows[6] = {**rows[6], "question": "How many shapes? " * 60}  # the prompt alone overflows max_length
    release = write_release(tmp_path / "MMPR", {"x_pairs_vqa_correctness_rules": rows},
                            images={"i.png": tiny_images(1)[0]})
    out = tmp_path / "run"
    result = Trainer(_cfg(tiny_model_dir("qwen2_vl"), release, out, max_steps=1), progress=True).train()
    printed = capsys.readouterr().out
    assert "data: 5 pairs ready, 3 skipped (invalid_value: 1, malformed_json: 1, prompt_too_long: 1)" in printed
    annotation = release / "annotations" / "x_pairs_vqa_correctness_rules.jsonl"
    assert f"  skipped: {annotation}:3: not valid JSON" in printed
    assert f"  skipped: {annotation}:6 [rejected]:" in printed
    report = json.loads((out / "skipped.json").read_text())
    assert report["counts"] == {"invalid_value": 1, "malformed_json": 1, "prompt_too_long": 1}
    assert report["total"] == 3 and [p["code"] for p in report["problems"]][-1] == "prompt_too_long", \
        "the rows the preparation pass skips are listed with those skipped while reading"
    card = (result.final_dir / "README.md").read_text()
    assert "3 skipped (invalid_value: 1, malformed_json: 1, prompt_too_long: 1)" in card


def test_dpo_failure_mode_is_warned_and_the_probe_is_logged(tiny_model_dir, tmp_path):
    """A model fitted to the responses (SFT), then DPO alone at a high learning rate on pairs whose responses
    barely differ: the chosen log-prob is pushed down step after step and the run warns. Every eval_steps the
    generation probe's metrics reach metrics.jsonl and the curves, its samples probe/."""
    data = write_pairs(tmp_path / "pairs", 24, systematic=False)
    # responses end at <|im_end|> (the template's newline after it is not trained): at 1e-2 this pair set learns a
    # margin without pushing the chosen responses down, at 3e-2 both fall
    kw = dict(lr_scheduler="constant", learning_rate=3e-2, limit=24)
    sft = Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "sft", loss_weights=(0.0, 0.0, 1.0),
                       max_steps=12, probe_prompts=0, **kw), progress=False).train()
    assert not sft.warnings
    out = tmp_path / "dpo"
    cfg = _cfg(sft.final_dir, data, out, loss_weights=(1.0, 0.0, 0.0), max_steps=10, eval_fraction=0.25,
               eval_steps=5, probe_prompts=2, probe_max_new_tokens=12, **kw)
    result = Trainer(cfg, progress=False).train()
    assert any("DPO failure mode" in w for w in result.warnings), result.warnings
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    probes = [r for r in records if "probe_unparsable_rate" in r]
    assert [r["step"] for r in probes] == [5, 10]
    assert all(0 <= r["probe_unparsable_rate"] <= 1 and r["probe_mean_length"] > 0 for r in probes)
    samples = [json.loads(line) for line in (out / "probe" / "step-0000010.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and all("Final answer" in s["prompt"] for s in samples)
    assert records[-1]["step"] == 10 and "logps_chosen" in records[0]


def test_a_broken_save_fails_the_run(tiny_model_dir, data, tmp_path, monkeypatch):
    """What a ZeRO-3 save without gathering writes: zeros. The run must not report success."""
    real = trainer_module.save_full_model

    def zeroed(model, processor, folder, *, state_dict, **kw):
        return real(model, processor, folder, state_dict={k: torch.zeros_like(v) for k, v in state_dict.items()},
                    **kw)

    monkeypatch.setattr(trainer_module, "save_full_model", zeroed)
    with pytest.raises(NothingMade, match="failed its check: .*all zeros"):
        Trainer(_cfg(tiny_model_dir("qwen2_vl"), data, tmp_path / "z", max_steps=1, limit=4), progress=False).train()


def test_sft_on_supervised_rows_learns_the_responses_without_a_reference(tiny_model_dir, tmp_path, monkeypatch):
    from mmpr.testing import tiny_images

    image = tmp_path / "a.png"
    tiny_images(1, size=(56, 56))[0].save(image)
    rows = tmp_path / "sft.jsonl"
    rows.write_text("".join(json.dumps({"question": f"Count {i}.", "images": [str(image)],
                                        "response": "There are three circles. Final answer: 3"}) + "\n"
                            for i in range(8)))
    loaded = []
    original = Trainer._load_model
    monkeypatch.setattr(Trainer, "_load_model", lambda self, path, trainable: loaded.append(trainable) or
                        original(self, path, trainable=trainable))
    cfg = _cfg(tiny_model_dir("qwen2_vl"), rows, tmp_path / "run", loss_weights=(0, 0, 1), max_steps=12,
               learning_rate=3e-3)
    Trainer(cfg, progress=False).train()
    assert loaded == [True], "the SFT term alone loads no reference model"
    gen = [r["loss_gen"] for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())]
    assert gen[-1] < gen[0] - 1  # the NLL of the responses falls
    with pytest.raises(UserError, match=rf"{re.escape(str(rows))}: supervised rows .*loss_weights=\[0,0,1\]"):
        Trainer(_cfg(tiny_model_dir("qwen2_vl"), rows, tmp_path / "dpo", max_steps=1), progress=False).train()


# --- the families whose images differ in shape, and Llama 4 (bf16 pixels), end to end -----------------------------

def write_mixed_shape_pairs(folder, n):
    """An mmpr dataset of ``n`` pairs whose images have three aspect ratios, every fourth pair text-only."""
    from mmpr.dataset_writer import SubsetInput, write_dataset
    from mmpr.schemas import PreferencePair
    from mmpr.testing import tiny_images

    sizes = [(90, 70), (40, 100), (120, 40)]
    (folder / "src").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        paths.append(str(folder / "src" / f"{i}.png"))
        tiny_images(1, size=size, seed=i)[0].save(paths[-1])
    pairs = [PreferencePair(id=f"p{i}", subset="toy", question=f"How many shapes ({i})?",
                            images=[] if i % 4 == 3 else [paths[i % 3]], chosen=f"I count them. Final answer: {i % 7}",
                            rejected=f"no idea, say {i % 7 + 1}", kind="correctness", source="toy") for i in range(n)]
    write_dataset(folder / "data", [SubsetInput("toy", pairs)], name="toy")
    return folder / "data", paths


@pytest.mark.slow
@pytest.mark.parametrize("family", ["smolvlm", "llava_onevision", "mistral3", "llama4", "phi4_multimodal"])
def test_family_trains_on_mixed_image_shapes_online_and_precomputed_then_reloads_and_serves(
        family, tiny_model_dir, tmp_path, capsys):
    from accelerate.state import AcceleratorState, GradientState

    from mmpr.engines import Request, make_engine
    from mmpr.schemas import SamplingConfig

    data, images = write_mixed_shape_pairs(tmp_path / "pairs", 12)
    model = tiny_model_dir(family)
    kw = dict(per_device_batch_size=3, max_steps=1, eval_fraction=0.25, max_length=1024)  # Phi-4: 448 px crops
    online = Trainer(_cfg(model, data, tmp_path / "online", reference="online", **kw)).train()
    out = capsys.readouterr().out
    assert "packed forward checked against plain" in out, "the check's decision is on the console"
    assert "saved model checked" in out
    assert online.eval_metrics, "the held-out evaluation ran on mixed shapes"
    AcceleratorState._reset_state(reset_partial_state=True)  # another run in this process, in bf16
    GradientState._reset_state()
    # bf16: the post-save check reloads in the dtype the run trained in (Llama 4's pixels are bf16)
    pre = Trainer(_cfg(model, data, tmp_path / "pre", reference="precomputed", precision="bf16", **kw),
                  progress=False).train()
    # each run's post-save check reloaded its model (in the run's dtype) and generated; the HF engine reloads too
    engine = make_engine("transformers", str(pre.final_dir), batch_size=3)
    requests = [Request(str(i), "How many shapes?", (path,)) for i, path in enumerate(images)]
    together = engine.generate(requests, SamplingConfig(temperature=0.0, max_tokens=4))
    engine.batch_size = 1
    alone = engine.generate(requests, SamplingConfig(temperature=0.0, max_tokens=4))
    assert all(r and r[0].completion_tokens > 0 for r in together)
    assert [r[0].text for r in together] == [r[0].text for r in alone]


@pytest.mark.slow
@pytest.mark.parametrize("family", LAYER_TYPE_FAMILIES)
def test_layer_type_families_train_save_reload_and_generate(tiny_model_dir, data, tmp_path, family):
    """Gemma 3 (packed: sliding windows, bidirectional images) and Qwen3.5 (plain: linear attention) on
    micro-batches mixing image and text-only pairs, with a chat-template option: online and precomputed references
    give the same losses, the saved model passes the post-save check (reload, generate) and answers through the
    HF engine."""
    from mmpr.engines import Completion, Request, make_engine
    from mmpr.schemas import SamplingConfig
    from mmpr.testing import tiny_images

    kw = dict(limit=10, max_steps=2, per_device_batch_size=5, chat_template_options={"enable_thinking": False})
    online = Trainer(_cfg(tiny_model_dir(family), data, tmp_path / "online", reference="online", **kw),
                     progress=False)
    result = online.train()
    assert online.logps.mode == ("plain" if family == "qwen3_5" else "packed"), online.logps.reason
    Trainer(_cfg(tiny_model_dir(family), data, tmp_path / "pre", reference="precomputed", **kw),
            progress=False).train()
    for (_, a), (_, b) in zip(_losses(tmp_path / "online"), _losses(tmp_path / "pre"), strict=True):
        assert a == pytest.approx(b, rel=1e-4)
    image = tmp_path / "i.png"
    tiny_images(1, size=(64, 48))[0].save(image)
    engine = make_engine("transformers", str(result.final_dir), batch_size=2)
    answers = engine.generate([Request("a", "How many shapes?", (str(image),)), Request("b", "2 + 2?", ())],
                              SamplingConfig(temperature=0.0, max_tokens=4))
    assert all(isinstance(r[0], Completion) and r[0].completion_tokens > 0 for r in answers)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "glm4v", "glm4v_moe", "kimi_k25"])
def test_the_other_families_train_with_the_same_losses_under_either_reference_and_save_a_checked_model(
        family, tiny_model_dir, tmp_path, capsys):
    """The families no test above trains (windowed and DeepStack towers, GLM's partial rotary and experts, Kimi's
    latent attention and experts) on micro-batches mixing image shapes with text-only pairs: the online and the
    precomputed reference give the same losses, and the saved model passes the post-save check (reload and
    generate)."""
    import math

    data, _ = write_mixed_shape_pairs(tmp_path / "pairs", 8)
    kw = dict(per_device_batch_size=4, max_steps=2, max_length=1024)
    Trainer(_cfg(tiny_model_dir(family), data, tmp_path / "online", reference="online", **kw)).train()
    assert "saved model checked" in capsys.readouterr().out
    Trainer(_cfg(tiny_model_dir(family), data, tmp_path / "pre", reference="precomputed", **kw),
            progress=False).train()
    online, pre = _losses(tmp_path / "online"), _losses(tmp_path / "pre")
    assert len(online) == 2 and all(math.isfinite(loss) for _, loss in online)
    for (_, a), (_, b) in zip(online, pre, strict=True):
        assert a == pytest.approx(b, rel=1e-4)
