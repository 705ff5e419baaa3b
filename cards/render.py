"""Fill the card templates from real statistics (manifests, training logs, eval results)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mmpr.schemas import ALL_CONFIG, Manifest, VersionEntry

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent), undefined=StrictUndefined,
                   keep_trailing_newline=True)

# As the sources state them; a source missing here is listed as "see the source's terms".
KNOWN_LICENCES = {
    "scienceqa": "CC BY-NC-SA 4.0",
    "mathvista": "CC BY-SA 4.0",
    "chartqa": "GPL-3.0",
    "vqav2": "CC BY 4.0 (annotations); COCO images under Flickr terms",
    "gqa": "CC BY 4.0",
    "textvqa": "CC BY 4.0",
    "clevr": "CC BY 4.0",
    "mmpr": "MIT (the MMPR release), on top of each original source's terms",
    "sample": "Apache-2.0 (synthetic images and questions shipped with mmpr)",
}

_KINDS = ("correctness", "format", "dropout_ntp", "imported")


def _licence(source: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", source.lower())
    for name, licence in KNOWN_LICENCES.items():
        if name in key:
            return licence
    return "see the source's own terms"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                         (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def render_dataset_card(manifest: Manifest, *, repo_id: str | None = None, folder: str | None = None) -> str:
    """The dataset card (README.md with YAML configs) for ``manifest``; its loading snippet names ``repo_id`` once
    pushed, else the local ``folder``'s name as a relative path (``./name``, loadable next to it)."""
    kind_totals: Counter[str] = Counter()
    category_totals: Counter[str] = Counter()
    sources = set()
    for info in manifest.subsets.values():
        kind_totals.update(info.kinds)
        category_totals.update(info.categories)
        sources.update(info.sources)
    sources.update(s.name for s in manifest.sources)
    current = VersionEntry(version=manifest.dataset_version, created_at=manifest.created_at,
                           content_hash=manifest.content_hash, num_pairs=manifest.num_pairs,
                           note=manifest.extra.get("note", ""))
    return _ENV.get_template("dataset_card.md.j2").render(
        m=manifest, repo_id=repo_id, location=repo_id or f"./{folder or manifest.name}", all_config=ALL_CONFIG,
        size_category=_size_category(manifest.num_pairs),
        kinds=[k for k in _KINDS if kind_totals[k]], kind_totals=kind_totals,
        category_totals=dict(category_totals.most_common()),
        licences={s: _licence(s) for s in sorted(sources)}, history=[*manifest.history, current])


def render_model_card(cfg, *, steps: int, metrics: dict[str, float], eval_metrics: dict[str, float], data: str,
                      forward: str, reference: str, evals: dict[str, float] | None = None,
                      repo_id: str | None = None) -> str:
    """The model card of a training run (``cfg`` is a :class:`mpo_train.config.TrainConfig`); ``forward`` and
    ``reference`` say what the run used (the mode its forward decided, the reference kind it chose)."""
    return _ENV.get_template("model_card.md.j2").render(
        cfg=cfg, name=cfg.run_name or Path(cfg.output_dir).name, steps=steps, metrics=metrics,
        eval_metrics=eval_metrics, data=data, forward=forward, reference=reference, evals=evals or {},
        repo_id=repo_id)
