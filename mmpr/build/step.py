"""One chunk of questions -> sampled answers -> judged -> preference pairs (:func:`process_chunk`).

The step holds no state between chunks: any runner (the local loop in :mod:`mmpr.build.runner`, or one that
spreads chunks over machines) calls it with a chunk, an engine and the build's settings.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from mmpr.answers import UnscorableItem
from mmpr.build.config import BuildConfig
from mmpr.engines import Engine, EngineError, Request, Result, request_seed
from mmpr.pipeline.correctness import correctness_pairs
from mmpr.pipeline.dropout_ntp import continuation_prefix, dropout_ntp_pair, without_images
from mmpr.problems import Problem
from mmpr.prompts import get_template, strip_direct_instructions
from mmpr.schemas import Response, SourceItem
from mmpr.store import ItemRecord


def in_shard(item_id: str, shard: str) -> bool:
    i, n = map(int, shard.split("/"))
    return n == 1 or int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") % n == i


def route_of(item: SourceItem, cfg: BuildConfig) -> Literal["correctness", "dropout_ntp"]:
    has_truth = item.answer is not None
    return "correctness" if has_truth and item.category not in cfg.correctness_skip_categories else "dropout_ntp"


def prompt_for(item: SourceItem, cfg: BuildConfig) -> str:
    """Questions with an answer get the CoT template (direct-answer instructions stripped); open questions
    (captions, descriptions) are asked as they are."""
    if item.answer is None:
        return item.question
    return get_template(cfg.prompt).render(strip_direct_instructions(item.question), item.choices)


def _skipped(record: ItemRecord, code: str, message: str) -> ItemRecord:
    record.outcome = "skipped"
    record.problem = Problem(code=code, file=record.item.source, field=None,
                             message=f"{record.item.id}: {message}")
    return record


def _responses(item: SourceItem, completions) -> list[Response]:
    return [Response(item_id=item.id, sample_index=i, text=c.text, prompt_tokens=c.prompt_tokens,
                     completion_tokens=c.completion_tokens, finish_reason=c.finish_reason)
            for i, c in enumerate(completions)]


def answer_requests(items: list[SourceItem], cfg: BuildConfig) -> tuple[list[ItemRecord], list[Request]]:
    """The pending record of each question and its sampling request (``n`` answers on the correctness route, one
    to truncate on the DropoutNTP route), each with its own seed."""
    records, requests = [], []
    for item in items:
        route = route_of(item, cfg)
        records.append(ItemRecord(item=item, route=route, prompt=prompt_for(item, cfg), outcome="pending"))
        requests.append(Request(item.id, records[-1].prompt, tuple(item.images),
                                n=cfg.sampling.n if route == "correctness" else 1,
                                seed=request_seed(cfg.sampling.seed, item.id)))
    return records, requests


Continuation = tuple[ItemRecord, str, Request]


def judge_answers(records: list[ItemRecord], results: list[Result], cfg: BuildConfig) -> list[Continuation]:
    """Fill ``records`` from the engine's answers: correctness pairs are judged and made here; a DropoutNTP
    question's answer is truncated, and its continuation request (without the image) is returned."""
    seed = cfg.sampling.seed
    continuations: list[Continuation] = []
    for record, result in zip(records, results, strict=True):
        item = record.item
        if isinstance(result, EngineError):
            _skipped(record, result.code, result.message)
            continue
        record.responses = _responses(item, result)
        if record.route == "correctness":
            try:
                res = correctness_pairs(item, record.prompt, record.responses,
                                        max_pairs=cfg.max_pairs_per_question, seed=seed)
            except UnscorableItem as e:  # e.g. a gold naming none of the options: reported, the build goes on
                _skipped(record, "unscorable", str(e))
                continue
            record.judgements, record.pairs, record.outcome = res.judgements, res.pairs, res.outcome
            continue
        chosen = record.responses[0]
        if chosen.finish_reason == "length":
            _skipped(record, "chosen_truncated", "the answer with the image hit max_tokens; raise --max-tokens")
            continue
        prefix = continuation_prefix(chosen.text, cfg.dropout_ntp_ratio)
        if prefix is None:
            _skipped(record, "chosen_too_short", "the answer with the image is too short to truncate")
            continue
        key = item.id + "#ntp"
        continuations.append((record, prefix, Request(key, without_images(record.prompt), (), n=1,
                                                      seed=request_seed(seed, key), prefix=prefix)))
    return continuations


def pair_continuations(continuations: list[Continuation], results: list[Result], cfg: BuildConfig) -> None:
    """Finish the DropoutNTP records: the continuation without the image is the rejected answer."""
    for (record, prefix, _), result in zip(continuations, results, strict=True):
        if isinstance(result, EngineError):
            _skipped(record, result.code, result.message)
            continue
        record.continuation = result[0].text
        pair = dropout_ntp_pair(record.item, record.prompt, record.responses[0].text, prefix, result[0].text,
                                ratio=cfg.dropout_ntp_ratio)
        record.pairs = [pair] if pair else []
        record.outcome = "paired" if pair else "no_pairs"


def process_chunks(chunks: list[list[SourceItem]], engine: Engine, cfg: BuildConfig) -> list[list[ItemRecord]]:
    """Sample, judge and pair several chunks of questions with two engine calls in all (answers, then DropoutNTP
    continuations). Every request has its own seed, so the records are those of one chunk at a time."""
    records, requests = [], []
    for items in chunks:
        r, q = answer_requests(items, cfg)
        records.append(r)
        requests += q
    continuations = judge_answers([r for rs in records for r in rs], engine.generate(requests, cfg.sampling), cfg)
    if continuations:
        pair_continuations(continuations, engine.generate([r for _, _, r in continuations], cfg.sampling), cfg)
    return records


def process_chunk(items: list[SourceItem], engine: Engine, cfg: BuildConfig) -> list[ItemRecord]:
    """Sample, judge and pair one chunk of questions (two engine calls: answers, then DropoutNTP continuations)."""
    return process_chunks([items], engine, cfg)[0]
