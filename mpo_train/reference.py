"""Reference log-probs, three ways: a frozen model online, a cache computed in one pass before training (for image
data too, so no second model sits in memory while training), or the LoRA policy with its adapters disabled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from mmpr.io import atomic_path
from mpo_train.data import EncodedPair, PairDataset, collate
from mpo_train.forward import SequenceLogps


def model_identity(path: str, config) -> str:
    """What identifies reference weights: the Hub commit, or a local folder's config and weight files."""
    folder = Path(path)
    if not folder.is_dir():
        return f"{path}@{getattr(config, '_commit_hash', None) or 'unknown'}"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
    stamp = [(p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in files]
    return f"{folder.resolve()}:{hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]}"


class OnlineReference:
    """A frozen copy of the initial policy, run on every batch."""

    def __init__(self, model, logps: SequenceLogps):
        self.model, self.logps = model, logps

    @torch.no_grad()
    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.logps(self.model, pairs)
        return out.chosen.float(), out.rejected.float()


class LoraBaseReference:
    """The policy's base weights: the same model with its LoRA adapters switched off."""

    def __init__(self, policy, logps: SequenceLogps):
        self.policy, self.logps = policy, logps

    @torch.no_grad()
    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        peft_model = self.policy
        while not hasattr(peft_model, "disable_adapter") and hasattr(peft_model, "module"):
            peft_model = peft_model.module
        with peft_model.disable_adapter():
            out = self.logps(self.policy, pairs)
        return out.chosen.float(), out.rejected.float()


class CachedReference:
    """Log-probs computed before training and carried by each pair."""

    def __init__(self, device):
        self.device = device

    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        if any(p.ref is None for p in pairs):
            raise RuntimeError("a pair has no precomputed reference log-probs")
        values = torch.tensor([p.ref for p in pairs], device=self.device, dtype=torch.float32)
        return values[:, 0], values[:, 1]


@torch.no_grad()
def precompute(model, dataset: PairDataset, *, cache: Path, batch_size: int, logps: SequenceLogps, accelerator,
               progress: bool = True) -> torch.Tensor:
    """Reference log-probs of every pair of ``dataset`` as a [N, 2] tensor (chosen, rejected), computed once
    (each rank a share) and cached at ``cache``; a later run with the same data, encoding and reference weights
    reads the cache instead."""
    from tqdm import tqdm

    if cache.exists():
        return torch.load(cache)
    rank, world = accelerator.process_index, accelerator.num_processes
    mine: list[tuple[int, float, float]] = []
    positions = list(range(rank, len(dataset), world))
    bar = tqdm(total=len(positions), desc="reference log-probs", disable=not progress or rank != 0, unit="pair")
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        pairs = collate([dataset[i] for i in chunk])
        out = logps(model, pairs)
        mine += [(i, float(c), float(r)) for i, c, r in zip(chunk, out.chosen, out.rejected, strict=True)]
        bar.update(len(chunk))
    bar.close()
    from accelerate.utils import gather_object

    rows = sorted(gather_object(mine))
    values = torch.tensor([[c, r] for _, c, r in rows], dtype=torch.float32)
    if accelerator.is_main_process:
        with atomic_path(cache) as tmp:
            torch.save(values, tmp)
    accelerator.wait_for_everyone()
    return values


class NoReference:
    """Zeros: the SFT term alone (``loss_weights=[0, 0, w]``) needs no reference model."""

    def __init__(self, device):
        self.device = device

    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(len(pairs), device=self.device)
        return zeros, zeros
