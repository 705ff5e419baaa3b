"""Reference log-probs, three ways: a frozen model online, a cache computed in one pass before training (for image
data too, so no second model sits in memory while training), or the LoRA policy with its adapters disabled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from mmpr.io import atomic_write_text
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


def load_table(cache: Path) -> dict[int, tuple[float, float]]:
    """A cache of reference log-probs: dataset row -> (chosen, rejected)."""
    if not cache.exists():
        return {}
    return {int(k): (float(c), float(r)) for k, (c, r) in json.loads(cache.read_text()).items()}


@torch.inference_mode()
def precompute(model, dataset: PairDataset, positions: list[int], *, cache: Path, batch_size: int,
               logps: SequenceLogps, accelerator, num_workers: int = 0, progress: bool = True
               ) -> dict[int, tuple[float, float]]:
    """Reference log-probs of the pairs at ``positions`` of ``dataset`` (this rank's share: the pairs it will
    train on), keyed by dataset row. The cache at ``cache`` holds every pair scored so far by any run with the
    same data, encoding and reference weights: only the pairs missing from it are scored (so a run scores the
    pairs its ``max_steps`` use, and a later, longer run the rest), then it is rewritten with the union.

    Speed: the pairs are encoded by DataLoader workers while the model runs, in batches, under inference mode.
    """
    from accelerate.utils import gather_object
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    table = load_table(cache)
    logps = logps.local()  # the ranks score different numbers of batches: no collective in the check
    missing = sorted({p for p in positions if dataset.indices[p] not in table})
    mine: list[tuple[int, float, float]] = []
    if missing:
        loader = DataLoader(Subset(dataset, missing), batch_size=batch_size, collate_fn=collate,
                            num_workers=num_workers)
        bar = tqdm(total=len(missing), desc="reference log-probs", unit="pair",
                   disable=not progress or not accelerator.is_main_process)
        for pairs in loader:
            out = logps(model, pairs)
            mine += [(p.index, float(c), float(r)) for p, c, r in zip(pairs, out.chosen, out.rejected, strict=True)]
            bar.update(len(pairs))
        bar.close()
    rows = gather_object(mine) if accelerator.num_processes > 1 else mine
    if rows:
        table.update({i: (c, r) for i, c, r in rows})
        if accelerator.is_main_process:
            atomic_write_text(cache, json.dumps({str(i): list(v) for i, v in sorted(table.items())}))
    accelerator.wait_for_everyone()
    return table


class NoReference:
    """Zeros: the SFT term alone (``loss_weights=[0, 0, w]``) needs no reference model."""

    def __init__(self, device):
        self.device = device

    def __call__(self, pairs: list[EncodedPair]) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(len(pairs), device=self.device)
        return zeros, zeros
