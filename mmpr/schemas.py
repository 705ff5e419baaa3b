"""The records mmpr moves between its parts, validated at every boundary.

Every model forbids unknown fields and requires what it needs, so a typo in a file or a config is an error
that names the field instead of a silently wrong dataset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = "1.0"

ALL_CONFIG = "all"
"""The dataset config that holds every subset (a dataset card's YAML ``configs:`` lists it beside one config per
subset)."""

AnswerType = Literal["multiple_choice", "integer", "float", "text", "yes_no", "list", "latex", "chart", "document"]
"""How an answer is judged: see :func:`mmpr.answers.is_correct`. ``chart`` is ChartQA's relaxed accuracy,
``document`` is ANLS."""

Category = Literal["general_vqa", "science", "chart", "mathematics", "ocr", "document", "other"]
"""The paper's source categories (MMPR card, section "Sources")."""

PairKind = Literal["correctness", "format", "dropout_ntp", "imported"]
"""How a pair was made: ``correctness`` (rejected has a wrong final answer), ``format`` (rejected has no
parsable final answer), ``dropout_ntp`` (rejected continues a truncated chosen without the image),
``imported`` (from an external release whose construction is unknown)."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceItem(Record):
    """A question with (or without) a ground-truth answer, as read from a source dataset."""

    id: str = Field(min_length=1, description="Unique within its source.")
    source: str = Field(min_length=1, description="Name of the source dataset, e.g. 'scienceqa'.")
    category: Category = Field(description="The paper's source category.")
    question: str = Field(min_length=1, description="The question as the source states it.")
    images: list[str] = Field(default_factory=list, description="Image files, absolute or relative to the store.")
    answer: str | None = Field(description="Ground-truth answer; None for data without ground truth.")
    answer_type: AnswerType | None = Field(description="How to judge answers; None when there is no answer.")
    choices: list[str] | None = Field(default=None, description="Options of a multiple-choice question, in order.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Source extras (unit, precision, skills...).")

    @model_validator(mode="after")
    def _answer_and_type_together(self) -> SourceItem:
        if (self.answer is None) != (self.answer_type is None):
            raise ValueError("answer and answer_type must be given together (both or neither)")
        if self.answer_type == "multiple_choice" and not self.choices:
            raise ValueError("a multiple_choice item needs its choices")
        return self


class Response(Record):
    """One sampled answer of a model to a prompt built from a :class:`SourceItem`."""

    item_id: str
    sample_index: int = Field(ge=0)
    text: str
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    finish_reason: str | None = Field(default=None, description="'stop', 'length', ... as the engine reports it.")


class Judgement(Record):
    """The verdict on one response: its extracted final answer and whether it matches the ground truth."""

    item_id: str
    sample_index: int = Field(ge=0)
    extracted: str | None = Field(description="The final answer found in the response; None if unparsable.")
    parsable: bool
    correct: bool

    @model_validator(mode="after")
    def _unparsable_is_wrong(self) -> Judgement:
        if not self.parsable and self.correct:
            raise ValueError("an unparsable response cannot be correct")
        return self


class PreferencePair(Record):
    """A chosen and a rejected response to the same question and images: one training example."""

    id: str = Field(min_length=1, description="Stable identifier, unique within the dataset.")
    subset: str = Field(min_length=1, pattern=r"^[^\s\x00-\x1f]+$", description="Subset name as its source gives it "
                        "(e.g. 'openbmb/RLAIF-V-Dataset'); the config it is published in is "
                        "mmpr.dataset_writer.config_name of it.")
    question: str = Field(description="The user turn given to the model; '<image>' marks image positions if any.")
    images: list[str] = Field(default_factory=list, description="Image files; empty for text-only pairs.")
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    kind: PairKind
    source: str = Field(min_length=1)
    category: Category = "other"
    answer_gt: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rejected")
    @classmethod
    def _differs_from_chosen(cls, rejected: str, info) -> str:
        if rejected == info.data.get("chosen"):
            raise ValueError("rejected is identical to chosen")
        return rejected


class SamplingConfig(Record):
    """Sampling parameters of the data engine; the defaults of the paper's data engine
    (Wang et al., 2024, arXiv 2411.10442)."""

    n: int = Field(default=32, ge=1, description="Responses sampled per question.")
    temperature: float = Field(default=1.0, ge=0.0, description="Sampling temperature.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling: the top share of probability.")
    top_k: int = Field(default=50, description="The k most likely tokens; -1 disables top-k.")
    max_tokens: int = Field(default=1024, ge=1, description="New tokens per response.")
    seed: int = Field(default=0, description="Sampling seed.")


class GeneratorInfo(Record):
    model: str = Field(description="Model path or Hub id used to sample responses.")
    model_revision: str | None = None
    engine: str = Field(description="The engine's registered name: vllm, openai, transformers or ray-llm.")
    sampling: SamplingConfig


class PromptInfo(Record):
    name: str
    template: str


class SourceInfo(Record):
    name: str
    location: str = Field(description="Hub id, folder or file it was read from.")
    revision: str | None = None
    split: str | None = None
    num_items: int = Field(ge=0)


class SubsetInfo(Record):
    num_pairs: int = Field(ge=0)
    kinds: dict[PairKind, int] = Field(default_factory=dict)
    categories: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, int] = Field(default_factory=dict)
    repeat_time: float = Field(default=1.0, gt=0, description="The release's repeat_time for this subset.")
    repeat_applied: bool = Field(default=True, description="Whether the pairs already reflect repeat_time.")
    release_name: str | None = Field(default=None, description="The subset's own name where it is not a valid "
                                     "config name (the manifest keys subsets by config name).")


class LengthStats(Record):
    """Whitespace-token lengths (tokenizer-free, so the numbers mean the same for every model)."""

    mean: float
    p50: float
    p95: float
    max: int


class VersionEntry(Record):
    version: str
    created_at: datetime
    content_hash: str
    num_pairs: int
    note: str = ""


class Manifest(Record):
    """What a published dataset is: written last, next to the data, and into the card."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    name: str
    dataset_version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Semantic version X.Y.Z.")
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="Order-independent hash of all pairs.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    num_pairs: int = Field(ge=0)
    subsets: dict[str, SubsetInfo]
    lengths: dict[str, LengthStats] = Field(default_factory=dict, description="question / chosen / rejected.")
    generator: GeneratorInfo | None = None
    prompt: PromptInfo | None = None
    sources: list[SourceInfo] = Field(default_factory=list)
    history: list[VersionEntry] = Field(default_factory=list, description="Earlier versions, oldest first.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Build summary and other free-form notes.")
