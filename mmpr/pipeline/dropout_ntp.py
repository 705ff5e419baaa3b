"""Dropout next-token prediction pairs for data without ground truth (the paper's
DropoutNTP, Wang et al., 2024, arXiv 2411.10442, data engine).

The chosen response is the model's full answer with the image. Its first ``ratio`` of whitespace words is kept
as a prefix, the model continues that prefix WITHOUT the image, and the rejected response is prefix +
continuation: what the model says when it stops looking. Ratio 0.5 is the paper's best.
"""

from __future__ import annotations

import math
import re

from mmpr.chat import IMAGE_PLACEHOLDER
from mmpr.schemas import PreferencePair, SourceItem

from .pairing import make_pair

DEFAULT_RATIO = 0.5
_WORD = re.compile(r"\S+")


def truncate_words(text: str, ratio: float = DEFAULT_RATIO) -> str:
    """The text up to the end of its first ``floor(ratio * words)`` whitespace-separated words, spacing kept."""
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    words = list(_WORD.finditer(text))
    keep = math.floor(len(words) * ratio)
    return text[: words[keep - 1].end()] if keep else ""


def without_images(question: str) -> str:
    """The question as asked without its images (placeholders removed)."""
    return re.sub(r"\s*" + re.escape(IMAGE_PLACEHOLDER) + r"\s*", " ", question).strip()


def continuation_prefix(chosen: str, ratio: float = DEFAULT_RATIO) -> str | None:
    """The prefix to continue, or None when the chosen response is too short to truncate."""
    prefix = truncate_words(chosen, ratio)
    return prefix if prefix and len(prefix) < len(chosen.rstrip()) else None


def dropout_ntp_pair(item: SourceItem, question: str, chosen: str, prefix: str, continuation: str, *,
                     ratio: float = DEFAULT_RATIO) -> PreferencePair | None:
    """The pair (chosen, prefix + continuation), or None when the continuation reproduces the chosen text."""
    rejected = prefix + continuation
    if rejected.strip() == chosen.strip() or not continuation.strip():
        return None
    return make_pair(item, question, chosen, rejected, "dropout_ntp", ratio=ratio,
                     metadata={"prefix_words": len(_WORD.findall(prefix)), "ratio": ratio})
