"""transformers ``generate``: the fallback engine (no vLLM, small runs, tests).

Sampled requests run one at a time (each with its own seed; its ``n`` samples in one call); greedy requests,
whose answers do not depend on a seed, run ``batch_size`` at a time, left-padded."""

from __future__ import annotations

from typing import Any

from mmpr.chat import add_special_tokens, conversation
from mmpr.engines.base import Completion, EngineError, Request, Result
from mmpr.images import open_rgb
from mmpr.schemas import SamplingConfig


class TransformersEngine:
    name = "transformers"

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto", batch_size: int = 16,
                 **model_args: Any):
        import torch

        from mmpr.loading import load_processor, load_vlm

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = load_processor(model)
        self.model = load_vlm(model, dtype=dtype, **model_args).to(self.device)
        self.model.eval()
        self.dtype = next(p.dtype for p in self.model.parameters() if p.is_floating_point())
        text_config = getattr(self.model.config, "text_config", self.model.config)
        self.max_length = getattr(text_config, "max_position_embeddings", None)
        self.eos_ids = set(self._eos_ids())
        self.batch_size = batch_size

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        return ids + ([self.processor.tokenizer.eos_token_id] if self.processor.tokenizer.eos_token_id else [])

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        if sampling.temperature > 0:
            return [self._one(r, sampling) for r in requests]
        results: list[Result] = []
        for start in range(0, len(requests), self.batch_size):
            results += self._greedy_batch(requests[start:start + self.batch_size], sampling)
        return results

    def _greedy_batch(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        """Greedy answers of several plain requests in one left-padded ``generate``; anything unusual (a
        continuation, n > 1, no padding token, an unreadable image, a too-long prompt, a failing batch) goes one
        at a time."""
        return self._batched(requests, sampling) or [self._one(r, sampling) for r in requests]

    def _batched(self, requests: list[Request], sampling: SamplingConfig) -> list[Result] | None:
        """The batch's answers from one ``generate``, or None where it cannot be batched."""
        import torch

        tokenizer = self.processor.tokenizer
        if (len(requests) == 1 or tokenizer.pad_token_id is None
                or any(r.prefix is not None or r.n != 1 for r in requests)):
            return None
        try:
            # one list per text: processors that check images against texts (Gemma 3) refuse a flat list
            images = [[open_rgb(p) for p in r.images] for r in requests] if any(r.images for r in requests) else None
        except OSError:
            return None
        prompts = [self.processor.apply_chat_template(conversation(r.question, len(r.images)), tokenize=False,
                                                      add_generation_prompt=True) for r in requests]
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        try:
            inputs = self.processor(text=prompts, images=images, return_tensors="pt", padding=True,
                                    add_special_tokens=add_special_tokens(tokenizer, prompts[0])
                                    ).to(device=self.device, dtype=self.dtype)
        finally:
            tokenizer.padding_side = side
        width = inputs["input_ids"].shape[1]
        if self.max_length and width + 1 > self.max_length:
            return None
        max_new = min(sampling.max_tokens, self.max_length - width) if self.max_length else sampling.max_tokens
        with torch.inference_mode():
            try:
                out = self.model.generate(**inputs, do_sample=False, max_new_tokens=max_new,
                                          pad_token_id=tokenizer.pad_token_id)
            except (RuntimeError, ValueError):
                return None
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._completions(out[i:i + 1, width:], int(lengths[i])) for i in range(len(requests))]

    def _one(self, request: Request, sampling: SamplingConfig) -> Result:
        import torch

        cont = request.prefix is not None
        prompt = self.processor.apply_chat_template(
            conversation(request.question, len(request.images), prefix=request.prefix), tokenize=False,
            add_generation_prompt=not cont, continue_final_message=cont)
        try:
            images = [open_rgb(p) for p in request.images] or None
        except OSError as e:
            return EngineError("image_unreadable", str(e))
        # one list of images for the one text, as in training (a flat list reads as one image per sample to some
        # processors: LLaVA-OneVision would tile each image of a multi-image question as if it were alone)
        inputs = self.processor(text=[prompt], images=[images] if images else None, return_tensors="pt",
                                add_special_tokens=add_special_tokens(self.processor.tokenizer, prompt)
                                ).to(device=self.device, dtype=self.dtype)
        n_prompt = inputs["input_ids"].shape[1]
        if self.max_length and n_prompt + 1 > self.max_length:
            return EngineError("prompt_too_long", f"the prompt has {n_prompt} tokens; the model takes "
                                                  f"{self.max_length}")
        sample = sampling.temperature > 0
        kwargs = dict(do_sample=sample, num_return_sequences=request.n, max_new_tokens=sampling.max_tokens)
        if sample:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p,
                          top_k=sampling.top_k if sampling.top_k > 0 else None)
        if self.max_length:
            kwargs["max_new_tokens"] = min(sampling.max_tokens, self.max_length - n_prompt)
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(request.seed)
            try:
                out = self.model.generate(**inputs, **kwargs)
            except (RuntimeError, ValueError) as e:
                return EngineError("engine_error", f"{type(e).__name__}: {e}")
        return self._completions(out[:, n_prompt:], n_prompt)

    def _completions(self, generated, n_prompt: int) -> list[Completion]:
        completions = []
        pad = self.processor.tokenizer.pad_token_id
        for row in generated.tolist():
            ended = next((i for i, t in enumerate(row) if t in self.eos_ids), None)
            tokens = row[: ended] if ended is not None else [t for t in row if t != pad]
            completions.append(Completion(
                text=self.processor.tokenizer.decode(tokens, skip_special_tokens=True), prompt_tokens=n_prompt,
                completion_tokens=len(tokens) + (ended is not None), finish_reason="stop" if ended is not None
                else "length"))
        return completions

    def close(self) -> None:
        del self.model
