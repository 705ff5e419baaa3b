"""Reference log-probs, one class per kind, chosen by name through :data:`REFERENCES`: a frozen model online, a
cache computed in one pass before training (for image data too, so no second model sits in memory while training),
the LoRA policy with its adapters disabled, or none (the SFT term alone).

The trainer asks a reference what it needs (:attr:`Reference.needs_model`: a frozen copy of the initial weights),
hands it the policy once accelerate has wrapped it (:meth:`Reference.prepare`), lets it score the run's pairs before
the first step (:meth:`Reference.precompute`), then calls it on every micro-batch; it never asks which kind it is.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from mmpr.io import atomic_write_text
from mmpr.registry import Registry
from mpo_train.data import EncodedPair, PairDataset, collate
from mpo_train.forward import SequenceLogps

REFERENCES: Registry[type[Reference]] = Registry("reference")


def model_identity(path: str, config) -> str:
    """What identifies reference weights: the Hub commit, or a local folder's config and weight files."""
    folder = Path(path)
    if not folder.is_dir():
        return f"{path}@{getattr(config, '_commit_hash', None) or 'unknown'}"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
    stamp = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return f"{folder.resolve()}:{hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]}"


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps([p if isinstance(p, list) else str(p) for p in parts]).encode()).hexdigest()[:20]


@dataclass
class ScoringJob:
    """What a reference that scores the run's pairs before training needs from the trainer."""

    pairs: Callable[[], PairDataset]  # the pairs of this rank's share of the run (built only when asked for)
    cache_dir: Path
    data_fingerprint: str
    encoder_fingerprint: str
    precision: str
    batch_size: int
    num_workers: int = 0
    progress: bool = True


class Reference(ABC):
    """One kind of reference; :meth:`__call__` gives the (chosen, rejected) log-probs of a micro-batch."""

    name: ClassVar[str]  # its name in REFERENCES
    needs_model: ClassVar[bool] = False  # a frozen copy of the initial weights is loaded for it
    rewards: ClassVar[bool] = True       # the policy's log-ratios against it are rewards (the trend watch reads them)

    table: dict[int, tuple[float, float]] | None = None  # log-probs the datasets carry to their pairs, or None

    def __init__(self, *, logps: SequenceLogps, device, policy=None, model=None, source: str = ""):
        """``model``: the frozen copy (kinds that need one), loaded from ``source``; ``policy``: the policy before
        accelerate wraps it."""
        self.logps, self.device, self.policy, self.model, self.source = logps, device, policy, model, source

    @classmethod
    def refusal(cls, cfg) -> str | None:
        """Why this kind cannot serve the settings ``cfg`` (a :class:`~mpo_train.config.TrainConfig`); None if it
        can."""
        return None

    def describe(self) -> str:
        return self.name

    def prepare(self, accelerator, policy) -> None:
        """Once accelerate has wrapped ``policy`` (and its optimizer and loaders); by default nothing to do."""
        return None

    def precompute(self, job: ScoringJob, accelerator, say: Callable[[str], None]) -> None:
        """Before the first step (after a resume), with the data order known; by default nothing to score."""
        return None

    @abstractmethod
    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        ...


def _kind(name: str, description: str) -> Callable[[type[Reference]], type[Reference]]:
    """Register a kind under ``name`` (which it then knows as its own)."""
    def register(cls: type[Reference]) -> type[Reference]:
        cls.name = name
        return REFERENCES.register(name, description=description)(cls)

    return register


def choose_reference(cfg) -> type[Reference]:
    """The one place a run's reference kind is decided: none where the SFT term alone trains (whatever
    ``reference`` says), else the configured kind."""
    return REFERENCES.get("none" if cfg.sft_only else cfg.reference)


@_kind("online", "a frozen copy of the initial policy runs on every batch")
class OnlineReference(Reference):
    needs_model = True

    def prepare(self, accelerator, policy) -> None:
        self.model = accelerator.prepare_model(self.model, evaluation_mode=True)

    @torch.no_grad()
    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.logps(self.model, pairs)
        return out.chosen.float(), out.rejected.float()


@_kind("lora_base", "the policy with its LoRA adapters disabled")
class LoraBaseReference(Reference):
    @classmethod
    def refusal(cls, cfg) -> str | None:
        return None if cfg.lora is not None else "needs lora settings (the base is the policy without adapters)"

    def prepare(self, accelerator, policy) -> None:
        self.policy = policy

    @torch.no_grad()
    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        peft_model = self.policy
        while not hasattr(peft_model, "disable_adapter") and hasattr(peft_model, "module"):
            peft_model = peft_model.module
        with peft_model.disable_adapter():
            out = self.logps(self.policy, pairs)
        return out.chosen.float(), out.rejected.float()


