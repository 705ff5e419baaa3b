"""Pair identity, subset names, de-duplication and the per-question cap."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from mmpr.schemas import PairKind, PreferencePair, SourceItem

_SUFFIX = {"correctness": "pairs_vqa_correctness_rules", "format": "pairs_vqa_format_rules"}


def subset_name(source: str, kind: PairKind, *, ratio: float = 0.5) -> str:
    """The release's subset naming, so that exports read back with the right kind."""
    if kind == "dropout_ntp":
        return f"{source}_prefix_pair_sr{ratio:g}_wo_image"
    return f"{source}_{_SUFFIX.get(kind, kind)}"


def pair_id(item_id: str, chosen: str, rejected: str) -> str:
    digest = hashlib.sha256(f"{item_id}\0{chosen}\0{rejected}".encode()).hexdigest()[:16]
    return f"{item_id}#{digest}"


def make_pair(item: SourceItem, question: str, chosen: str, rejected: str, kind: PairKind, *,
              ratio: float = 0.5, metadata: dict | None = None) -> PreferencePair:
    return PreferencePair(id=pair_id(item.id, chosen, rejected), subset=subset_name(item.source, kind, ratio=ratio),
                          question=question, images=list(item.images), chosen=chosen, rejected=rejected, kind=kind,
                          source=item.source, category=item.category, answer_gt=item.answer,
                          metadata={"item_id": item.id, **(metadata or {})})


def unique_pairs(pairs: Iterable[PreferencePair]) -> list[PreferencePair]:
    """Drop pairs with the same question, images, chosen and rejected as an earlier one (first kept)."""
    seen, out = set(), []
    for p in pairs:
        key = (p.question, tuple(p.images), p.chosen, p.rejected)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def cap(pairs: list[PreferencePair], k: int, *, seed: int, key: str) -> list[PreferencePair]:
    """At most ``k`` pairs, a seeded sample (keyed by the question, so it does not depend on batching),
    in their original order."""
    if len(pairs) <= k:
        return pairs
    rng = random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big"))
    keep = set(rng.sample(range(len(pairs)), k))
    return [p for i, p in enumerate(pairs) if i in keep]
