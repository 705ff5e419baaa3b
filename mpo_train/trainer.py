"""The training loop on accelerate: one process per device, DDP / DeepSpeed / FSDP from the accelerate config.

It reads top to bottom: data -> models -> reference -> optimizer -> (resume) -> loop -> final save. Where it
departs from the paper's reference run (facts, section 1): the BCO delta is checkpointed (the reference code
resets it on resume); the image is encoded once per pair and the prompt computed once (packed forward); the
reference log-probs can be precomputed for image data; the model is any processor-based VLM in transformers.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from mmpr.io import atomic_write_text
from mmpr.testing import resolve_model
from mpo_train.config import TrainConfig
from mpo_train.data import PairDataset, PairEncoder, Prepared, collate, open_pairs, prepare
from mpo_train.forward import SequenceLogps, dummy_image_inputs, unwrap, vision_keepalive
from mpo_train.losses import RewardMean, mpo_loss
from mpo_train.metrics import MetricsLog
from mpo_train.reference import (
    CachedReference,
    LoraBaseReference,
    NoReference,
    OnlineReference,
    model_identity,
    precompute,
)
from mpo_train.saving import save_full_model

log = logging.getLogger("mpo_train")

VISION_PARTS = ("visual.", "vision_tower.", "vision_model.")
PROJECTOR_PARTS = ("multi_modal_projector.", "visual.merger.", "mlp1.", "connector.")
STATE_FILE = "trainer_state.json"


@dataclass
class TrainResult:
    steps: int
    final_dir: Path
    metrics: dict[str, float]
    eval_metrics: dict[str, float]


def freeze(model, *, vision: bool, projector: bool) -> int:
    """Freeze the vision tower and/or the projector by parameter name; returns how many tensors were frozen."""
    frozen = 0
    for name, param in model.named_parameters():
        is_projector = any(part in name for part in PROJECTOR_PARTS)
        is_vision = not is_projector and any(part in name for part in VISION_PARTS)
        if (vision and is_vision) or (projector and is_projector):
            param.requires_grad_(False)
            frozen += 1
    return frozen


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint whose state file was written (the state file is written last)."""
    done = sorted(p.parent for p in (output_dir / "checkpoints").glob(f"step-*/{STATE_FILE}"))
    return done[-1] if done else None


