"""vLLM in the same process: batched chat generation with per-request seeds.

Engine arguments (``tensor_parallel_size``, ``data_parallel_size``, ``max_model_len``, ``dtype``,
``gpu_memory_utilization``, ...) go to ``vllm.LLM`` unchanged.
"""

from __future__ import annotations

import gc
from typing import Any

from mmpr.chat import conversation
from mmpr.engines.base import Completion, EngineError, Request, Result, error_code
from mmpr.images import open_rgb
from mmpr.schemas import SamplingConfig


class VLLMEngine:
    name = "vllm"

    def __init__(self, model: str, *, max_images: int = 4, **engine_args: Any):
        from vllm import LLM

        engine_args.setdefault("limit_mm_per_prompt", {"image": max_images, "video": 0})
        self.model = model
        self.llm = LLM(model=model, **engine_args)

    def _params(self, request: Request, sampling: SamplingConfig):
        from vllm import SamplingParams

        return SamplingParams(n=request.n, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k if sampling.top_k > 0 else 0, max_tokens=sampling.max_tokens,
                              seed=request.seed)

    @staticmethod
    def _messages(request: Request) -> list[dict]:
        messages = conversation(request.question, len(request.images), prefix=request.prefix)
        images = iter(request.images)
        for part in messages[0]["content"]:
            if part["type"] == "image":
                part.update(type="image_pil", image_pil=open_rgb(next(images)))
        return messages

    def _chat(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        cont = requests[0].prefix is not None
        outputs = self.llm.chat([self._messages(r) for r in requests], [self._params(r, sampling) for r in requests],
                                use_tqdm=False, add_generation_prompt=not cont, continue_final_message=cont)
        return [[Completion(text=c.text, prompt_tokens=len(o.prompt_token_ids or []),
                            completion_tokens=len(c.token_ids), finish_reason=c.finish_reason) for c in o.outputs]
                for o in outputs]

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        results: list[Result | None] = [None] * len(requests)
        # continuing a prefix is a per-call switch in vLLM: one call per kind of request
        for cont in (False, True):
            index = [i for i, r in enumerate(requests) if (r.prefix is not None) == cont]
            if not index:
                continue
            group = [requests[i] for i in index]
            try:
                outs = self._chat(group, sampling)
            except Exception:  # one bad request fails the whole call: find it by retrying one at a time
                outs = [self._one(r, sampling) for r in group]
            for i, out in zip(index, outs, strict=True):
                results[i] = out
        return results  # type: ignore[return-value]

    def _one(self, request: Request, sampling: SamplingConfig) -> Result:
        try:
            return self._chat([request], sampling)[0]
        except Exception as e:  # the engine's own message says what is wrong (too long, bad image...)
            return EngineError(error_code(str(e)), f"{type(e).__name__}: {e}")

    def close(self) -> None:
        del self.llm
        gc.collect()
