"""The settings of a build (:class:`BuildConfig`): one model; its field names are the flags and the YAML
``--config`` keys, its descriptions and defaults the ``--help``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmpr.engines import ENGINE_REGISTRY
from mmpr.errors import UserError
from mmpr.pipeline.dropout_ntp import DEFAULT_RATIO
from mmpr.prompts import DEFAULT_TEMPLATE, get_template
from mmpr.schemas import Category, SamplingConfig
from mmpr.sources import SourceSpec


class BuildConfig(BaseModel):
    """Every setting of a build, with its default. The command line (:mod:`mmpr.build.cli`) fills it from its flags,
    which are named by these fields, as are the keys of a YAML ``--config`` file (see :mod:`mmpr.settings`)."""

    model_config = ConfigDict(extra="forbid")

    RENAMED: ClassVar[dict[str, str]] = {"max_pairs": "max_pairs_per_question", "ntp_ratio": "dropout_ntp_ratio"}
    """Old flag and YAML key names -> the fields they stand for (they still work, with a deprecation line)."""

    model: str = Field(description="Model path, Hub id, or tiny:<family> for a tiny offline model (tiny:qwen2_vl, "
                       "tiny:llava, tiny:internvl, ...).")
    sources: list[SourceSpec] = Field(min_length=1)
    out: Path = Field(description="Output folder: the dataset, plus its resumable work in .mmpr-work/.")
    engine: str = Field(default="vllm", description=f"{', '.join(ENGINE_REGISTRY.names())}; ray-llm samples with "
                        "ray.data.llm's vLLM processor over a Ray cluster (engine_args become its engine_kwargs).")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="Passed to the engine (vllm.LLM args; "
                                        "openai: endpoints, api_key, concurrency, max_retries).")
    name: str | None = Field(default=None, description="Dataset name (default: the output folder's name).")
    version: str | None = Field(default=None, description="X.Y.Z (default 1.0.0, or next on the Hub with --push).")
    prompt: str = Field(default=DEFAULT_TEMPLATE, description="Prompt template (mmpr.prompts).")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    max_pairs_per_question: int = Field(default=15, ge=1, description="Pairs per question and kind.")
    dropout_ntp_ratio: float = Field(default=DEFAULT_RATIO, gt=0, lt=1,
                                     description="DropoutNTP: share of the chosen words kept.")
    correctness_skip_categories: list[Category] = Field(
        default_factory=lambda: ["general_vqa", "document"],
        description="Categories whose rule-based judging is unreliable: they get DropoutNTP pairs instead.")
    batch_size: int = Field(default=64, ge=1, description="Questions per engine call and per saved chunk.")
    shard: str = Field(default="0/1", pattern=r"^\d+/\d+$", description="i/N: build the i-th of N disjoint parts "
                       "(join them with `python -m mmpr.build merge`).")
    release_out: Path | None = Field(default=None, description="Also write the MMPR release layout here.")

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, name: str) -> str:
        get_template(name)
        return name

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        return ENGINE_REGISTRY.canonical(name)

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, shard: str) -> str:
        i, n = map(int, shard.split("/"))
        if not 0 <= i < n:
            raise UserError(f"shard {shard}: need 0 <= i < N")
        return shard

    def fingerprint(self) -> dict:
        """The settings that decide which pairs come out (not where they go or how the engine is run)."""
        return self.model_dump(mode="json", include={"model", "sources", "prompt", "sampling", "engine",
                                                     "max_pairs_per_question", "dropout_ntp_ratio",
                                                     "correctness_skip_categories", "batch_size", "shard"})

