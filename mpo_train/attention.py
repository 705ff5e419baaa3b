"""Attention backends (``attn_implementation``), one registry entry each: the form in which the packed forward hands
the backend its per-row mask (none: the backend takes no custom mask and the plain forward serves it), the flag of
a transformers model class that says whether a family supports it, and the check that its package is installed.

The other backends transformers knows (its ``ALL_ATTENTION_FUNCTIONS``, custom ones registered with its
``AttentionInterface`` included) join the registry on lookup, taking no custom mask; a kernel from the Hub
(``org/name``) is not a registry name and takes none either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmpr.registry import Registry


@dataclass(frozen=True)
class AttentionBackend:
    mask: Literal["boolean", "additive", "block"] | None  # what the packed forward passes; None: plain forward
    support_flag: str | None = None  # the transformers model class attribute saying a family supports it
    installed: str | None = None     # the ``transformers.utils`` function saying its package (and a GPU) is there

    @property
    def packs(self) -> bool:
        """It takes the packed forward's per-row mask."""
        return self.mask is not None


ATTENTION_BACKENDS: Registry[AttentionBackend] = Registry("attention backend")
ATTENTION_BACKENDS.register("sdpa", AttentionBackend("boolean", "_supports_sdpa"),
                            description="a boolean [B, 1, L, L] mask; the default")
ATTENTION_BACKENDS.register("eager", AttentionBackend("additive"),
                            description="the same mask as additive floats; the slowest, for debugging")
ATTENTION_BACKENDS.register("flex_attention", AttentionBackend("block", "_supports_flex_attn"),
                            description="a block-sparse BlockMask: no L x L mask, fully masked blocks skipped")
for _version in (2, 3, 4):
    ATTENTION_BACKENDS.register(f"flash_attention_{_version}",
                                AttentionBackend(None, "_supports_flash_attn", f"is_flash_attn_{_version}_available"),
                                description="no custom mask: the plain forward")

HUB_KERNEL = AttentionBackend(None)


def backend(name: str) -> AttentionBackend:
    """The backend ``name`` (an :class:`~mmpr.registry.UnknownName` listing the known ones when there is none)."""
    if "/" in name:
        return HUB_KERNEL
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for other in ALL_ATTENTION_FUNCTIONS.keys():
        if other not in ATTENTION_BACKENDS:
            ATTENTION_BACKENDS.register(other, AttentionBackend(None),
                                        description="transformers' own; no custom mask: the plain forward")
    return ATTENTION_BACKENDS.get(name)