class Trainer:
    def __init__(self, cfg: TrainConfig, *, progress: bool = True):
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration, set_seed

        self.cfg, self.progress = cfg, progress
        precision = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[cfg.precision]
        self.accelerator = Accelerator(
            gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=precision,
            log_with=cfg.report_to or None, project_dir=str(cfg.output_dir),
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
        set_seed(cfg.seed)
        self.output_dir = Path(cfg.output_dir)
        self.cache_dir = self.output_dir / "cache"
        self.logps = SequenceLogps(cfg.forward)

    # ------------------------------------------------------------------------------------------------- setup
    def _load_model(self, path: str, *, trainable: bool):
        from transformers import AutoModelForImageTextToText

        dtype = torch.float32 if trainable else {"bf16": torch.bfloat16, "fp16": torch.float16,
                                                   "fp32": torch.float32}[self.cfg.precision]
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype,
                                                            attn_implementation=self.cfg.attn_implementation)
        model.config.use_cache = False
        if not trainable:
            model.eval().requires_grad_(False)
        return model

    def _data(self, processor):
        cfg, acc = self.cfg, self.accelerator
        from accelerate.utils import gather_object

        with acc.main_process_first():
            data = open_pairs(cfg.data, subsets=cfg.subsets, limit=cfg.limit,
                              allow_sft=cfg.loss_weights[0] == cfg.loss_weights[1] == 0)
        encoder = PairEncoder(processor, max_length=cfg.max_length, truncate_responses=cfg.truncate_responses)
        prepared = prepare(data, encoder, self.cache_dir, rank=acc.process_index, world=acc.num_processes,
                           gather=gather_object if acc.num_processes > 1 else None, progress=self.progress)
        if not prepared.kept:
            raise ValueError(f"no usable pairs: {prepared.describe()}; first problems: {prepared.examples[:3]}")
        kept = list(prepared.kept)
        random.Random(cfg.seed).shuffle(kept)
        n_eval = int(round(len(kept) * cfg.eval_fraction))
        eval_idx, train_idx = sorted(kept[:n_eval]), sorted(kept[n_eval:])
        return data, encoder, prepared, train_idx, eval_idx

    def _policy(self, path: str):
        cfg = self.cfg
        model = self._load_model(path, trainable=True)
        frozen = freeze(model, vision=cfg.freeze_vision_tower, projector=cfg.freeze_projector)
        if frozen:
            log.info("froze %d parameter tensors (vision tower: %s, projector: %s)", frozen, cfg.freeze_vision_tower,
                     cfg.freeze_projector)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.lora is not None:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                                     lora_dropout=cfg.lora.dropout,
                                                     target_modules=cfg.lora.target_modules))
        return model

    def _reference(self, path: str, policy, data, encoder, train_idx, eval_idx):
        """Returns (reference callable, train ref tensor or None, eval ref tensor or None)."""
        cfg, acc = self.cfg, self.accelerator
        if cfg.loss_weights[0] == cfg.loss_weights[1] == 0:
            return NoReference(acc.device), None, None
        if cfg.reference == "lora_base":
            return LoraBaseReference(policy, self.logps), None, None
        ref_model = self._load_model(path, trainable=False).to(acc.device)
        if cfg.reference == "online":
            return OnlineReference(ref_model, self.logps), None, None
        identity = model_identity(path, ref_model.config)
        tables = []
        for name, indices in (("train", train_idx), ("eval", eval_idx)):
            if not indices:
                tables.append(None)
                continue
            key = cache_key(data._fingerprint, indices, encoder.fingerprint(), identity, cfg.forward)
            tables.append(precompute(ref_model, PairDataset(data, encoder, indices), batch_size=max(
                cfg.per_device_batch_size, 1), cache=self.cache_dir / f"reference-{name}-{key}.pt",
                logps=self.logps, accelerator=acc, progress=self.progress))
        del ref_model
        gc.collect()
        return CachedReference(acc.device), tables[0], tables[1]

    # -------------------------------------------------------------------------------------------------- train
    def train(self) -> TrainResult:
        from torch.utils.data import DataLoader
        from transformers import AutoProcessor, get_scheduler

        cfg, acc = self.cfg, self.accelerator
        path = resolve_model(cfg.model)
        processor = AutoProcessor.from_pretrained(path)
        data, encoder, prepared, train_idx, eval_idx = self._data(processor)
        self._say(f"data: {prepared.describe()}; {len(train_idx)} train, {len(eval_idx)} held out")
        for example in prepared.examples[:5]:
            self._say(f"  skipped: {example}")
        policy = self._policy(path)
        trainable, total = trainable_parameters(policy)
        self._say(f"model: {path} ({total:,} parameters, {trainable:,} trained); reference: {cfg.reference}")
        reference, train_ref, eval_ref = self._reference(path, policy, data, encoder, train_idx, eval_idx)

        generator = torch.Generator().manual_seed(cfg.seed)
        train_loader = DataLoader(PairDataset(data, encoder, train_idx, train_ref), shuffle=True,
                                  batch_size=cfg.per_device_batch_size, collate_fn=collate,
                                  num_workers=cfg.num_workers, generator=generator)
        eval_loader = DataLoader(PairDataset(data, encoder, eval_idx, eval_ref), batch_size=cfg.per_device_batch_size,
                                 collate_fn=collate, num_workers=cfg.num_workers) if eval_idx else None
        optimizer = torch.optim.AdamW(_param_groups(policy, cfg.weight_decay), lr=cfg.learning_rate,
                                      betas=cfg.adam_betas, eps=cfg.adam_eps)
        steps_per_epoch = math.ceil(math.ceil(len(train_loader) / acc.num_processes) / cfg.gradient_accumulation_steps)
        total_steps = cfg.max_steps or steps_per_epoch * cfg.num_epochs
        scheduler = get_scheduler(cfg.lr_scheduler if cfg.lr_scheduler != "constant" else "constant_with_warmup",
                                  optimizer, num_warmup_steps=int(cfg.warmup_ratio * total_steps) * acc.num_processes,
                                  num_training_steps=total_steps * acc.num_processes)
        policy, optimizer, train_loader, scheduler = acc.prepare(policy, optimizer, train_loader, scheduler)
        if eval_loader is not None:
            eval_loader = acc.prepare(eval_loader)
        if isinstance(reference, OnlineReference):
            reference.model = acc.prepare_model(reference.model, evaluation_mode=True)
        elif isinstance(reference, LoraBaseReference):
            reference.policy = policy
        delta = RewardMean()
        acc.register_for_checkpointing(delta)
        # distributed runs: a rank whose micro-batch is text-only still runs the vision tower (see vision_keepalive)
        keepalive = dummy_image_inputs(processor) if acc.num_processes > 1 else None
        if cfg.report_to:
            # trackers take flat scalar hyperparameters
            hparams = {k: v if isinstance(v, int | float | str | bool) else json.dumps(v)
                       for k, v in cfg.model_dump(mode="json").items()}
            acc.init_trackers(cfg.run_name or self.output_dir.name, config=hparams)

        state = {"global_step": 0, "epoch": 0, "batches_in_epoch": 0}
        resume_from = latest_checkpoint(self.output_dir)
        if resume_from is not None:
            acc.load_state(str(resume_from))
            state = json.loads((resume_from / STATE_FILE).read_text())
            self._say(f"resumed from {resume_from} (step {state['global_step']}, delta {delta.value:.4f})")
        metrics_log = MetricsLog(self.output_dir / "metrics.jsonl", accelerator=acc, resume_step=state["global_step"])
        bar = self._bar(total_steps, state["global_step"])
        window: dict[str, list[float]] = defaultdict(list)
        tokens, pairs_seen, started = 0, 0, time.perf_counter()
        last: dict[str, float] = {}
        eval_metrics: dict[str, float] = {}
        policy.train()
        done = state["global_step"] >= total_steps
        for epoch in range(state["epoch"], cfg.num_epochs if not cfg.max_steps else 10**9):
            if done:
                break
            train_loader.set_epoch(epoch)
            skip = state["batches_in_epoch"] if epoch == state["epoch"] else 0
            loader = acc.skip_first_batches(train_loader, skip) if skip else train_loader
            state.update(epoch=epoch, batches_in_epoch=skip)
            for pairs in loader:
                with acc.accumulate(policy):
                    out = self.logps(policy, pairs)
                    ref_chosen, ref_rejected = reference(pairs)
                    loss, metrics = mpo_loss(out.chosen, out.rejected, ref_chosen, ref_rejected, out.chosen_nll,
                                             beta=cfg.beta, weights=cfg.loss_weights, delta=delta.value)
                    if keepalive is not None and not any(p.mm for p in pairs):
                        loss = loss + vision_keepalive(policy, keepalive)
                    acc.backward(loss)
                    metrics["delta"] = torch.tensor(delta.value)
                    delta.update(acc.reduce(metrics["reward_mean"].to(acc.device), "mean").item())
                    if acc.sync_gradients and cfg.max_grad_norm is not None:
                        metrics["grad_norm"] = torch.as_tensor(acc.clip_grad_norm_(policy.parameters(),
                                                                                   cfg.max_grad_norm))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                state["batches_in_epoch"] += 1
                tokens += out.tokens
                pairs_seen += len(pairs)
                for key, value in metrics.items():
                    window[key].append(float(value))
                if not acc.sync_gradients:
                    continue
                state["global_step"] += 1
                step = state["global_step"]
                elapsed = time.perf_counter() - started
                last = {k: sum(v) / len(v) for k, v in window.items() if k != "reward_mean"}
                last = {k: float(acc.reduce(torch.tensor(v, device=acc.device), "mean")) for k, v in last.items()}
                rates = acc.reduce(torch.tensor([tokens / elapsed, pairs_seen / elapsed], device=acc.device), "sum")
                last.update(lr=scheduler.get_last_lr()[0], epoch=epoch, tokens_per_s=float(rates[0]),
                            pairs_per_s=float(rates[1]))
                window.clear()
                tokens, pairs_seen, started = 0, 0, time.perf_counter()
                if step % cfg.logging_steps == 0 or step == total_steps:
                    metrics_log.write(step, last)
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.4f}", acc=f"{last['rewards_accuracy']:.2f}",
                                delta=f"{last['delta']:.3f}", refresh=False)
                if eval_loader is not None and cfg.eval_steps and step % cfg.eval_steps == 0:
                    eval_metrics = self.evaluate(policy, reference, eval_loader, delta.value)
                    metrics_log.write(step, eval_metrics)
                if cfg.save_steps and step % cfg.save_steps == 0 and step < total_steps:
                    self._checkpoint(state)
                if step >= total_steps:
                    done = True
                    break
            else:
                state.update(epoch=epoch + 1, batches_in_epoch=0)
        bar.close()
        if eval_loader is not None:
            eval_metrics = self.evaluate(policy, reference, eval_loader, delta.value)
            metrics_log.write(state["global_step"], eval_metrics)
        self._checkpoint(state)
        final_dir = self._save_final(policy, processor)
        if acc.is_main_process:
            metrics_log.plot(self.output_dir / "training_curves.png")
            self._write_card(final_dir, prepared, last, eval_metrics, state["global_step"])
        acc.end_training()
        return TrainResult(state["global_step"], final_dir, last, eval_metrics)

    @torch.no_grad()
    def evaluate(self, policy, reference, loader, delta: float) -> dict[str, float]:
        """Loss and reward statistics on the held-out pairs, with the current delta."""
        acc = self.accelerator
        policy.eval()
        sums: dict[str, float] = defaultdict(float)
        batches = 0
        for pairs in loader:
            out = self.logps(policy, pairs)
            ref_chosen, ref_rejected = reference(pairs)
            _, metrics = mpo_loss(out.chosen, out.rejected, ref_chosen, ref_rejected, out.chosen_nll,
                                  beta=self.cfg.beta, weights=self.cfg.loss_weights, delta=delta)
            for key in ("loss", "rewards_accuracy", "rewards_margin", "rewards_chosen", "rewards_rejected",
                        "loss_gen"):
                sums[key] += float(metrics[key])
            batches += 1
        policy.train()
        return {f"eval_{k}": float(acc.reduce(torch.tensor(v / max(batches, 1), device=acc.device), "mean"))
                for k, v in sums.items()}

    # ---------------------------------------------------------------------------------------------- saving
    def _checkpoint(self, state: dict) -> None:
        acc = self.accelerator
        folder = self.output_dir / "checkpoints" / f"step-{state['global_step']:07d}"
        if (folder / STATE_FILE).exists():
            return
        acc.save_state(str(folder))
        if acc.is_main_process:
            atomic_write_text(folder / STATE_FILE, json.dumps(state))
            done = sorted(p.parent for p in (self.output_dir / "checkpoints").glob(f"step-*/{STATE_FILE}"))
            for old in done[:-self.cfg.save_total_limit]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def _save_final(self, policy, processor) -> Path:
        """Full weights (gathered under ZeRO-3 / FSDP) that load with ``from_pretrained``; LoRA runs also keep
        the adapter."""
        acc = self.accelerator
        acc.wait_for_everyone()
        final = save_full_model(acc.unwrap_model(policy), processor, self.output_dir / "final",
                                state_dict=acc.get_state_dict(policy), is_main_process=acc.is_main_process,
                                save_function=acc.save, lora_merged=self.cfg.lora is not None and
                                self.cfg.lora.save_merged)
        acc.wait_for_everyone()
        return final

    def _write_card(self, final: Path, prepared: Prepared, last: dict, eval_metrics: dict, steps: int) -> None:
        from cards.render import render_model_card

        atomic_write_text(final / "README.md", render_model_card(self.cfg, steps=steps, metrics=last,
                                                                 eval_metrics=eval_metrics, data=prepared.describe(),
                                                                 forward=self.logps.reason or self.logps.mode))

    # ------------------------------------------------------------------------------------------------- misc
    def _bar(self, total: int, initial: int):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc="training", unit="step", dynamic_ncols=True,
                    disable=not self.progress or not self.accelerator.is_main_process)

    def _say(self, message: str) -> None:
        log.info(message)
        if self.accelerator.is_main_process and self.progress:
            print(message, flush=True)


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps([p if isinstance(p, list) else str(p) for p in parts]).encode()).hexdigest()[:20]


def trainable_parameters(model) -> tuple[int, int]:
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
