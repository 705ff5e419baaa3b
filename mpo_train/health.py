"""Is the run healthy? The failure modes users of preference training report, caught while training:

- gibberish or endless repetition after DPO: a greedy generation probe on held-out prompts with the
  chain-of-thought prompt, scored for unparsable answers, length and repetition (:func:`probe_scores`);
- the DPO failure mode where the log-prob of the *chosen* responses falls steadily (both responses are pushed
  down, the rejected one faster), reward margins that explode, and margins that stay at 0 (:class:`TrendWatch`);
- saved weights that are all zeros (a ZeRO-3 save without gathering) or NaN (:func:`check_weights`).

The scoring functions are pure; :func:`generate_probe` and :func:`check_saved_model` run the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmpr.answers import extract_final_answer

log = logging.getLogger(__name__)

REPETITION_N = 4
WINDOW = 5             # optimizer steps the trends are judged over
CHOSEN_DROP = 2.0      # nats: chosen log-ratio below -this at every step of the window, and falling
MARGIN_LIMIT = 20.0    # reward units (beta x nats): a margin above this, and still growing
DEAD_MARGIN = 1e-6     # reward units: a margin this close to 0 at every step of the window learns nothing


def repetition_score(text: str, n: int = REPETITION_N) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier one: 0 for no repetition, near 1 for a loop."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def probe_scores(responses: list[str], lengths: list[int]) -> dict[str, float]:
    """The probe's metrics: share of responses with no parsable final answer (``mmpr.answers``), mean length in
    tokens, mean repetition score."""
    n = max(len(responses), 1)
    return {"probe_unparsable_rate": sum(extract_final_answer(r) is None for r in responses) / n,
            "probe_mean_length": sum(lengths) / n,
            "probe_repetition": sum(repetition_score(r) for r in responses) / n}


def _slope(values: list[float]) -> float:
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    var = sum((x - mean_x) ** 2 for x in range(n))
    return sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / var if var else 0.0


@dataclass
class TrendWatch:
    """Watches per-step ``rewards_chosen`` (beta x the chosen log-ratio, policy vs reference) and
    ``rewards_margin``; :meth:`observe` returns the warnings a step raises (each kind once until it clears)."""

    beta: float
    window: int = WINDOW
    chosen_drop: float = CHOSEN_DROP
    margin_limit: float = MARGIN_LIMIT
    dead_margin: float = DEAD_MARGIN
    chosen: list[float] = field(default_factory=list)
    margin: list[float] = field(default_factory=list)
    active: set[str] = field(default_factory=set)

    def observe(self, step: int, metrics: dict[str, float]) -> list[str]:
        self.chosen = (self.chosen + [metrics["rewards_chosen"] / self.beta])[-self.window:]
        self.margin = (self.margin + [metrics["rewards_margin"]])[-self.window:]
        if len(self.chosen) < self.window:
            return []
        found = {}
        if max(self.chosen) < -self.chosen_drop and _slope(self.chosen) < 0:
            found["chosen_falling"] = (
                f"step {step}: the log-prob of the chosen responses has fallen for {self.window} steps (now "
                f"{self.chosen[-1]:.1f} nats below the reference): the DPO failure mode, where both responses are "
                "pushed down; lower the learning rate or keep the generation loss (loss_weights w_gen > 0)")
        if self.margin[-1] > self.margin_limit and _slope(self.margin) > 0:
            found["margin_exploding"] = (
                f"step {step}: the reward margin is {self.margin[-1]:.1f} and still growing (limit "
                f"{self.margin_limit}): the policy is drifting far from the reference; lower the learning rate or "
                "raise beta")
        if max(abs(m) for m in self.margin) < self.dead_margin:
            found["margin_dead"] = (
                f"step {step}: the reward margin has stayed at 0 for {self.window} steps: chosen and rejected get "
                "the same reward, so the preference terms learn nothing (loss at ln 2); check that the pairs' "
                "responses differ and that the learning rate is not 0")
        fresh = [message for kind, message in found.items() if kind not in self.active]
        self.active = set(found)
        return fresh


def _listed(name: str, names: set[str]) -> bool:
    """``name`` is one of ``names`` up to a wrapper's prefix (``model.``, ``base_model.model.``, ...)."""
    return any(n == name or n.endswith("." + name) or name.endswith("." + n) for n in names)


