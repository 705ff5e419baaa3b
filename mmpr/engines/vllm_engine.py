"""vLLM in the same process: batched chat generation with per-request seeds.

Engine arguments (``tensor_parallel_size``, ``data_parallel_size``, ``max_model_len``, ``dtype``,
``gpu_memory_utilization``, ...) go to ``vllm.LLM`` unchanged.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from mmpr.chat import conversation, fill_images
from mmpr.engines.base import Completion, EngineError, Request, Result, error_code
from mmpr.images import open_rgb
from mmpr.schemas import SamplingConfig


class VLLMEngine:
    name = "vllm"

    def __init__(self, model: str, *, max_images: int = 4, **engine_args: Any):
        import torch

        if not torch.cuda.is_available():
            # vLLM's CPU build: keep the KV cache small (it would take most of the RAM), run in this process
            # (a spawned engine costs ~25 s to start) and skip graph compilation.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            engine_args.setdefault("distributed_executor_backend", "uni")
            engine_args.setdefault("enforce_eager", True)
            # a chunked prefill of a seeded request rewinds its generator, which CPU generators cannot do
            engine_args.setdefault("enable_chunked_prefill", False)
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
        return fill_images(conversation(request.question, len(request.images), prefix=request.prefix),
                           request.images, lambda path: {"type": "image_pil", "image_pil": open_rgb(path)})

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
                self._abort_unfinished()
                outs = [self._one(r, sampling) for r in group]
            for i, out in zip(index, outs, strict=True):
                results[i] = out
        return results  # type: ignore[return-value]

    def _abort_unfinished(self) -> None:
        """Drop the requests a failed call left in the engine; it would otherwise wait for them forever."""
        engine = self.llm.llm_engine
        pending = list(engine.output_processor.request_states)
        if pending:
            engine.abort_request(pending, internal=True)

    def _one(self, request: Request, sampling: SamplingConfig) -> Result:
        try:
            return self._chat([request], sampling)[0]
        except Exception as e:  # the engine's own message says what is wrong (too long, bad image...)
            self._abort_unfinished()
            return EngineError(error_code(str(e)), f"{type(e).__name__}: {e}")

    def close(self) -> None:
        del self.llm
        gc.collect()
