"""Correctness-based pairs (the paper's correctness-based pipeline; Wang et al., 2024, arXiv 2411.10442).

Each sampled response is judged: its final answer is extracted (none, or several different ones -> unparsable)
and compared with the ground truth by the rules of the item's answer type. Every correct response is paired
with every wrong one (``correctness``) and with every unparsable one (``format``); a pair is dropped when the
correct answer appears inside the wrong answer, duplicates are removed, and each kind keeps at most
``max_pairs`` per question. Questions whose responses are all right or all wrong give no pairs and are counted as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmpr.answers import extract_final_answer, is_correct
from mmpr.schemas import Judgement, PreferencePair, Response, SourceItem

from .pairing import cap, make_pair, unique_pairs

Outcome = Literal["paired", "all_correct", "all_wrong", "all_unparsable", "no_pairs"]


def judge(item: SourceItem, response: Response) -> Judgement:
    """Extract and judge one response against ``item``'s ground truth."""
    if item.answer is None or item.answer_type is None:
        raise ValueError(f"item {item.id} has no ground truth to judge against")
    extracted = extract_final_answer(response.text, strict=True)  # several different answers: a format failure
    correct = extracted is not None and is_correct(extracted, item.answer, answer_type=item.answer_type,
                                                   choices=item.choices)
    return Judgement(item_id=item.id, sample_index=response.sample_index, extracted=extracted,
                     parsable=extracted is not None, correct=correct)


@dataclass
class CorrectnessResult:
    judgements: list[Judgement]
    pairs: list[PreferencePair] = field(default_factory=list)
    outcome: Outcome = "no_pairs"


def correctness_pairs(item: SourceItem, question: str, responses: list[Response], *, max_pairs: int = 15,
                      seed: int = 0) -> CorrectnessResult:
    """Judge ``responses`` to ``question`` (the prompt the model saw) and pair them."""
    judgements = [judge(item, r) for r in responses]
    result = CorrectnessResult(judgements)
    by_text: dict[str, Judgement] = {}
    for r, j in zip(responses, judgements, strict=True):
        by_text.setdefault(r.text, j)  # identical samples count once
    correct = [t for t, j in by_text.items() if j.correct]
    wrong = [t for t, j in by_text.items() if j.parsable and not j.correct]
    unparsable = [t for t, j in by_text.items() if not j.parsable]
    if not correct:
        result.outcome = "all_unparsable" if not wrong else "all_wrong"
        return result
    if not wrong and not unparsable:
        result.outcome = "all_correct"
        return result
    pairs = []
    for c in correct:
        answer = (by_text[c].extracted or "").strip().lower()
        for w in wrong:
            if answer and answer in (by_text[w].extracted or "").lower():
                continue  # the "wrong" answer contains the right one: not a clean negative
            pairs.append(make_pair(item, question, c, w, "correctness",
                                   metadata={"chosen_answer": by_text[c].extracted,
                                             "rejected_answer": by_text[w].extracted}))
    format_pairs = [make_pair(item, question, c, u, "format", metadata={"chosen_answer": by_text[c].extracted})
                    for c in correct for u in unparsable]
    key = item.id
    result.pairs = (cap(unique_pairs(pairs), max_pairs, seed=seed, key=key + "/correctness")
                    + cap(unique_pairs(format_pairs), max_pairs, seed=seed, key=key + "/format"))
    result.outcome = "paired" if result.pairs else "no_pairs"
    return result
