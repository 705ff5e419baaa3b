"""The training loop on accelerate: one process per device, DDP / DeepSpeed / FSDP from the accelerate config.

``Trainer.train`` reads top to bottom: set up (data -> models -> loaders -> optimizer -> accelerate -> resume ->
reference log-probs of the pairs the run will use), the loop (micro-step, then per optimizer step: metrics,
health trends, evaluation + generation probe, checkpoint), finish (final evaluation, save, check of the saved
model, curves, card). Where it
departs from the paper's reference run (arXiv 2411.10442): the BCO delta is checkpointed (the reference code
resets it on resume); the image is encoded once per pair and the prompt computed once (packed forward); the
reference log-probs can be precomputed for image data; the model is any processor-based VLM in transformers.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmpr.errors import NothingMade
from mmpr.images import set_max_pixels
from mmpr.io import atomic_write_text
from mmpr.loading import load_processor, load_vlm
from mmpr.model_ref import resolve_model
from mmpr.problems import ProblemLog
from mpo_train.config import TrainConfig
from mpo_train.data import PairDataset, PairEncoder, Prepared, collate, open_pairs, prepare
from mpo_train.forward import SequenceLogps, dummy_image_inputs, unwrap, vision_keepalive
from mpo_train.health import (
    TrendWatch,
    check_saved_model,
    generate_probe,
    probe_scores,
    saved_model_advice,
    zero_parameters,
)
from mpo_train.losses import RewardMean, mpo_loss
from mpo_train.metrics import MetricsLog
from mpo_train.reference import Reference, ScoringJob, choose_reference
from mpo_train.saving import save_full_model

log = logging.getLogger("mpo_train")

VISION_PARTS = ("visual.", "vision_tower.", "vision_model.")
PROJECTOR_PARTS = ("multi_modal_projector.", "visual.merger.", "mlp1.", "connector.")
STATE_FILE = "trainer_state.json"
SKIPPED_REPORT = "skipped.json"


@dataclass
class TrainResult:
    steps: int
    final_dir: Path
    metrics: dict[str, float]
    eval_metrics: dict[str, float]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Run:
    """What one training run holds, filled in by the setup steps of :meth:`Trainer.train`."""

    processor: Any
    data: Any
    encoder: PairEncoder
    prepared: Prepared
    train_idx: list[int]
    eval_idx: list[int]
    policy: Any
    reference: Reference
    watch: TrendWatch
    probe: list[tuple[str, list]]
    zero_at_start: set[str]
    train_set: PairDataset | None = None
    eval_set: PairDataset | None = None
    train_loader: Any = None
    eval_loader: Any = None
    optimizer: Any = None
    scheduler: Any = None
    total_steps: int = 0
    delta: RewardMean = field(default_factory=RewardMean)
    keepalive: dict | None = None
    metrics_log: MetricsLog | None = None
    state: dict = field(default_factory=lambda: {"global_step": 0, "epoch": 0, "batches_in_epoch": 0})
    last: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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
        self.logps = SequenceLogps(cfg.forward, say=self._say)

    # ------------------------------------------------------------------------------------------------- setup
    def _load_model(self, path: str, *, trainable: bool):
        dtype = torch.float32 if trainable else self._precision_dtype()
        model = load_vlm(path, dtype=dtype, attn_implementation=self.cfg.attn_implementation)
        model.config.use_cache = False
        if not trainable:
            model.eval().requires_grad_(False)
        return model

    def _precision_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.cfg.precision]

    def _data(self, processor):
        cfg, acc = self.cfg, self.accelerator
        from accelerate.utils import gather_object

        set_max_pixels(cfg.max_image_pixels)  # before any image is opened; DataLoader workers inherit it
        problems = ProblemLog()
        with acc.main_process_first():
            data = open_pairs(cfg.data, subsets=cfg.subsets, limit=cfg.limit, problems=problems,
                              allow_sft=cfg.sft_only)
        encoder = PairEncoder(processor, max_length=cfg.max_length, truncate_responses=cfg.truncate_responses,
                              template_options=cfg.chat_template_options)
        prepared = prepare(data, encoder, self.cache_dir, rank=acc.process_index, world=acc.num_processes,
                           gather=gather_object if acc.num_processes > 1 else None, progress=self.progress,
                           problems=problems)
        if acc.is_main_process:  # every skipped row, read or encoded, with its reason
            prepared.problems.write(self.output_dir / SKIPPED_REPORT)
        if not prepared.kept:
            raise NothingMade(f"no usable pairs: {prepared.describe()}; first problems: {prepared.examples[:3]}")
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

    def _reference(self, path: str, policy) -> Reference:
        """The run's reference (:func:`~mpo_train.reference.choose_reference`), with the frozen copy it needs."""
        kind, device = choose_reference(self.cfg), self.accelerator.device
        model = self._load_model(path, trainable=False).to(device) if kind.needs_model else None
        return kind(logps=self.logps, device=device, policy=policy, model=model, source=path)

    def _loaders(self, run: Run) -> None:
        from torch.utils.data import DataLoader

        cfg = self.cfg
        run.train_set = PairDataset(run.data, run.encoder, run.train_idx, run.reference.table)
        run.eval_set = PairDataset(run.data, run.encoder, run.eval_idx, run.reference.table)
        generator = torch.Generator().manual_seed(cfg.seed)
        run.train_loader = DataLoader(run.train_set, shuffle=True, batch_size=cfg.per_device_batch_size,
                                      collate_fn=collate, num_workers=cfg.num_workers, generator=generator)
        run.eval_loader = DataLoader(run.eval_set, batch_size=cfg.per_device_batch_size, collate_fn=collate,
                                     num_workers=cfg.num_workers) if run.eval_idx else None

    def _optimizer(self, run: Run) -> None:
        from transformers import get_scheduler

        cfg, acc = self.cfg, self.accelerator
        run.optimizer = torch.optim.AdamW(_param_groups(run.policy, cfg.weight_decay), lr=cfg.learning_rate,
                                          betas=cfg.adam_betas, eps=cfg.adam_eps)
        batches = math.ceil(len(run.train_loader) / acc.num_processes)
        run.total_steps = cfg.max_steps or math.ceil(batches / cfg.gradient_accumulation_steps) * cfg.num_epochs
        run.scheduler = get_scheduler(
            cfg.lr_scheduler if cfg.lr_scheduler != "constant" else "constant_with_warmup", run.optimizer,
            num_warmup_steps=int(cfg.warmup_ratio * run.total_steps) * acc.num_processes,
            num_training_steps=run.total_steps * acc.num_processes)

    def _prepare(self, run: Run) -> None:
        """Hand the model, optimizer, loaders and scheduler to accelerate (DDP / DeepSpeed / FSDP wrapping)."""
        acc = self.accelerator
        run.policy, run.optimizer, run.train_loader, run.scheduler = acc.prepare(
            run.policy, run.optimizer, run.train_loader, run.scheduler)
        if run.eval_loader is not None:
            run.eval_loader = acc.prepare(run.eval_loader)
        run.reference.prepare(acc, run.policy)
        acc.register_for_checkpointing(run.delta)

    def _resume(self, run: Run) -> None:
        resume_from = latest_checkpoint(self.output_dir)
        if resume_from is not None:
            self.accelerator.load_state(str(resume_from))
            run.state = json.loads((resume_from / STATE_FILE).read_text())
            self._say(f"resumed from {resume_from} (step {run.state['global_step']}, delta {run.delta.value:.4f})")

    def _positions_to_train(self, run: Run) -> list[int]:
        """Dataset positions of the micro-batches this rank will train on, from the resume point to the last step
        (the loader's seeded order, read from its batch sampler without loading any pair)."""
        accum = self.cfg.gradient_accumulation_steps
        remaining = run.total_steps - run.state["global_step"]
        epoch, skip = run.state["epoch"], run.state["batches_in_epoch"]
        used: set[int] = set()
        while remaining > 0:
            run.train_loader.set_epoch(epoch)
            batches = list(run.train_loader.batch_sampler)
            take = min(len(batches) - skip, remaining * accum)
            for batch in batches[skip:skip + take]:
                used.update(batch)
            if take >= len(batches):  # a whole epoch: every pair of this rank
                break
            remaining -= math.ceil(take / accum)
            epoch, skip = epoch + 1, 0
        return sorted(used)

    def _pairs_to_score(self, run: Run) -> PairDataset:
        """The pairs this rank's share of the run uses: its training micro-batches from the resume point on, and
        its held-out ones."""
        rows = {run.train_set.indices[p] for p in self._positions_to_train(run)}
        if run.eval_loader is not None:
            rows |= {run.eval_set.indices[i] for batch in run.eval_loader.batch_sampler for i in batch}
        return PairDataset(run.data, run.encoder, sorted(rows))

    def _precompute_reference(self, run: Run) -> None:
        """What the reference scores before the first step (see ``Reference.precompute``)."""
        cfg = self.cfg
        job = ScoringJob(pairs=lambda: self._pairs_to_score(run), cache_dir=self.cache_dir,
                         data_fingerprint=run.data._fingerprint, encoder_fingerprint=run.encoder.fingerprint(),
                         precision=cfg.precision, batch_size=cfg.per_device_batch_size, num_workers=cfg.num_workers,
                         progress=self.progress)
        run.reference.precompute(job, self.accelerator, self._say)

    def _setup(self) -> Run:
        """data -> models -> loaders -> optimizer -> accelerate -> resume -> reference log-probs."""
        cfg, acc = self.cfg, self.accelerator
        path = resolve_model(cfg.model)
        processor = load_processor(path)
        data, encoder, prepared, train_idx, eval_idx = self._data(processor)
        self._say(f"data: {prepared.describe()}; {len(train_idx)} train, {len(eval_idx)} held out")
        for example in prepared.examples:
            self._say(f"  skipped: {example}")
        if sum(prepared.skipped.values()) > len(prepared.examples):
            self._say(f"  ... every skipped row is listed in {self.output_dir / SKIPPED_REPORT}")
        policy = self._policy(path)
        self.logps.settle(policy)
        reference = self._reference(path, policy)
        trainable, total = trainable_parameters(policy)
        self._say(f"model: {path} ({total:,} parameters, {trainable:,} trained); reference: {reference.describe()}")
        run = Run(processor=processor, data=data, encoder=encoder, prepared=prepared, train_idx=train_idx,
                  eval_idx=eval_idx, policy=policy, reference=reference,
                  watch=TrendWatch(beta=cfg.beta), probe=self._probe_prompts(data, eval_idx),
                  zero_at_start=zero_parameters(policy))
        self._loaders(run)
        self._optimizer(run)
        self._prepare(run)
        # distributed runs: a rank whose micro-batch is text-only still runs the vision tower (see vision_keepalive)
        run.keepalive = dummy_image_inputs(processor) if acc.num_processes > 1 else None
        if cfg.report_to:
            # trackers take flat scalar hyperparameters
            hparams = {k: v if isinstance(v, int | float | str | bool) else json.dumps(v)
                       for k, v in cfg.model_dump(mode="json").items()}
            acc.init_trackers(cfg.run_name or self.output_dir.name, config=hparams)
        self._resume(run)
        self._precompute_reference(run)
        run.metrics_log = MetricsLog(self.output_dir / "metrics.jsonl", accelerator=acc,
                                     resume_step=run.state["global_step"])
        return run

    # -------------------------------------------------------------------------------------------------- train
    def train(self) -> TrainResult:
        """Set up, train to the last step, then evaluate, save and check the saved model."""
        run = self._setup()
        self._loop(run)
        return self._finish(run)

    def _loop(self, run: Run) -> None:
        cfg, acc, state = self.cfg, self.accelerator, run.state
        bar = self._bar(run.total_steps, state["global_step"])
        window: dict[str, list[float]] = defaultdict(list)
        counted = {"tokens": 0, "pairs": 0, "started": time.perf_counter()}
        run.policy.train()
        done = state["global_step"] >= run.total_steps
        for epoch in range(state["epoch"], cfg.num_epochs if not cfg.max_steps else 10**9):
            if done:
                break
            run.train_loader.set_epoch(epoch)
            skip = state["batches_in_epoch"] if epoch == state["epoch"] else 0
            loader = acc.skip_first_batches(run.train_loader, skip) if skip else run.train_loader
            state.update(epoch=epoch, batches_in_epoch=skip)
            for pairs in loader:
                metrics, tokens = self._micro_step(run, pairs)
                state["batches_in_epoch"] += 1
                counted["tokens"] += tokens
                counted["pairs"] += len(pairs)
                for key, value in metrics.items():
                    window[key].append(float(value))
                if not acc.sync_gradients:
                    continue
                state["global_step"] += 1
                self._after_step(run, epoch, window, counted)
                window.clear()
                counted.update(tokens=0, pairs=0, started=time.perf_counter())
                bar.update(1)
                bar.set_postfix(loss=f"{run.last['loss']:.4f}", acc=f"{run.last['rewards_accuracy']:.2f}",
                                delta=f"{run.last['delta']:.3f}", refresh=False)
                if state["global_step"] >= run.total_steps:
                    done = True
                    break
            else:
                state.update(epoch=epoch + 1, batches_in_epoch=0)
        bar.close()

    def _micro_step(self, run: Run, pairs) -> tuple[dict, int]:
        """Forward, MPO loss, backward; the optimizer steps when the accumulation window closes."""
        cfg, acc = self.cfg, self.accelerator
        with acc.accumulate(run.policy):
            out = self.logps(run.policy, pairs)
            ref_chosen, ref_rejected = run.reference(pairs)
            loss, metrics = mpo_loss(out.chosen, out.rejected, ref_chosen, ref_rejected, out.chosen_nll,
                                     beta=cfg.beta, weights=cfg.loss_weights, delta=run.delta.value)
            if run.keepalive is not None and not any(p.mm for p in pairs):
                loss = loss + vision_keepalive(run.policy, run.keepalive)
            acc.backward(loss)
            metrics["delta"] = torch.tensor(run.delta.value)
            metrics["logps_chosen"] = out.chosen.detach().mean()
            metrics["logps_rejected"] = out.rejected.detach().mean()
            run.delta.update(acc.reduce(metrics["reward_mean"].to(acc.device), "mean").item())
            if acc.sync_gradients and cfg.max_grad_norm is not None:
                metrics["grad_norm"] = torch.as_tensor(acc.clip_grad_norm_(run.policy.parameters(),
                                                                           cfg.max_grad_norm))
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad()
        return metrics, out.tokens

    def _after_step(self, run: Run, epoch: int, window: dict, counted: dict) -> None:
        """Per optimizer step: reduce and log the metrics, watch their trends, evaluate + probe, checkpoint."""
        cfg, acc, step = self.cfg, self.accelerator, run.state["global_step"]
        elapsed = time.perf_counter() - counted["started"]
        last = {k: sum(v) / len(v) for k, v in window.items() if k != "reward_mean"}
        last = {k: float(acc.reduce(torch.tensor(v, device=acc.device), "mean")) for k, v in last.items()}
        rates = acc.reduce(torch.tensor([counted["tokens"] / elapsed, counted["pairs"] / elapsed],
                                        device=acc.device), "sum")
        last.update(lr=run.scheduler.get_last_lr()[0], epoch=epoch, tokens_per_s=float(rates[0]),
                    pairs_per_s=float(rates[1]))
        run.last = last
        if step % cfg.logging_steps == 0 or step == run.total_steps:
            run.metrics_log.write(step, last)
        # the trends are of log-ratios against the reference; the SFT term alone has none
        for warning in run.watch.observe(step, last) if run.reference.rewards else []:
            self._warn(run, warning)
        if cfg.eval_steps and step % cfg.eval_steps == 0:
            if run.eval_loader is not None:
                run.eval_metrics = self.evaluate(run.policy, run.reference, run.eval_loader, run.delta.value)
                run.metrics_log.write(step, run.eval_metrics)
            self._probe(run, step)
        if cfg.save_steps and step % cfg.save_steps == 0 and step < run.total_steps:
            self._checkpoint(run.state)

    def _finish(self, run: Run) -> TrainResult:
        """Final evaluation, checkpoint (only when checkpoints were asked for), the full model, its check, the
        curves and the model card."""
        acc, step = self.accelerator, run.state["global_step"]
        evaluated = self.cfg.eval_steps and step % self.cfg.eval_steps == 0
        if run.eval_loader is not None and not evaluated:
            run.eval_metrics = self.evaluate(run.policy, run.reference, run.eval_loader, run.delta.value)
            run.metrics_log.write(step, run.eval_metrics)
        self._say(f"forward used: {self.logps.describe()}")
        if self.cfg.save_steps:
            self._checkpoint(run.state)
        final_dir = self._save_final(run.policy, run.processor)
        if acc.is_main_process:
            problems = check_saved_model(final_dir, run.processor, run.probe[0] if run.probe else None,
                                         run.zero_at_start, dtype=self._precision_dtype())
            if problems:
                raise NothingMade(f"the saved model in {final_dir} failed its check: " + "; ".join(problems) +
                                  f"; {saved_model_advice(problems)}; the weights and logs stay in {self.output_dir}")
            self._say(f"saved model checked: {final_dir} (weights finite and non-zero, loads and generates)")
            run.metrics_log.plot(self.output_dir / "training_curves.png")
            self._write_card(final_dir, run, step)
        acc.wait_for_everyone()
        acc.end_training()
        return TrainResult(step, final_dir, run.last, run.eval_metrics, run.warnings)

    # ------------------------------------------------------------------------------------------------ health
    def _probe_prompts(self, data, eval_idx: list[int]) -> list[tuple[str, list]]:
        """The generation probe's prompts: the first held-out pairs' questions and images."""
        rows = [data[i] for i in eval_idx[:self.cfg.probe_prompts]]
        return [(row["question"], [img.convert("RGB") for img in row["images"]]) for row in rows]

    def _probe(self, run: Run, step: int) -> None:
        """Greedy answers to the probe prompts: metrics to metrics.jsonl, samples to probe/step-N.jsonl."""
        if not run.probe:
            return
        acc = self.accelerator
        model = acc.unwrap_model(run.policy)
        model.eval()
        samples = generate_probe(model, run.processor, run.probe, max_new_tokens=self.cfg.probe_max_new_tokens,
                                 template_options=self.cfg.chat_template_options,
                                 synced=acc.num_processes > 1)
        model.train()
        scores = probe_scores([s["response"] for s in samples], [s["tokens"] for s in samples])
        run.metrics_log.write(step, scores)
        if acc.is_main_process:
            atomic_write_text(self.output_dir / "probe" / f"step-{step:07d}.jsonl",
                              "".join(json.dumps(s) + "\n" for s in samples))

    def _warn(self, run: Run, message: str) -> None:
        run.warnings.append(message)
        log.warning(message)
        if self.accelerator.is_main_process and self.progress:
            print(f"WARNING: {message}", flush=True)

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

    def _write_card(self, final: Path, run: Run, steps: int) -> None:
        from cards.render import render_model_card

        atomic_write_text(final / "README.md", render_model_card(
            self.cfg, steps=steps, metrics=run.last, eval_metrics=run.eval_metrics, data=run.prepared.describe(),
            forward=self.logps.describe(), reference=run.reference.describe()))

    # ------------------------------------------------------------------------------------------------- misc
    def _bar(self, total: int, initial: int):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc="training", unit="step", dynamic_ncols=True,
                    disable=not self.progress or not self.accelerator.is_main_process)

    def _say(self, message: str) -> None:
        log.info(message)
        if self.accelerator.is_main_process and self.progress:
            print(message, flush=True)


def trainable_parameters(model) -> tuple[int, int]:
    params = list(unwrap(model).parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
