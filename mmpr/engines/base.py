"""The engine protocol: sample ``n`` chat completions per request, each request independently.

A request is a question with images, optionally an assistant ``prefix`` to continue (DropoutNTP continues a
truncated answer without its image). Every request carries its own seed, so a request's samples do not depend
on what else is in the batch, and a resumed build draws the same samples as an uninterrupted one. A request
that fails (prompt too long, engine error) yields an :class:`EngineError` for that request alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from mmpr.schemas import SamplingConfig


@dataclass(frozen=True)
class Request:
    key: str
    question: str
    images: tuple[str, ...] = ()
    n: int = 1
    seed: int = 0
    prefix: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


@dataclass(frozen=True)
class EngineError:
    code: str
    message: str


Result = list[Completion] | EngineError


class Engine(Protocol):
    name: str

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        """One result per request, in order."""
        ...

    def close(self) -> None: ...


def request_seed(base_seed: int, key: str) -> int:
    """A 31-bit seed for one request, derived from the build seed and the request's key."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{key}".encode()).digest()[:4], "big") >> 1


_TOO_LONG = ("maximum context length", "max_model_len", "longer than the maximum", "too long")


def error_code(message: str) -> str:
    """``prompt_too_long`` when an engine's error message says so, else ``engine_error``."""
    lowered = message.lower()
    return "prompt_too_long" if any(t in lowered for t in _TOO_LONG) else "engine_error"
