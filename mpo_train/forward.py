"""Sequence log-probs of chosen and rejected responses: one forward per micro-batch.

**packed** (default): each pair is laid out as ``[prompt | chosen | rejected]`` with an attention mask that lets
the chosen tokens see the prompt and themselves, and the rejected tokens see the prompt and themselves (not the
chosen), and with positions that restart after the prompt (Qwen2-VL's 3-D mrope positions included). The
image is encoded once and the prompt (image tokens + question, most of an MMPR pair) is computed once, where the
usual two-sequence forward does both twice. All pairs of a micro-batch go in one row.

**plain**: ``[prompt | chosen]`` and ``[prompt | rejected]`` as two rows (the image encoded twice): the reference
the packed layout is checked against, and the fallback for attention backends that take no custom mask.

Only the logits at the positions that predict response tokens are computed (``logits_to_keep``), and their
log-softmax is recomputed in backward chunk by chunk instead of being stored in float32.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from mpo_train.data import TEXT_KEYS, EncodedPair

log = logging.getLogger(__name__)
PACKED_BACKENDS = ("sdpa", "eager")
_CHUNK = 2048


@dataclass
class Logps:
    chosen: torch.Tensor      # [B] summed log-probs of the chosen responses
    rejected: torch.Tensor    # [B]
    chosen_nll: torch.Tensor  # scalar: token-mean NLL of the chosen responses
    tokens: int               # tokens the forward processed


def unwrap(model):
    """The transformers model under DDP/FSDP/DeepSpeed wrappers and peft."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _mm(pairs: list[EncodedPair], device, repeat: int = 1) -> dict[str, torch.Tensor]:
    keys = sorted({k for p in pairs for k in p.mm})
    out = {}
    for key in keys:
        tensors = [p.mm[key] for p in pairs if key in p.mm]
        out[key] = torch.cat(tensors * repeat).to(device)
    return out


def _image_token_id(model) -> int | None:
    config = unwrap(model).config
    return getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)


def _token_logps(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[targets] in float32, chunk by chunk, recomputed in backward (no stored [N, V] floats)."""

    def chunk_logps(chunk: torch.Tensor, chunk_targets: torch.Tensor) -> torch.Tensor:
        chunk = chunk.float()
        return chunk.gather(-1, chunk_targets[:, None])[:, 0] - torch.logsumexp(chunk, dim=-1)

    out = []
    for chunk, chunk_targets in zip(logits.split(_CHUNK), targets.split(_CHUNK), strict=True):
        if chunk.requires_grad:
            out.append(checkpoint(chunk_logps, chunk, chunk_targets, use_reentrant=False))
        else:
            out.append(chunk_logps(chunk, chunk_targets))
    return torch.cat(out)


def _reduce(token_logps: torch.Tensor, lengths_c: list[int], lengths_r: list[int]) -> Logps:
    sums = token_logps.split([n for pair in zip(lengths_c, lengths_r, strict=True) for n in pair])
    chosen = torch.stack([s.sum() for s in sums[0::2]])
    rejected = torch.stack([s.sum() for s in sums[1::2]])
    chosen_nll = -torch.cat(sums[0::2]).sum() / max(sum(lengths_c), 1)
    return Logps(chosen, rejected, chosen_nll, 0)


def _mrope_positions(base, pair: EncodedPair, image_token: int | None, device) -> torch.Tensor:
    """3-D positions of ``[prompt | longer response]`` from the model's own rope index, shape [3, n]."""
    longer = pair.chosen if len(pair.chosen) >= len(pair.rejected) else pair.rejected
    ids = torch.tensor([pair.prompt + longer], device=device)
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    for key in ("image_grid_thw", "video_grid_thw", "second_per_grid_ts"):
        if key in pair.mm and _accepts(base.get_rope_index, key):
            kwargs[key] = pair.mm[key].to(device)
    if _accepts(base.get_rope_index, "mm_token_type_ids"):
        kwargs["mm_token_type_ids"] = (ids == image_token).long()
    positions, _ = base.get_rope_index(**kwargs)
    return positions[:, 0]


def packed_logps(model, pairs: list[EncodedPair]) -> Logps:
    """The packed forward (see module doc)."""
    inner = unwrap(model)
    device = next(inner.parameters()).device
    image_token = _image_token_id(model)
    base = getattr(inner, "model", None)
    mrope = base is not None and hasattr(base, "get_rope_index")
    ids, positions, keep, targets = [], [], [], []
    offset = 0
    n = sum(p.length for p in pairs)
    allow = torch.zeros(n, n, dtype=torch.bool)
    for p in pairs:
        P, C, R = len(p.prompt), len(p.chosen), len(p.rejected)
        a, c, r = offset, offset + P, offset + P + C
        allow[a:c, a:c] = torch.ones(P, P, dtype=torch.bool).tril()
        allow[c:r, a:c] = True
        allow[c:r, c:r] = torch.ones(C, C, dtype=torch.bool).tril()
        allow[r:r + R, a:c] = True
        allow[r:r + R, r:r + R] = torch.ones(R, R, dtype=torch.bool).tril()
        ids += p.prompt + p.chosen + p.rejected
        if mrope:
            pos = _mrope_positions(base, p, image_token, device)
            positions.append(torch.cat([pos[:, :P + C], pos[:, P:P + R]], dim=1))
        else:
            positions.append(torch.cat([torch.arange(P + C), torch.arange(P, P + R)]).to(device))
        # the last prompt token predicts the first token of both responses
        keep += [*range(c - 1, r - 1), c - 1, *range(r, r + R - 1)]
        targets += p.chosen + p.rejected
        offset += p.length
    input_ids = torch.tensor([ids], device=device)
    backend = inner.config.get_text_config()._attn_implementation
    if backend == "eager":
        mask = torch.zeros(1, 1, n, n, dtype=next(inner.parameters()).dtype)
        mask = mask.masked_fill(~allow, torch.finfo(mask.dtype).min).to(device)
    else:
        mask = allow[None, None].to(device)
    position_ids = torch.cat(positions, dim=-1)[:, None] if mrope else torch.cat(positions)[None]
    kwargs = _mm(pairs, device)
    if image_token is not None and _accepts(inner.forward, "mm_token_type_ids") and mrope:
        kwargs["mm_token_type_ids"] = (input_ids == image_token).long()
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                   logits_to_keep=torch.tensor(keep, device=device), use_cache=False, **kwargs).logits[0]
    out = _reduce(_token_logps(logits, torch.tensor(targets, device=device)), [len(p.chosen) for p in pairs],
                  [len(p.rejected) for p in pairs])
    out.tokens = n
    return out


