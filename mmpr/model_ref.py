"""Model references -> something a loader accepts: a local folder, a Hub id, or ``tiny:<family>``.

Every CLI (``mmpr.build``, ``mpo_train``, ``evals.run``) resolves its ``model`` here, so a missing local folder
is reported as one, before anything reaches for the Hub. The tiny-model maker (:mod:`mmpr.testing`) is imported
only for ``tiny:`` references.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mmpr.errors import UserError
from mmpr.locations import hub_out_of_reach, hub_unreachable, looks_local

TINY_PREFIX = "tiny:"


def resolve_model(model: str, *, cache_dir: str | Path | None = None) -> str:
    """``tiny:<family>`` -> a tiny model built on first use under ``~/.cache/mmpr/models`` (or ``cache_dir``,
    or ``$MMPR_CACHE``) and taught the answer format; anything else is returned unchanged (a path or Hub id)."""
    if not model.startswith(TINY_PREFIX):
        return model
    from mmpr.testing import FAMILIES, demo_vlm

    family = model[len(TINY_PREFIX):]
    if family not in FAMILIES:
        raise UserError(f"unknown tiny model {model!r}; choose one of "
                         f"{', '.join(TINY_PREFIX + f for f in FAMILIES)}")
    root = Path(cache_dir or os.environ.get("MMPR_CACHE", Path.home() / ".cache" / "mmpr")) / "models"
    path = root / f"tiny-{family}"
    if not (path / "config.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tiny-{family}-"))
        demo_vlm(tmp, family)
        try:
            tmp.rename(path)
        except OSError:  # built concurrently by another process
            shutil.rmtree(tmp, ignore_errors=True)
    return str(path)


def check_model(model: str, *, flag: str = "--model", served: bool = False) -> str:
    """Resolve ``model`` and check that it can be loaded: a local path must be a model folder (``config.json``);
    anything else must be a Hub id the Hub (or its cache) knows. ``served``: a name an API server knows,
    returned as given."""
    resolved = resolve_model(model)
    if served:
        return resolved
    if looks_local(resolved):
        path = Path(resolved).expanduser()
        if not (path / "config.json").is_file():
            what = "does not exist" if not path.exists() else "is not a model folder (no config.json)"
            raise UserError(f"{flag} {model}: {path} {what}; check the path")
        return str(path)
    from huggingface_hub import try_to_load_from_cache
    from transformers import AutoConfig

    reason = hub_unreachable()
    if reason is not None:  # a model in the local Hub cache still loads; anything else cannot
        if not isinstance(try_to_load_from_cache(resolved, "config.json"), str):
            raise hub_out_of_reach(flag, model, reason, repo_type="model")
        return resolved
    try:
        AutoConfig.from_pretrained(resolved)
    except (OSError, ValueError) as e:
        if "trust_remote_code" in str(e):  # it is there; the engine loads it with trust_remote_code=true
            return resolved
        raise UserError(f"{flag} {model}: not a local folder, and the Hub (or its cache) has no such model; "
                        f"check the name") from e
    return resolved
