"""Sampling engines behind one protocol: ``vllm`` (in-process), ``openai`` (any compatible server),
``transformers`` (fallback; ``hf`` is its old name) and ``ray-llm`` (vLLM on ``ray.data.llm``'s processor, for
builds on a Ray cluster)."""

from __future__ import annotations

from typing import Any

from mmpr.engines.base import Completion, Engine, EngineError, Request, Result, request_seed
from mmpr.registry import Registry

ENGINE_REGISTRY: Registry[type[Engine]] = Registry("engine")
ENGINE_REGISTRY.register("vllm", "mmpr.engines.vllm_engine:VLLMEngine", description="vLLM in-process")
ENGINE_REGISTRY.register("openai", "mmpr.engines.openai_engine:OpenAIEngine",
                         description="any OpenAI-compatible server (vllm serve, SGLang, lmdeploy)")
ENGINE_REGISTRY.register("transformers", "mmpr.engines.hf_engine:TransformersEngine",
                         description="transformers generate (fallback)")
ENGINE_REGISTRY.register("ray-llm", "mmpr.build.ray_llm:ProcessorEngine",
                         description="vLLM on ray.data.llm's processor over a Ray cluster (builds only)")
ENGINE_REGISTRY.alias("hf", "transformers", deprecated="transformers")


def make_engine(name: str, model: str, **args: Any) -> Engine:
    """Start engine ``name`` on ``model`` with engine-specific ``args``."""
    return ENGINE_REGISTRY.get(name)(model, **args)


__all__ = ["ENGINE_REGISTRY", "Completion", "Engine", "EngineError", "Request", "Result", "make_engine",
           "request_seed"]