def check_weights(tensors: dict[str, torch.Tensor], zero_at_start: set[str] = frozenset()) -> list[str]:
    """Problems of a saved state dict: NaN/inf anywhere, an empty tensor, or a matrix (>= 2-D) that is all zeros
    (a ZeRO-3 save that did not gather writes them so) unless it was all zeros before training too (some
    embeddings start at zero and stay so when frozen). Empty list when healthy."""
    problems = []
    if not tensors:
        return ["no tensors"]
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            problems.append(f"{name}: NaN or inf values")
        elif t.numel() == 0:
            problems.append(f"{name}: empty (a sharded parameter saved without gathering)")
        elif t.ndim >= 2 and not t.any() and not _listed(name, zero_at_start):
            problems.append(f"{name}: all zeros")
    return problems


def _probe_inputs(processor, question: str, images, template_options: dict | None = None):
    from mmpr.chat import add_special_tokens, conversation
    from mmpr.prompts import DEFAULT_TEMPLATE, get_template

    prompt = get_template(DEFAULT_TEMPLATE).render(question)
    text = processor.apply_chat_template(conversation(prompt, len(images)), add_generation_prompt=True,
                                         tokenize=False, **(template_options or {}))
    tokenizer = getattr(processor, "tokenizer", processor)
    return prompt, processor(text=[text], images=list(images) or None, return_tensors="pt",
                             add_special_tokens=add_special_tokens(tokenizer, text))


@torch.no_grad()
def generate_probe(model, processor, prompts: list[tuple[str, list]], *, max_new_tokens: int,
                   synced: bool = False, template_options: dict | None = None) -> list[dict]:
    """Greedy answers to ``prompts`` ((question, images) pairs) with the chain-of-thought prompt, one at a time,
    rendered with the chat-template options the run trains with; each sample: prompt (the question in the CoT
    template), response, tokens (generated), repetition."""
    device = next(model.parameters()).device
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    tokenizer = getattr(processor, "tokenizer", processor)
    samples = []
    for question, images in prompts:
        prompt, inputs = _probe_inputs(processor, question, images, template_options)
        inputs = inputs.to(device=device, dtype=dtype)  # floating outputs only: pixels in the model's dtype
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                             synced_gpus=synced, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        new = out[0, inputs["input_ids"].shape[1]:]
        response = tokenizer.decode(new, skip_special_tokens=True)
        samples.append({"prompt": prompt, "response": response, "tokens": int(new.numel()),
                        "repetition": repetition_score(response)})
    return samples


def zero_parameters(model) -> set[str]:
    """Names of the parameters that are all zeros (before training: the ones :func:`check_weights` excuses)."""
    return {name for name, p in model.named_parameters() if p.ndim >= 2 and p.numel() and not p.any()}


# problem text of check_weights / check_saved_model -> what to do about it
_ADVICE = (("NaN or inf", "the training diverged: lower the learning rate and check the run's metrics.jsonl"),
           ("all zeros", "a sharded save (ZeRO-3 / FSDP) that was not gathered: check the accelerate config"),
           ("empty", "a sharded save (ZeRO-3 / FSDP) that was not gathered: check the accelerate config"),
           ("does not load and generate", "the weights were saved but do not reload and generate as written: "
                                          "load them with from_pretrained to see the error in full"),
           ("no .safetensors", "nothing was saved: check the disk and the run's train.log"),
           ("generated no tokens", "the model reloads but says nothing: check the probe samples in probe/"))


def saved_model_advice(problems: list[str]) -> str:
    """What to do about the problems :func:`check_saved_model` found, for each kind of cause once."""
    found = [advice for needle, advice in _ADVICE if any(needle in p for p in problems)]
    return "; ".join(dict.fromkeys(found)) or "check the run's train.log"


def check_saved_model(folder: Path, processor, prompt: tuple[str, list] | None,
                      zero_at_start: set[str] = frozenset(), *, dtype: torch.dtype = torch.float32) -> list[str]:
    """Problems of a saved model folder: its weight files (:func:`check_weights`), then, when it holds a full
    model, whether it loads with ``from_pretrained`` in ``dtype`` (the one the run trained in) and generates.
    Empty list when healthy."""
    from safetensors.torch import load_file

    from mmpr.loading import load_vlm

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("adapter/*.safetensors"))
    if not files:
        return [f"{folder}: no .safetensors weights"]
    problems = []
    for path in files:
        problems += [f"{path.name}: {p}" for p in check_weights(load_file(path), zero_at_start)]
    if problems or not (folder / "config.json").exists():
        return problems
    try:
        model = load_vlm(folder, dtype=dtype).eval()
        question, images = prompt or ("What is 2 + 2?", [])
        sample = generate_probe(model, processor, [(question, images)], max_new_tokens=4)[0]
    except Exception as e:  # any failure to load or run is the finding, reported with its cause
        return [f"{folder}: does not load and generate ({type(e).__name__}: {e})"]
    if sample["tokens"] == 0:
        problems.append(f"{folder}: generated no tokens")
    return problems