@_kind("precomputed", "scored once before training and cached on disk; no second model in memory while training")
class PrecomputedReference(Reference):
    """Log-probs computed before training by a frozen copy (then dropped) and carried by each pair."""

    needs_model = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.table = {}

    def precompute(self, job: ScoringJob, accelerator, say: Callable[[str], None]) -> None:
        """Score the pairs the run uses (see :func:`score_pairs`) into the cache of the forward mode that scores
        them, then free the model. Where the forward check falls back to plain while scoring, the pairs are scored
        again into the plain mode's cache: each cache holds the log-probs of one mode, the one its key names."""
        started = time.perf_counter()
        dataset = job.pairs()
        identity = model_identity(self.source, self.model.config)
        table = None
        while table is None:
            mode = self.logps.mode
            key = cache_key(job.data_fingerprint, job.encoder_fingerprint, identity, mode, job.precision)
            cache = job.cache_dir / f"reference-{key}.json"
            table = score_pairs(self.model, dataset, list(range(len(dataset))), cache=cache,
                                batch_size=job.batch_size, logps=self.logps, accelerator=accelerator,
                                num_workers=job.num_workers, progress=job.progress)
        self.table.update(table)
        say(f"reference log-probs of the {len(dataset)} pairs this run uses (this rank) ready in "
            f"{time.perf_counter() - started:.1f}s with the {mode} forward; cache {cache.name}: {len(table)} pairs")
        self.model = None
        gc.collect()

    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        if any(p.ref is None for p in pairs):
            raise RuntimeError("a pair has no precomputed reference log-probs")
        values = torch.tensor([p.ref for p in pairs], device=self.device, dtype=torch.float32)
        return values[:, 0], values[:, 1]


@_kind("none", "zeros: the SFT term alone (loss_weights=[0, 0, w]) needs no reference")
class NoReference(Reference):
    rewards = False

    @classmethod
    def refusal(cls, cfg) -> str | None:
        return None if cfg.sft_only else "serves the SFT term alone: set loss_weights to [0, 0, w]"

    def describe(self) -> str:
        return "none (the SFT term alone)"

    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(len(pairs), device=self.device)
        return zeros, zeros


def load_table(cache: Path) -> dict[int, tuple[float, float]]:
    """A cache of reference log-probs: dataset row -> (chosen, rejected)."""
    if not cache.exists():
        return {}
    return {int(k): (float(c), float(r)) for k, (c, r) in json.loads(cache.read_text()).items()}


@torch.inference_mode()
def score_pairs(model, dataset: PairDataset, positions: list[int], *, cache: Path, batch_size: int,
                logps: SequenceLogps, accelerator, num_workers: int = 0, progress: bool = True
                ) -> dict[int, tuple[float, float]] | None:
    """Reference log-probs of the pairs at ``positions`` of ``dataset`` (this rank's share: the pairs it will
    train on), keyed by dataset row. The cache at ``cache`` holds every pair scored so far by any run with the
    same data, encoding, reference weights and forward mode: only the pairs missing from it are scored (so a run
    scores the pairs its ``max_steps`` use, and a later, longer run the rest), then it is rewritten with the union.

    The forward chooser ``logps`` is the run's one decision: while it checks, every rank makes as many calls as the
    busiest one (idle ones join the check's collectives, :meth:`SequenceLogps.idle`). Where its mode changes
    while scoring, nothing is written and None is returned: the caller scores again into the new mode's cache.

    Speed: the pairs are encoded by DataLoader workers while the model runs, in batches, under inference mode.
    """
    from accelerate.utils import gather_object
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    table = load_table(cache)
    mode = logps.mode
    missing = sorted({p for p in positions if dataset.indices[p] not in table})
    loader = DataLoader(Subset(dataset, missing), batch_size=batch_size, collate_fn=collate,
                        num_workers=num_workers) if missing else []
    bar = tqdm(total=len(missing), desc="reference log-probs", unit="pair",
               disable=not progress or not accelerator.is_main_process or not missing)
    batches = iter(loader)
    mine: list[tuple[int, float, float]] = []
    for _ in range(logps.lockstep(len(loader), accelerator.device)):
        pairs = next(batches, None)
        if pairs is None:
            logps.idle(model)
        else:
            out = logps(model, pairs)
            mine += [(p.index, float(c), float(r)) for p, c, r in zip(pairs, out.chosen, out.rejected, strict=True)]
            bar.update(len(pairs))
        if logps.mode != mode:
            bar.close()
            return None
    bar.close()
    rows = gather_object(mine) if accelerator.num_processes > 1 else mine
    if rows:
        table.update({i: (c, r) for i, c, r in rows})
        if accelerator.is_main_process:
            atomic_write_text(cache, json.dumps({str(i): list(v) for i, v in sorted(table.items())}))
    accelerator.wait_for_everyone()
    return table
