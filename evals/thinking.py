"""Thinking models' ``<think>...</think>`` blocks: what the scorer reads, and how much was thought.

``mmpr.answers.split_thinking`` finds the block; a block that never closes leaves no answer (unparsable, counted).
Under the CoT prompt the extraction already reads past the block and counts the thinking as the rationale before
``Final answer:``, so ``--strip-thinking`` changes what the direct and reasoning prompts read.
"""

from __future__ import annotations

from evals.results import ThinkingStats
from mmpr.answers import split_thinking


def for_scoring(response: str, *, strip: bool, style: str) -> tuple[str, int | None, bool]:
    """``(text the scorer reads, thinking length or None without a think block, block never closed)``."""
    answer, think_chars = split_thinking(response)
    has_block = answer is None or answer != response
    unclosed = answer is None
    if not strip:
        return response, think_chars if has_block else None, unclosed
    if unclosed:
        return "", think_chars, True
    return (response if style == "cot" else answer), think_chars if has_block else None, False


def thinking_stats(records: list[dict], stripped: bool) -> ThinkingStats | None:
    """How many responses think, how many never close the block, and the mean thinking length; None when no
    response has a think block."""
    thinking = [r for r in records if r.get("think_chars") is not None]
    if not thinking:
        return None
    return ThinkingStats(responses_with_thinking=len(thinking),
                         unclosed=sum(bool(r.get("think_unclosed")) for r in thinking),
                         mean_think_chars=round(sum(r["think_chars"] for r in thinking) / len(thinking), 1),
                         stripped=stripped)
