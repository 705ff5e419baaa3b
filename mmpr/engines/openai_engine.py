"""Any OpenAI-compatible chat server (``vllm serve``, SGLang, lmdeploy): several endpoints, bounded concurrency.

Requests are spread over the endpoints round-robin; an endpoint that cannot be reached passes its request to the
next. The ``openai`` client retries timeouts, 429s and 5xx answers with exponential backoff (``max_retries``).
Images travel inline as base64 data URLs. Continuing an assistant prefix and ``top_k`` use the vLLM/SGLang
extensions ``continue_final_message`` / ``add_generation_prompt`` and ``top_k`` in the request body.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
from pathlib import Path

from mmpr.chat import conversation, fill_images
from mmpr.engines.base import Completion, EngineError, Request, Result, error_code
from mmpr.errors import UserError
from mmpr.schemas import SamplingConfig


def data_url(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


class OpenAIEngine:
    name = "openai"

    def __init__(self, model: str, *, endpoints: list[str] | str, api_key: str = "EMPTY", concurrency: int = 32,
                 max_retries: int = 5, timeout: float = 600.0):
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        if not endpoints:
            raise UserError("the openai engine needs at least one endpoint, e.g. http://127.0.0.1:8000/v1")
        self.model, self.endpoints, self.api_key = model, endpoints, api_key
        self.concurrency, self.max_retries, self.timeout = concurrency, max_retries, timeout

    @staticmethod
    def _messages(request: Request) -> list[dict]:
        return fill_images(conversation(request.question, len(request.images), prefix=request.prefix),
                           request.images, lambda path: {"type": "image_url", "image_url": {"url": data_url(path)}})

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        return asyncio.run(self._generate(requests, sampling))

    async def _generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        from openai import AsyncOpenAI

        clients = [AsyncOpenAI(base_url=url, api_key=self.api_key, max_retries=self.max_retries,
                               timeout=self.timeout) for url in self.endpoints]
        semaphore = asyncio.Semaphore(self.concurrency)
        try:
            return await asyncio.gather(*(self._one(clients, i, r, sampling, semaphore)
                                          for i, r in enumerate(requests)))
        finally:
            for client in clients:
                await client.close()

    async def _one(self, clients, index: int, request: Request, sampling: SamplingConfig,
                   semaphore: asyncio.Semaphore) -> Result:
        import openai

        cont = request.prefix is not None
        try:
            messages = self._messages(request)
        except OSError as e:
            return EngineError("image_unreadable", str(e))
        body = {"add_generation_prompt": not cont, "continue_final_message": cont}
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        error: EngineError | None = None
        async with semaphore:
            for attempt in range(len(clients)):
                client = clients[(index + attempt) % len(clients)]
                try:
                    response = await client.chat.completions.create(
                        model=self.model, messages=messages, n=request.n, temperature=sampling.temperature,
                        top_p=sampling.top_p, max_tokens=sampling.max_tokens, seed=request.seed, extra_body=body)
                except openai.APIConnectionError as e:
                    error = EngineError("engine_unreachable", f"{client.base_url}: {e}")
                    continue
                except openai.InternalServerError as e:  # the server is there and failed: another may not
                    error = EngineError("server_error", f"{client.base_url}: HTTP {e.status_code}: {e.message}")
                    continue
                except openai.BadRequestError as e:
                    code = error_code(str(e))
                    return EngineError(code if code == "prompt_too_long" else "bad_request", str(e))
                except openai.APIError as e:
                    return EngineError("engine_error", f"{type(e).__name__}: {e}")
                return self._completions(response, request.n)
        return error  # type: ignore[return-value]

    @staticmethod
    def _completions(response, n: int) -> list[Completion]:
        usage = response.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        # servers report the completion tokens of all n choices together
        per_choice = round(usage.completion_tokens / max(n, 1)) if usage else 0
        return [Completion(text=c.message.content or "", prompt_tokens=prompt_tokens, completion_tokens=per_choice,
                           finish_reason=c.finish_reason) for c in sorted(response.choices, key=lambda c: c.index)]

    def close(self) -> None:
        pass