def plain_logps(model, pairs: list[EncodedPair]) -> Logps:
    """Two right-padded rows per pair, ``[prompt | chosen]`` then ``[prompt | rejected]`` (see module doc)."""
    inner = unwrap(model)
    device = next(inner.parameters()).device
    pad = getattr(inner.config.get_text_config(), "pad_token_id", None) or 0
    rows = [p.prompt + p.chosen for p in pairs] + [p.prompt + p.rejected for p in pairs]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = torch.tensor(row)
        attention[i, :len(row)] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    kwargs = _mm(pairs, device, repeat=2)
    image_token = _image_token_id(model)
    if image_token is not None and _accepts(inner.forward, "mm_token_type_ids"):
        kwargs["mm_token_type_ids"] = (input_ids == image_token).long()
    logits = model(input_ids=input_ids, attention_mask=attention, use_cache=False, **kwargs).logits
    picked, targets = [], []
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    for i, (p, response) in enumerate(zip(pairs + pairs, responses, strict=True)):
        P = len(p.prompt)
        picked.append(logits[i, P - 1:P - 1 + len(response)])
        targets += response
    token_logps = _token_logps(torch.cat(picked), torch.tensor(targets, device=device))
    per_row = token_logps.split([len(r) for r in responses])
    B = len(pairs)
    ordered = torch.cat([t for i in range(B) for t in (per_row[i], per_row[B + i])])
    out = _reduce(ordered, [len(p.chosen) for p in pairs], [len(p.rejected) for p in pairs])
    out.tokens = sum(len(r) for r in rows)
    return out


class SequenceLogps:
    """Chooses the forward: ``packed``, ``plain``, or ``auto`` (packed where the attention backend takes a custom
    mask, checked once against plain on the first batch; plain otherwise, with the reason in the log)."""

    def __init__(self, mode: str = "auto"):
        self.mode = mode
        self.checked = mode != "auto"
        self.reason = ""

    def __call__(self, model, pairs: list[EncodedPair]) -> Logps:
        if not self.checked:
            self._choose(model, pairs)
        return (packed_logps if self.mode == "packed" else plain_logps)(model, pairs)

    def _choose(self, model, pairs: list[EncodedPair]) -> None:
        self.checked = True
        backend = unwrap(model).config.get_text_config()._attn_implementation
        if backend not in PACKED_BACKENDS:
            self._fall_back(f"attention backend {backend!r} takes no custom attention mask")
            return
        with torch.no_grad():
            try:
                packed = packed_logps(model, pairs)
            except (RuntimeError, ValueError, TypeError) as e:
                self._fall_back(f"the packed forward failed on this model ({type(e).__name__}: {e})")
                return
            plain = plain_logps(model, pairs)
        diff = torch.cat([(packed.chosen - plain.chosen).abs(), (packed.rejected - plain.rejected).abs()]).max()
        scale = torch.cat([plain.chosen, plain.rejected]).abs().max().clamp(min=1.0)
        if diff / scale > 1e-2:
            self._fall_back(f"packed and plain log-probs differ on the first batch (max {diff:.4f})")
            return
        self.mode = "packed"
        self.reason = f"packed forward checked against plain on the first batch (max difference {diff:.2e})"
        log.info(self.reason)

    def _fall_back(self, reason: str) -> None:
        self.mode = "plain"
        self.reason = f"using the plain two-sequence forward: {reason}"
        log.warning(self.reason)


def dummy_image_inputs(processor) -> dict[str, torch.Tensor]:
    """Processor outputs for one small blank image: what :func:`vision_keepalive` feeds the vision tower."""
    from PIL import Image

    from mmpr.chat import conversation

    prompt = processor.apply_chat_template(conversation("", 1), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[Image.new("RGB", (56, 56), (128, 128, 128))], return_tensors="pt")
    return {k: v for k, v in inputs.items() if k not in TEXT_KEYS and isinstance(v, torch.Tensor)}


def vision_keepalive(model, image_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A zero that depends on every vision-tower parameter: added to the loss of a micro-batch without images,
    so that under ZeRO-3 / FSDP every rank gathers the same parameters in the same order (else the ranks whose
    batch has images wait forever for the others)."""
    inner = unwrap(model)
    device = next(inner.parameters()).device
    features = inner.get_image_features(**{k: v.to(device) for k, v in image_inputs.items()})
    return sum(t.float().sum() for t in _tensors(features)) * 0.0


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)
