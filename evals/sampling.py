"""Scores over k sampled answers per item (``evals.run --samples k --temperature T``).

- avg@k: the mean accuracy of the k samples of an item, averaged over items (an unbiased estimate of one sample's
  accuracy at temperature T; its interval resamples items, each carrying its k samples);
- pass@k: an item counts when any of its k samples is right (Chen et al., 2021, arXiv 2107.03374, with n = k);
- majority@k: the answer most samples give (self-consistency, Wang et al., 2022, arXiv 2203.11171), compared
  after the VQA normalisation; unparsable samples do not vote, ties go to the answer given first.
"""

from __future__ import annotations

from collections import Counter

from evals.results import SampledScores
from evals.uncertainty import interval
from mmpr.answers import normalize_text


def majority_correct(samples: list[dict]) -> bool:
    """Whether the most frequent parsable answer among ``samples`` (scored records) is right."""
    parsable = [s for s in samples if s["parsable"] and s["extracted"] is not None]
    if not parsable:
        return False
    votes = Counter(normalize_text(s["extracted"]) for s in parsable)
    top = max(votes.values())
    winner = next(s for s in parsable if votes[normalize_text(s["extracted"])] == top)
    return bool(winner["correct"])


def sampled_scores(per_item: list[list[dict]], temperature: float) -> SampledScores:
    """avg@k (with its interval over items), pass@k and majority@k of ``per_item``: each item's k scored
    samples."""
    if not per_item or any(not samples for samples in per_item):
        raise ValueError("every item needs at least one scored sample")
    k = max(len(samples) for samples in per_item)
    averages = [100.0 * sum(s["correct"] for s in samples) / len(samples) for samples in per_item]
    n = len(per_item)
    return SampledScores(
        k=k, temperature=temperature, avg_at_k=round(sum(averages) / n, 2),
        avg_at_k_interval=interval(averages, "item"),
        pass_at_k=round(100.0 * sum(any(s["correct"] for s in samples) for samples in per_item) / n, 2),
        majority_at_k=round(100.0 * sum(majority_correct(samples) for samples in per_item) / n, 2),
        items=n, unparsable_samples=sum(not s["parsable"] for samples in per_item for s in samples))
