"""MPO training speed and memory: TRL's DPOTrainer vs mpo_train on the same tiny VLM, pairs and loss.

Both train a Qwen2-VL (random weights, fp32, CPU) with loss = 0.8 sigmoid + 0.2 bco_pair + 1.0 sft, beta 0.1,
an online reference model, at 1, 2, 4 and 8 pairs per micro-batch, on pairs of one of two shapes:

- ``toy``: a 392x308 image (154 image tokens), 20-40-word responses;
- ``mmpr``: MMPR's proportions (paper: question ~80 tokens, chosen ~300, rejected ~350, images of 1,000+
  tokens): an 896x896 image (1,024 image tokens), an 80-token question, 300- and 350-token responses.

``--vocab`` resizes the tiny model's embedding (tied to its LM head) to a real vocabulary (92,544 InternLM2,
151,936 Qwen2/2.5/3-VL, 262,144 Gemma 3/4; 0 keeps the tokenizer's ~2,000): the tokens stay the same, every
softmax runs over the whole vocabulary. TRL 1.16's DPOTrainer always scores tokens through its fused LM head
(``add_fused_lm_head``); the path it took is printed (on CPU it scores every position, prompt included, since
its compact response-only mode needs Triton).

Each run is a fresh process, so its peak RSS is its own. Reported per shape, vocabulary and micro-batch size:
pairs/s over the steps after warm-up (median of per-step rates), peak memory, the ratios to TRL; mpo_train with
precomputed reference log-probs (training steps only), and the speed of its reference pass itself (pairs/s).
Also the peak above the model state, the part a trainer decides: the peak less the fp32 weights, gradients and
Adam's two moments of the policy and the reference's weights (20 bytes per parameter; 16 with a precomputed
reference). At this tiny model's hidden size of 128 the embedding is almost every parameter at a real
vocabulary (97 % at 262,144 tokens, against ~10 % in a 2B VLM), so the state alone grows 25-fold from ~2,000 to
262,144 tokens and the whole peak with it, for TRL and mpo_train alike; the last line of a run with vocabulary 0
and a real one gives the growth of both.

    .venv/bin/python benchmarks/train_vs_trl.py --shape toy --batches 4      # a minute or two on 2 cores
    .venv/bin/python benchmarks/train_vs_trl.py --shape toy mmpr             # the README's first table
    .venv/bin/python benchmarks/train_vs_trl.py --shape mmpr --vocab 0 151936 262144 --batches 4 \
        --steps 4                                                             # the real-vocabulary table
    .venv/bin/python benchmarks/train_vs_trl.py --shape mmpr --vocab 0 262144 --batches 1,2,4,8 \
        --trl-batches 1,4,8 --steps 6                                         # per-pair cost, 1 to 8 pairs

The last lines of a run give the growth from the native vocabulary and, per vocabulary, pairs/s and the peak
added by each added pair across the micro-batch sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP = 2
SHAPES = {
    # image size, LM tokens per image (upper bound), question / chosen / rejected lengths
    "toy": {"image": (392, 308), "max_image_tokens": 256, "question": None, "chosen": None, "rejected": None,
            "max_length": 1024},
    "mmpr": {"image": (896, 896), "max_image_tokens": 1024, "question": 80, "chosen": 300, "rejected": 350,
             "max_length": 2048},
}
WORDS = ("the red circle is left of the blue square so we count each shape once and add them then check the "
         "total against the figure because two of the shapes overlap").split()


def _text(rng: random.Random, tokenizer, tokens: int) -> str:
    """Random words from WORDS, about ``tokens`` tokens long under ``tokenizer``."""
    words, count = [], 0
    while count < tokens:
        word = rng.choice(WORDS)
        count += len(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
        words.append(word)
    return " ".join(words)


def make_inputs(root: Path, n_pairs: int, shape: str, vocab: int = 0) -> dict:
    """A tiny Qwen2-VL (its embedding resized to ``vocab`` tokens unless 0) and an mmpr dataset of ``n_pairs``
    pairs of ``shape``, exported for TRL as well (same pairs, same images). Returns the measured token counts of
    the first pair."""
    from transformers import AutoProcessor

    from mmpr.dataset_writer import SubsetInput, write_dataset
    from mmpr.export import export
    from mmpr.schemas import PreferencePair
    from mmpr.testing import tiny_images, tiny_vlm
    from mpo_train.data import PairEncoder

    spec = SHAPES[shape]
    model = tiny_vlm(root / "model", "qwen2_vl", hidden=128, layers=4, max_image_tokens=spec["max_image_tokens"])
    if vocab:
        resize_vocabulary(model, vocab)
    tokenizer = AutoProcessor.from_pretrained(model).tokenizer
    rng = random.Random(0)
    (root / "images").mkdir()
    paths = []
    for i, img in enumerate(tiny_images(16, size=spec["image"])):
        img.save(root / "images" / f"{i}.png")
        paths.append(str(root / "images" / f"{i}.png"))
    pairs = []
    for i in range(n_pairs):
        k = rng.randrange(10)
        if spec["question"] is None:
            question = f"How many shapes are in the figure? ({i})"
            chosen = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40)))
            rejected = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40)))
        else:
            question = f"({i}) " + _text(rng, tokenizer, spec["question"]) + "? How many shapes are there?"
            chosen = _text(rng, tokenizer, spec["chosen"])
            rejected = _text(rng, tokenizer, spec["rejected"])
        pairs.append(PreferencePair(id=f"p{i}", subset="bench", question=question, images=[paths[i % len(paths)]],
                                    chosen=chosen + f". Final answer: {k}", rejected=rejected + f". Final answer: "
                                    f"{k + 1}", kind="correctness", source="bench"))
    write_dataset(root / "mmpr", [SubsetInput("bench", pairs)], name="bench")
    export(root / "mmpr", "trl", root / "trl", progress=False)
    from PIL import Image

    encoder = PairEncoder(AutoProcessor.from_pretrained(model), max_length=spec["max_length"])
    first = encoder.encode(0, {"question": pairs[0].question, "images": [Image.open(paths[0])],
                               "chosen": pairs[0].chosen, "rejected": pairs[0].rejected})
    return {"prompt": len(first.prompt), "chosen": len(first.chosen), "rejected": len(first.rejected),
            "parameters": parameter_count(root / "model")}


def parameter_count(folder: Path) -> int:
    """Parameters of the saved model at ``folder`` (read from its safetensors headers)."""
    from safetensors import safe_open

    total = 0
    for shard in folder.glob("*.safetensors"):
        with safe_open(shard, "pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return total


def resize_vocabulary(folder: Path, vocab: int) -> None:
    """Give the saved model at ``folder`` a ``vocab``-token embedding and LM head (random new rows)."""
    import torch
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype="float32")
    model.resize_token_embeddings(vocab, mean_resizing=False)
    model.save_pretrained(folder)


def trl_path(trainer) -> str:
    """How TRL scored the tokens: its fused LM head (response positions only where Triton runs, else every
    position) or full logits."""
    if "forward" not in vars(trainer.model):  # add_fused_lm_head sets the instance's forward
        return "full logits"
    from trl.trainer.utils import _use_triton

    if _use_triton(next(trainer.model.parameters()).device):
        return "fused LM head, response positions"
    return "fused LM head, every position (no Triton here)"


def run_trl(root: Path, steps: int, batch: int) -> tuple[list[float], str]:
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
                     loss_weights=[0.8, 0.2, 1.0], beta=0.1, per_device_train_batch_size=batch, max_steps=steps,
                     learning_rate=1e-5, lr_scheduler_type="constant", warmup_steps=0, logging_steps=1000,
                     save_strategy="no", report_to=[], bf16=False, use_cpu=True, gradient_checkpointing=False,
                     dataloader_num_workers=0, max_length=None, seed=0)
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, processing_class=processor,
                         train_dataset=load_dataset(str(root / "trl"), split="train"), callbacks=[Clock()])
    stamps.append(time.perf_counter())
    trainer.train()
    return stamps, trl_path(trainer)


def run_ours(root: Path, steps: int, batch: int, reference: str, max_length: int) -> tuple[list[float], float | None]:
    """Seconds per step, and the reference pass's pairs/s (precomputed reference only)."""
    from mpo_train.config import TrainConfig
    from mpo_train.reference import PrecomputedReference
    from mpo_train.trainer import Trainer

    timed: dict[str, float] = {}
    real = PrecomputedReference.precompute

    def precompute_timed(self, job, accelerator, say):
        started = time.perf_counter()
        real(self, job, accelerator, say)
        timed["seconds"], timed["pairs"] = time.perf_counter() - started, len(self.table)

    PrecomputedReference.precompute = precompute_timed
    out = root / f"ours-{reference}-{batch}"
    cfg = TrainConfig(model=str(root / "model"), data=[str(root / "mmpr")], output_dir=out, precision="fp32",
                      gradient_checkpointing=False, num_workers=0, per_device_batch_size=batch, max_steps=steps,
                      learning_rate=1e-5, lr_scheduler="constant", warmup_ratio=0.0, reference=reference,
                      max_length=max_length, save_steps=None, seed=0, probe_prompts=0)
    Trainer(cfg, progress=False).train()
    rates = [json.loads(line)["pairs_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    reference_rate = timed["pairs"] / timed["seconds"] if timed else None
    return [batch / r for r in rates], reference_rate


def measure(kind: str, root: Path, steps: int, batch: int, max_length: int) -> None:
    reference_rate, path = None, "mpo_train chunked LM head"
    if kind == "trl":
        stamps, path = run_trl(root, steps, batch)
        seconds = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    else:
        seconds, reference_rate = run_ours(root, steps, batch, "precomputed" if kind == "ours-precomputed"
                                           else "online", max_length)
    rate = batch / statistics.median(seconds[WARMUP:])
    print(json.dumps({"kind": kind, "path": path, "pairs_per_s": rate, "reference_pairs_per_s": reference_rate,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run(kind: str, root: str, steps: int, batch: int, max_length: int, env: dict) -> dict:
    run = subprocess.run([sys.executable, __file__, "--measure", kind, root, str(steps), str(batch),
                          str(max_length)], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{kind} (batch {batch}) failed:\n{run.stderr[-4000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"<!-- batch {batch}: {json.dumps(result)} -->", flush=True)  # kept if a later run is cut short
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", nargs="+", choices=sorted(SHAPES), default=["toy"])
    parser.add_argument("--batches", default="1,2,4,8", help="pairs per micro-batch, comma-separated")
    parser.add_argument("--vocab", nargs="+", type=int, default=[0], help="vocabulary sizes to resize the model's "
                        "embedding to (0: the tokenizer's own)")
    parser.add_argument("--trl-batches", help="run TRL only at these micro-batch sizes (default: all of --batches)")
    parser.add_argument("--steps", type=int, default=6, help=f"steps per run, the first {WARMUP} not measured "
                        "(the median of the rest)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--measure", nargs=5, metavar=("KIND", "ROOT", "STEPS", "BATCH", "MAX_LENGTH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, root, steps, batch, max_length = args.measure
        measure(kind, Path(root), int(steps), int(batch), int(max_length))
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    batches = [int(b) for b in args.batches.split(",")]
    trl_batches = [int(b) for b in args.trl_batches.split(",")] if args.trl_batches else batches
    results = []
    print("| shape | vocabulary | pairs / micro-batch | TRL pairs/s | online: pairs/s (vs TRL) | precomputed: pairs/s "
          "(vs TRL) | peak GB: TRL / online / precomputed | peak online vs TRL | above model state GB: TRL / online / "
          "precomputed | reference pass pairs/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shape:
        for vocab in args.vocab:
            with tempfile.TemporaryDirectory() as tmp:
                tokens = make_inputs(Path(tmp), max(batches) * args.steps, shape, vocab)
                print(f"<!-- {shape}, vocabulary {vocab or 'native'}: {tokens} tokens (prompt with image / chosen / "
                      "rejected) -->", flush=True)
                for batch in batches:
                    kinds = ("trl", "ours", "ours-precomputed")[batch not in trl_batches:]
                    row = {kind: _run(kind, tmp, args.steps, batch, SHAPES[shape]["max_length"], env)
                           for kind in kinds}
                    print(_row(shape, vocab, batch, row, tokens["parameters"]), flush=True)
                    results.append({"shape": shape, "vocab": vocab, "batch": batch, "tokens": tokens, **row})
                    if args.json:
                        args.json.write_text(json.dumps(results, indent=1))
    paths = sorted({r["trl"]["path"] for r in results if "trl" in r})
    print(f"TRL's path: {'; '.join(paths) or 'not run'}")
    for line in growth(results) + per_pair(results) + memory_model(results):
        print(line)


def state_bytes_per_parameter(kind: str) -> int:
    """fp32 weights, gradients and Adam's two moments of the policy (16 bytes), and the reference's weights (4)
    unless its log-probs were precomputed."""
    return 16 if kind == "ours-precomputed" else 20


def above_state_gb(kind: str, result: dict, parameters: int) -> float:
    """The peak less the model state (:func:`state_bytes_per_parameter`)."""
    return result["peak_rss_mb"] / 1024 - parameters * state_bytes_per_parameter(kind) / 2**30


def growth(results: list[dict]) -> list[str]:
    """Per shape and micro-batch: how much each peak grows from the native vocabulary to each real one, whole
    and above the model state."""
    lines = []
    native = {(r["shape"], r["batch"]): r for r in results if r["vocab"] == 0}
    for r in results:
        base = native.get((r["shape"], r["batch"]))
        if not r["vocab"] or base is None:
            continue
        parts = []
        for kind in ("trl", "ours", "ours-precomputed"):
            if kind in r and kind in base:
                whole = r[kind]["peak_rss_mb"] / base[kind]["peak_rss_mb"] - 1
                above = (above_state_gb(kind, r[kind], r["tokens"]["parameters"])
                         / above_state_gb(kind, base[kind], base["tokens"]["parameters"]) - 1)
                parts.append(f"{kind} {whole:+.0%} ({above:+.0%} above the model state)")
        lines.append(f"{r['shape']}, {r['batch']} pairs, vocabulary native -> {r['vocab']:,}: peak " + ", ".join(parts))
    return lines


def per_pair(results: list[dict]) -> list[str]:
    """Per shape, vocabulary and trainer, over the micro-batch sizes run: pairs/s, and the peak added by each
    added pair (flat per-pair cost: steady pairs/s, the same GB per pair)."""
    lines = []
    for shape, vocab in dict.fromkeys((r["shape"], r["vocab"]) for r in results):
        runs = sorted((r for r in results if (r["shape"], r["vocab"]) == (shape, vocab)), key=lambda r: r["batch"])
        for kind in ("trl", "ours", "ours-precomputed"):
            have = [r for r in runs if kind in r]
            if len(have) < 2:
                continue
            rates = ", ".join(f"{r['batch']}: {r[kind]['pairs_per_s']:.3f}" for r in have)
            added = ", ".join(
                f"{(b[kind]['peak_rss_mb'] - a[kind]['peak_rss_mb']) / 1024 / (b['batch'] - a['batch']):+.2f}"
                for a, b in zip(have, have[1:], strict=False))
            lines.append(f"{shape}, vocabulary {vocab or 'native'}, {kind}: pairs/s by pairs per micro-batch {rates}; "
                         f"peak GB per added pair {added}")
    return lines


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares intercept and slope of (pairs, GB) points."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


def memory_model(results: list[dict]) -> list[str]:
    """The README's memory model, peak = M0 + state(V) + K(V) + B a(P + C + R), checked against the measured
    peaks: M0 and a are fitted on the native-vocabulary runs (two micro-batch sizes or more), then each real
    vocabulary's peak is predicted from them, the state's growth (20 bytes per added parameter online, 16
    precomputed; exact, from the parameter counts) and the head's chunk workspace K (0 up to six chunks of
    float32 logits: the recomputed chunk, its softmax and their gradient, forward's last chunk). A measured peak
    outside the predicted range is printed with how far outside it is."""
    from mpo_train.logprobs import CHUNK_BYTES

    workspace = 6 * CHUNK_BYTES / 2**30
    lines = []
    for shape in dict.fromkeys(r["shape"] for r in results):
        native = sorted((r for r in results if r["shape"] == shape and r["vocab"] == 0), key=lambda r: r["batch"])
        for kind in ("ours", "ours-precomputed"):
            points = [(r["batch"], r[kind]["peak_rss_mb"] / 1024) for r in native if kind in r]
            if len(points) < 2:
                continue
            m0, a = _fit(points)
            lines.append(f"{shape}, {kind}: memory model fitted on the native vocabulary: M0 + state {m0:.2f} GB, "
                         f"a = {a:.3f} GB per pair")
            for r in results:
                if r["shape"] != shape or not r["vocab"] or kind not in r:
                    continue
                added = r["tokens"]["parameters"] - native[0]["tokens"]["parameters"]
                state = added * state_bytes_per_parameter(kind) / 2**30
                low = m0 + a * r["batch"] + state
                measured = r[kind]["peak_rss_mb"] / 1024
                off = min(0.0, measured - low) + max(0.0, measured - low - workspace)
                verdict = "inside" if abs(off) < 0.005 else f"{off:+.2f} GB outside"
                lines.append(f"  vocabulary {r['vocab']:,}, {r['batch']} pairs / micro-batch: predicted {low:.2f}-"
                             f"{low + workspace:.2f} GB (state +{state:.2f}, K <= {workspace:.2f}), measured "
                             f"{measured:.2f}: {verdict}")
    return lines


def _row(shape: str, vocab: int, batch: int, row: dict, parameters: int) -> str:
    ours, pre, trl = row["ours"], row["ours-precomputed"], row.get("trl")
    gb = " / ".join(f"{r['peak_rss_mb'] / 1024:.2f}" if r else "-" for r in (trl, ours, pre))
    above = " / ".join(f"{above_state_gb(k, row[k], parameters):.2f}" if k in row else "-"
                       for k in ("trl", "ours", "ours-precomputed"))

    def vs(r: dict) -> str:
        return f"{r['pairs_per_s']:.3f}" + (f" ({r['pairs_per_s'] / trl['pairs_per_s']:.2f}x)" if trl else "")

    trl_rate = f"{trl['pairs_per_s']:.3f}" if trl else "-"
    memory = f"{ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f}x" if trl else "-"
    return (f"| {shape} | {vocab or 'native'} | {batch} | {trl_rate} | {vs(ours)} | {vs(pre)} | {gb} | {memory} "
            f"| {above} | {pre['reference_pairs_per_s']:.3f} |")


if __name__ == "__main__":
    main()
