"""Reading and writing safetensors checkpoints (one file or shards with an index), dtype and bytes unchanged."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

INDEX = "model.safetensors.index.json"


def is_weights_file(name: str) -> bool:
    return name.endswith((".safetensors", ".bin")) or name in (INDEX, "pytorch_model.bin.index.json")


def read_state(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of the safetensors checkpoint in ``folder`` (sharded with an index, or one file)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if (folder / INDEX).exists():
        files = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
    else:
        files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights (a pytorch_model.bin checkpoint must be saved as "
                                "safetensors first)")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(folder / name))
    return state


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    _atomic_write_text(Path(path), text)


def write_json(path: Path, obj) -> None:
    _atomic_write_text(Path(path), json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_state(state: dict[str, torch.Tensor], folder: Path, *, max_shard_bytes: int = 5 * 1024**3) -> list[str]:
    """Write ``state`` as ``model.safetensors`` or, above ``max_shard_bytes``, as ``model-0000i-of-0000n.safetensors``
    shards with ``model.safetensors.index.json``; returns the file names."""
    from safetensors.torch import save_file

    folder = Path(folder)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(state):
        nbytes = state[name].numel() * state[name].element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = state[name].contiguous()
        size += nbytes
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    for name, shard in zip(names, shards, strict=True):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        os.close(fd)
        save_file(shard, tmp, metadata={"format": "pt"})
        os.replace(tmp, folder / name)
    if len(shards) > 1:
        total = sum(t.numel() * t.element_size() for t in state.values())
        weight_map = {k: n for n, shard in zip(names, shards, strict=True) for k in shard}
        write_json(folder / INDEX, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return names
