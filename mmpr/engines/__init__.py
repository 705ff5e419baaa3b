"""Sampling engines behind one protocol: ``vllm`` (in-process), ``openai`` (any compatible server) and
``transformers`` (fallback)."""

from __future__ import annotations

from typing import Any

from mmpr.engines.base import Completion, Engine, EngineError, Request, Result, request_seed

ENGINES = ("vllm", "openai", "transformers")


def make_engine(name: str, model: str, **args: Any) -> Engine:
    """Start engine ``name`` on ``model`` with engine-specific ``args``."""
    if name == "vllm":
        from mmpr.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model, **args)
    if name == "openai":
        from mmpr.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(model, **args)
    if name == "transformers":
        from mmpr.engines.hf_engine import TransformersEngine

        return TransformersEngine(model, **args)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Completion", "Engine", "EngineError", "Request", "Result", "make_engine", "request_seed"]
