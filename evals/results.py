"""The typed results ``evals.run`` writes to ``results.json`` and ``evals.compare`` reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CategoryScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accuracy: float
    correct: int
    total: int


class Interval(BaseModel):
    """A percentile-bootstrap interval (:mod:`evals.intervals`), with what was resampled and how."""

    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    level: float = Field(description="Coverage, e.g. 0.95.")
    method: str = Field(description="How it was made, e.g. 'percentile bootstrap over items'.")
    units: int = Field(description="How many units (items, seeds, problems) were resampled.")
    resamples: int
    seed: int


class SampledScores(BaseModel):
    """Scores over ``--samples k`` answers per item drawn at ``--temperature``; per-sample accuracy, not the
    benchmark's aggregate."""

    model_config = ConfigDict(extra="forbid")

    k: int
    temperature: float
    avg_at_k: float = Field(description="Mean accuracy over the k samples, averaged over items, percent.")
    avg_at_k_interval: Interval
    pass_at_k: float = Field(description="Percent of items with at least one right sample.")
    majority_at_k: float = Field(description="Percent of items whose most frequent parsable answer is right "
                                 "(ties: the answer given first); an item with no parsable sample is wrong.")
    items: int
    unparsable_samples: int


class ThinkingStats(BaseModel):
    """Responses with a ``<think>`` block (``mmpr.answers.split_thinking``)."""

    model_config = ConfigDict(extra="forbid")

    responses_with_thinking: int
    unclosed: int = Field(description="Responses whose think block never closes: unparsable, counted wrong.")
    mean_think_chars: float = Field(description="Mean thinking length in characters over responses that think.")
    stripped: bool = Field(description="--strip-thinking: the think span was removed before extraction.")


class JudgedDifference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: str
    answer: str
    judge_free_extracted: str | None
    judge_free_correct: bool
    judged_extracted: str | None = Field(description="The judge's extraction, before normalisation.")
    judged_prediction: str | None = Field(description="The extraction normalised as the protocol does.")
    judged_correct: bool


class JudgedComparison(BaseModel):
    """The judge-free headline beside a judged protocol's score on the same responses."""

    model_config = ConfigDict(extra="forbid")

    protocol: str
    judge_model: str
    judge_free: float
    judged: float | None = Field(description="Percent right under the protocol; None while any item's judge call "
                                 "failed (rerun to ask the judge again).")
    judged_interval: Interval | None = None
    difference_interval: Interval | None = Field(default=None, description="judged - judge-free, paired over "
                                                 "items.")
    items: int
    judge_failures: int = Field(description="Items the judge gave no usable reply for: counted, never scored.")
    failed_items: list[str] = Field(default_factory=list)
    differing: list[JudgedDifference] = Field(description="Items the two scorings disagree on, both extractions.")


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmark: str
    task: str
    accuracy: float = Field(description="Percent correct, judge-free.")
    correct: int
    total: int
    unparsable: int
    unparsable_rate: float = Field(description="Percent of responses with no extractable final answer.")
    unscorable: int = Field(default=0, description="Samples of items whose ground truth cannot be judged (e.g. it "
                            "names none of the options); counted wrong, listed in unscorable_items.")
    unscorable_items: dict[str, str] = Field(default_factory=dict, description="doc_id -> why it is unscorable.")
    skipped: int = Field(default=0, description="Items left out, their image null, not decodable or above the "
                         "pixel limit (--max-image-pixels); not in total, listed in skipped_items.")
    skipped_items: dict[str, str] = Field(default_factory=dict, description="document -> why it was left out.")
    judged: int = Field(default=0, description="Unparsable answers sent to the --judge (0 without one).")
    accuracy_with_judge: float | None = None
    judge_failures: int = Field(default=0, description="Unparsable answers the --judge gave no reply for: left "
                                "unjudged (wrong), counted here; a rerun asks again.")
    headline: str = Field(default="accuracy", description="Which score the benchmark reports: 'accuracy' or a key "
                          "of metrics (DynaMath's worst_case, WeMath's strict).")
    score: float | None = Field(default=None, description="The headline score, percent; None when the samples "
                                "evaluated cannot give it.")
    interval: Interval | None = Field(default=None, description="The headline's 95 % interval; None when the "
                                      "headline is None.")
    metrics: dict[str, float] = Field(default_factory=dict, description="The benchmark's own scores beyond "
                                      "per-sample accuracy, and their counts.")
    categories: dict[str, dict[str, CategoryScore]] = Field(default_factory=dict)
    sampled: SampledScores | None = Field(default=None, description="With --samples k.")
    judge_comparison: JudgedComparison | None = Field(default=None, description="With --judge, for a benchmark "
                                                      "that has a judged protocol (MathVista).")
    thinking: ThinkingStats | None = Field(default=None, description="When any response has a think block.")
    dataset: str
    dataset_revision: str | None = None


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    engine: str
    prompt: str
    prompt_template: str
    generation: dict[str, Any]
    lmms_eval_version: str
    created_at: datetime
    limit: int | None
    tasks: dict[str, TaskResult]
    engine_failures: dict[str, int] = Field(default_factory=dict, description="Requests the engine failed on, by "
                                            "cause; scored as empty answers here, asked again on a rerun.")
    judge_failures: int = Field(default=0, description="Judge calls that gave no usable reply, all benchmarks.")
