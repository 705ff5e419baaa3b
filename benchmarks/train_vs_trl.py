"""MPO training speed and memory: TRL's DPOTrainer vs mpo_train on the same tiny VLM, pairs and loss.

Both train a Qwen2-VL (random weights, fp32, CPU) with loss = 0.8 sigmoid + 0.2 bco_pair + 1.0 sft, beta 0.1,
4 pairs per step, an online reference model, on image-heavy pairs (prompt tokens >= 2x response tokens, as in
MMPR). Each run is a fresh process, so its peak RSS is its own. Reported: pairs/s over the steps after warm-up
(median of per-step rates), peak memory, and the ratios; plus mpo_train with precomputed reference log-probs.

    .venv/bin/python benchmarks/train_vs_trl.py                 # ~5 minutes on 2 cores
    .venv/bin/python benchmarks/train_vs_trl.py --steps 12 --pairs 48
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 4
WARMUP = 3


def make_inputs(root: Path, n_pairs: int) -> tuple[Path, Path]:
    """A tiny Qwen2-VL that takes ~150 tokens per image, and an mmpr dataset of ``n_pairs`` pairs, exported for
    TRL as well (same pairs, same images)."""
    from mmpr.dataset_writer import SubsetInput, write_dataset
    from mmpr.export import export
    from mmpr.schemas import PreferencePair
    from mmpr.testing import tiny_images, tiny_vlm

    model = tiny_vlm(root / "model", "qwen2_vl", hidden=128, layers=4, max_image_tokens=256)
    rng = random.Random(0)
    (root / "images").mkdir()
    paths = []
    for i, img in enumerate(tiny_images(16, size=(392, 308))):  # 14 x 11 merged patches = 154 image tokens
        img.save(root / "images" / f"{i}.png")
        paths.append(str(root / "images" / f"{i}.png"))
    words = "the red circle is left of the blue square so we count each shape once and add them".split()
    pairs = []
    for i in range(n_pairs):
        k = rng.randrange(10)
        chosen = " ".join(rng.choice(words) for _ in range(rng.randint(20, 40))) + f". Final answer: {k}"
        rejected = " ".join(rng.choice(words) for _ in range(rng.randint(20, 40))) + f". Final answer: {k + 1}"
        pairs.append(PreferencePair(id=f"p{i}", subset="bench", question=f"How many shapes are in the figure? ({i})",
                                    images=[paths[i % len(paths)]], chosen=chosen, rejected=rejected,
                                    kind="correctness", source="bench"))
    write_dataset(root / "mmpr", [SubsetInput("bench", pairs)], name="bench")
    export(root / "mmpr", "trl", root / "trl", progress=False)
    return model, root


def run_trl(root: Path, steps: int) -> list[float]:
    from datasets import load_dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    model = AutoModelForImageTextToText.from_pretrained(root / "model", dtype="float32")
    ref = AutoModelForImageTextToText.from_pretrained(root / "model", dtype="float32")
    processor = AutoProcessor.from_pretrained(root / "model")
    args = DPOConfig(output_dir=str(root / "trl-out"), loss_type=["sigmoid", "bco_pair", "sft"],
                     loss_weights=[0.8, 0.2, 1.0], beta=0.1, per_device_train_batch_size=BATCH, max_steps=steps,
                     learning_rate=1e-5, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1000,
                     save_strategy="no", report_to=[], bf16=False, use_cpu=True, gradient_checkpointing=False,
                     dataloader_num_workers=0, max_length=None, seed=0)
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, processing_class=processor,
                         train_dataset=load_dataset(str(root / "trl"), split="train"), callbacks=[Clock()])
    stamps.append(time.perf_counter())
    trainer.train()
    return stamps


def run_ours(root: Path, steps: int, reference: str) -> list[float]:
    from mpo_train.config import TrainConfig
    from mpo_train.trainer import Trainer

    out = root / f"ours-{reference}"
    cfg = TrainConfig(model=str(root / "model"), data=[str(root / "mmpr")], output_dir=out, precision="fp32",
                      gradient_checkpointing=False, num_workers=0, per_device_batch_size=BATCH, max_steps=steps,
                      learning_rate=1e-5, lr_scheduler="constant", warmup_ratio=0.0, reference=reference,
                      max_length=1024, save_steps=None, seed=0)
    Trainer(cfg, progress=False).train()
    rates = [json.loads(line)["pairs_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [BATCH / r for r in rates]


def measure(kind: str, root: Path, steps: int) -> None:
    if kind == "trl":
        stamps = run_trl(root, steps)
        seconds = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    else:
        seconds = run_ours(root, steps, "precomputed" if kind == "ours-precomputed" else "online")
    rate = BATCH / statistics.median(seconds[WARMUP:])
    print(json.dumps({"kind": kind, "pairs_per_s": rate, "peak_rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "ROOT", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, root, steps = args.measure
        measure(kind, Path(root), int(steps))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_inputs(Path(tmp), args.pairs)
        for kind in ("trl", "ours", "ours-precomputed"):
            run = subprocess.run([sys.executable, __file__, "--measure", kind, tmp, str(args.steps)],
                                 capture_output=True, text=True, env=env)
            if run.returncode != 0:
                raise SystemExit(f"{kind} failed:\n{run.stderr[-4000:]}")
            results[kind] = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"{'trainer':<34}{'pairs/s':>9}{'peak RSS MB':>13}")
    names = {"trl": "TRL DPOTrainer (online reference)", "ours": "mpo_train (online reference)",
             "ours-precomputed": "mpo_train (precomputed reference)"}
    for kind, r in results.items():
        print(f"{names[kind]:<34}{r['pairs_per_s']:>9.2f}{r['peak_rss_mb']:>13.0f}")
    trl = results["trl"]
    for kind in ("ours", "ours-precomputed"):
        r = results[kind]
        print(f"{names[kind]} vs TRL: {r['pairs_per_s'] / trl['pairs_per_s']:.2f}x pairs/s, "
              f"{r['peak_rss_mb'] / trl['peak_rss_mb']:.2f}x peak memory")


if __name__ == "__main__":
    main()
