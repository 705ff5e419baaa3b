"""One typed config for a training run: every default in one place, YAML recipes, ``key=value`` overrides.

Unknown keys are errors that list the valid ones, so a typo in a recipe never trains with a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmpr.errors import UserError
from mmpr.settings import flag_of, given_twice, parse_pairs, read_yaml_mapping, settings_error, yaml_lines


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | str = Field(
        default=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names (or 'all-linear') that get adapters.")
    save_merged: bool = Field(default=True, description="Also save the merged full model (loads with "
                                                        "from_pretrained, no peft needed).")


class TrainConfig(BaseModel):
    """MPO training; defaults are the paper's InternVL2-8B recipe where it has one
    (Wang et al., 2024, arXiv 2411.10442, experiments: implementation details)."""

    model_config = ConfigDict(extra="forbid")

    # what to train, on what
    model: str = Field(description="Model path, Hub id, or tiny:<family>.")
    data: list[str] = Field(min_length=1, description="mmpr dataset folders, Hub ids, or MMPR release folders.")
    subsets: list[str] | None = Field(default=None, description="Only these subsets (configs) of the data.")
    limit: int | None = Field(default=None, ge=1, description="Use at most this many pairs.")
    output_dir: Path

    # the MPO objective
    beta: float = Field(default=0.1, gt=0)
    loss_weights: tuple[float, float, float] = Field(default=(0.8, 0.2, 1.0), description="(w_pref DPO, w_qual BCO, "
                                                     "w_gen SFT); e.g. (1, 0, 0) is DPO alone.")
    reference: str = Field(
        default="online", description="online: a frozen copy runs every step; precomputed: one pass before "
        "training, cached on disk, no second model in memory; lora_base: the policy with its adapters disabled "
        "(the kinds of mpo_train.reference.REFERENCES); with loss_weights [0, 0, w] none is loaded.")

    # optimisation
    learning_rate: float = Field(default=5e-6, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    num_epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps; overrides num_epochs.")
    per_device_batch_size: int = Field(default=1, ge=1, description="Pairs per micro-batch on each device.")
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    seed: int = 42

    # sequences and the forward
    max_length: int = Field(default=6144, ge=16, description="Tokens of the prompt (images included) plus one "
                            "response.")
    truncate_responses: bool = Field(default=True, description="Cut responses that overflow max_length at the end "
                                     "(the prompt and its image tokens are never cut); off: skip such pairs.")
    max_image_pixels: int | None = Field(default=None, ge=1, description="Skip (and count) pairs with an image of "
                                         "more pixels than this, width x height, before it is decoded; unset: "
                                         "$MMPR_MAX_IMAGE_PIXELS, else PIL's 89,478,485.")
    chat_template_options: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the chat template when pairs are encoded, e.g. "
        "{enable_thinking: false} for Qwen3 / Qwen3.5 / Gemma 4 (the prompt then ends as at inference without "
        "thinking).")
    forward: Literal["auto", "packed", "plain"] = Field(
        default="auto", description="packed: prompt + chosen + rejected in one sequence, the image encoded and the "
        "prompt computed once; plain: two sequences per pair; auto: packed, checked against plain (1e-3 nats per "
        "token) on every micro-batch with an image-shape signature not seen before, plain from the first that differs.")
    attn_implementation: str = Field(default="sdpa", description="An attention backend of "
                                     "mpo_train.attention.ATTENTION_BACKENDS, or a kernel from the Hub (org/name).")
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    gradient_checkpointing: bool = True
    freeze_vision_tower: bool = False
    freeze_projector: bool = False
    lora: LoraSettings | None = None
    num_workers: int = Field(default=2, ge=0)

    # bookkeeping
    eval_fraction: float = Field(default=0.0, ge=0, lt=1, description="Share of pairs held out to measure reward "
                                 "accuracy.")
    eval_steps: int | None = Field(default=None, ge=1, description="Evaluate every this many steps (and at the end).")
    probe_prompts: int = Field(default=4, ge=0, description="Held-out prompts (eval_fraction) answered greedily "
                               "with the CoT prompt every eval_steps: unparsable rate, length and repetition logged, "
                               "samples written to probe/.")
    probe_max_new_tokens: int = Field(default=256, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    save_steps: int | None = Field(default=None, ge=1, description="Checkpoint (model, optimizer, "
                                      "state) every this many optimizer steps and at the end; unset: no checkpoint "
                                      "(the final model is always saved).")
    save_total_limit: int = Field(default=2, ge=1)
    report_to: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list)
    run_name: str | None = None

    @property
    def sft_only(self) -> bool:
        """Only the SFT term trains (``loss_weights=[0, 0, w]``): no reference model, and supervised rows (no
        rejected answer) are admitted."""
        return self.loss_weights[0] == self.loss_weights[1] == 0

    @field_validator("attn_implementation")
    @classmethod
    def _known_attention(cls, value: str) -> str:
        """A backend of the registry, checked with the settings, not when the model loads after the data is
        prepared (an unknown one lists the known ones)."""
        from mpo_train import attention

        attention.backend(value)
        return value

    @field_validator("reference")
    @classmethod
    def _known_reference(cls, value: str) -> str:
        from mpo_train.reference import REFERENCES

        return REFERENCES.canonical(value)

    @model_validator(mode="after")
    def _coherent(self) -> TrainConfig:
        from mpo_train.reference import REFERENCES

        refusal = REFERENCES.get(self.reference).refusal(self)
        if refusal:
            raise ValueError(f"reference: {self.reference} {refusal}")
        if all(w == 0 for w in self.loss_weights):
            raise ValueError("loss_weights are all zero")
        return self


class ConfigError(UserError):
    pass


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        child = data.get(key)
        if child is None:
            child = data[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {key} is not a group of settings")
        data = child
    data[last] = value


def load_config(path: str | Path | None = None, overrides: list[str] = (),
                flags: Mapping[str, Any] | None = None) -> TrainConfig:
    """A recipe file (YAML) with ``key=value`` overrides (dotted for nested keys, values parsed as YAML) and
    ``flags`` (field name -> value, from ``--field-name`` flags) over it; a key set both ways is refused."""
    data: dict[str, Any] = {}
    where, origins = "overrides", {}
    if path is not None:
        where = str(path)
        data, origins = read_yaml_mapping(path, "--config"), yaml_lines(path)
    pairs = parse_pairs(overrides, "override")
    for key, value in (flags or {}).items():
        if key in pairs:
            raise ConfigError(given_twice(key))
        _set(data, key, value)
        origins[key] = flag_of(key)
    for key, value in pairs.items():
        _set(data, key, value)
        origins[key] = "override"
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(settings_error(e, where, TrainConfig, origins=origins)) from e
