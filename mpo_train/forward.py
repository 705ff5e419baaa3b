"""Sequence log-probs of chosen and rejected responses: one forward per micro-batch.

**packed** (default): each pair is one row ``[prompt | chosen | rejected]`` of a padded batch, with a per-row
attention mask that lets the chosen tokens see the prompt and themselves, and the rejected tokens see the prompt
and themselves (not the chosen), and with positions that restart after the prompt (Qwen2-VL's 3-D mrope
positions included). The image is encoded once and the prompt (image tokens + question, most of an MMPR pair) is
computed once, where the usual two-sequence forward does both twice. Pairs never attend to each other, so the
cost grows linearly with the number of pairs in the micro-batch (a row is as long as one pair).

The rows are aligned: prompts are left-padded to end at the same column and the chosen region is padded to the
longest chosen response, so the positions that predict response tokens are the same columns in every row and
``logits_to_keep`` computes logits only there (and at the padding inside the response regions).

Layer types (the text config's ``layer_types``) each get their own mask, passed as a mapping layer type -> mask:
sliding-window layers (Gemma 3: 5 of 6) keep the segment rule AND their window, chunked-attention layers (Llama 4)
AND their chunk, both measured in positions (which restart after the prompt, so a window never spans the other
response); image tokens see their whole image where the family attends bidirectionally within an image (Gemma 3's
``token_type_ids``, Gemma 4's ``mm_token_type_ids``), as in the model's own forward. Linear-attention layers
(Qwen3.5's Gated DeltaNet) and other recurrent layers carry a state along the row that no mask stops: their models
take the plain forward, decided from the config (:func:`packed_refusal`).

Attention backends (``attn_implementation``, registered in :mod:`mpo_train.attention`) that take the per-row mask:

- ``sdpa``: a boolean [B, 1, L, L] mask; memory B x L^2 bits, the default on CPU and a good choice on GPU.
- ``eager``: the same mask as additive floats; the slowest, for debugging and models without sdpa.
- ``flex_attention``: a block-sparse ``BlockMask`` built from the [prompt | chosen | rejected] segments: blocks
  that are fully masked (chosen x rejected, the padding, the upper triangle) are skipped, nothing of size L^2 is
  materialised, and the kernel is compiled for the GPU. The backend to pick on a GPU for long MMPR rows. On CPU
  (torch 2.13) its forward runs and matches sdpa, but its backward raises ``NotImplementedError``: there it
  serves the reference pass only.

Flash-attention backends take no custom mask: they fall back to **plain**.

**plain**: ``[prompt | chosen]`` and ``[prompt | rejected]`` as two rows (the image encoded twice): the reference
the packed layout is checked against, and the fallback for attention backends that take no custom mask.

Both hand the LM head's hidden states to :mod:`mpo_train.logprobs`, which scores the response tokens chunk by
chunk: no [tokens x vocab] logits, in the policy pass, the reference passes and the SFT term alike.
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass

import torch

from mmpr.errors import UserError
from mpo_train.attention import backend as registered_backend
from mpo_train.data import TEXT_KEYS, EncodedPair
from mpo_train.logprobs import captured_hidden, model_token_logps, unwrap

log = logging.getLogger(__name__)
PROMPT, CHOSEN, REJECTED, PAD = 0, 1, 2, 3


@dataclass
class Logps:
    chosen: torch.Tensor      # [B] summed log-probs of the chosen responses
    rejected: torch.Tensor    # [B]
    chosen_nll: torch.Tensor  # scalar: token-mean NLL of the chosen responses
    tokens: int               # tokens the forward processed (padding included)


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def model_dtype(model) -> torch.dtype:
    """The dtype of the model's floating weights: what floating processor outputs are cast to (Llama 4's image
    processor returns bf16 pixels, others fp32; the model may run in either)."""
    return next(p.dtype for p in unwrap(model).parameters() if p.is_floating_point())


def _pad_to(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``tensor`` zero-padded at the end of every dim but the first to ``shape[1:]``."""
    pad = []
    for have, want in zip(reversed(tensor.shape[1:]), reversed(shape), strict=True):
        pad += [0, want - have]
    return torch.nn.functional.pad(tensor, pad)


def _mm(pairs: list[EncodedPair], device, dtype: torch.dtype, repeat: int = 1) -> dict[str, torch.Tensor]:
    """The pairs' processor outputs, key by key, concatenated along dim 0 (images, patches or tiles).

    Where the pairs' tensors differ beyond dim 0 (Idefics3 / SmolVLM crop counts, LLaVA-OneVision anyres patches,
    Pixtral / Mistral 3 native resolutions), each is zero-padded at the end to the micro-batch maximum first:
    the value these families' own processors pad a batch with, and that their models drop (all-zero crops and
    ``pixel_attention_mask``; ``image_sizes`` for the real patches and pixels). Floating tensors are cast to
    ``dtype``, the model's."""
    keys = sorted({k for p in pairs for k in p.mm})
    out = {}
    for key in keys:
        tensors = [p.mm[key] for p in pairs if key in p.mm]
        if len({t.shape[1:] for t in tensors}) > 1:
            if len({t.ndim for t in tensors}) > 1:
                raise ValueError(f"processor output {key!r} has tensors of different ranks in one micro-batch "
                                 f"({sorted({t.ndim for t in tensors})}); it cannot be batched")
            shape = tuple(max(t.shape[d] for t in tensors) for d in range(1, tensors[0].ndim))
            tensors = [_pad_to(t, shape) for t in tensors]
        value = torch.cat(tensors * repeat).to(device)
        out[key] = value.to(dtype) if value.is_floating_point() else value
    return out


def image_signature(pair: EncodedPair) -> tuple:
    """What of the image path a pair exercises: its processor outputs' keys, ranks and sizes beyond dim 0,
    without the spatial sizes of pixel tensors (the last two dims of a tensor of rank >= 4), so that native
    resolutions do not make every image new; () for a text-only pair."""
    return tuple(sorted((key, tuple(t.shape[1:-2] if t.ndim >= 4 else t.shape[1:])) for key, t in pair.mm.items()))


def batch_signatures(pairs: list[EncodedPair]) -> set[tuple]:
    """The image-path signatures a micro-batch exercises: each pair's, and ``("padded",)`` when its tensors
    differ in shape beyond dim 0 (the padding of :func:`_mm`)."""
    found = {image_signature(p) for p in pairs}
    keys = {k for p in pairs for k in p.mm}
    if any(len({p.mm[k].shape[1:] for p in pairs if k in p.mm}) > 1 for k in keys):
        found.add(("padded",))
    return found


def _image_token_id(model) -> int | None:
    config = unwrap(model).config
    return getattr(config, "image_token_id", None) or getattr(config, "image_token_index", None)


def attention_backend(model) -> str:
    return unwrap(model).config.get_text_config()._attn_implementation


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


@dataclass
class PackedLayout:
    """Where each pair's tokens sit in the aligned rows (see module doc); all tensors are [B, L] unless noted."""

    input_ids: torch.Tensor
    segments: torch.Tensor   # PROMPT / CHOSEN / REJECTED / PAD per column
    columns: list[tuple[int, int, int, int]]  # per row: where the prompt, chosen, rejected start, and its end
    keep: torch.Tensor       # [K] the columns whose logits are computed (same for every row)
    targets: torch.Tensor    # [B, K] the token each kept column predicts, -1 where none


def packed_layout(pairs: list[EncodedPair], pad_id: int) -> PackedLayout:
    """Aligned rows ``[left pad | prompt | chosen | pad | rejected | pad]``: every prompt ends at column
    ``P`` (the longest prompt), every rejected response starts at ``P + C`` (C the longest chosen response)."""
    P = max(len(p.prompt) for p in pairs)
    C = max(len(p.chosen) for p in pairs)
    R = max(len(p.rejected) for p in pairs)
    width = P + C + R
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    segments = torch.full((len(pairs), width), PAD, dtype=torch.long)
    targets = torch.full((len(pairs), C + R), -1, dtype=torch.long)
    columns = []
    for b, p in enumerate(pairs):
        start = P - len(p.prompt)
        ids[b, start:P] = torch.tensor(p.prompt)
        ids[b, P:P + len(p.chosen)] = torch.tensor(p.chosen)
        ids[b, P + C:P + C + len(p.rejected)] = torch.tensor(p.rejected)
        segments[b, start:P] = PROMPT
        segments[b, P:P + len(p.chosen)] = CHOSEN
        segments[b, P + C:P + C + len(p.rejected)] = REJECTED
        targets[b, :len(p.chosen)] = torch.tensor(p.chosen)
        targets[b, C:C + len(p.rejected)] = torch.tensor(p.rejected)
        columns.append((start, P, P + C, P + C + len(p.rejected)))
    # the last prompt column predicts the first token of both responses
    keep = torch.tensor([*range(P - 1, P + C - 1), P - 1, *range(P + C, P + C + R - 1)])
    return PackedLayout(ids, segments, columns, keep, targets)


@dataclass
class LayerMask:
    """What one layer type adds to the segment mask: a sliding window or an attention chunk (in positions)."""

    window: int | None = None
    chunk: int | None = None


# layer types an attention mask describes; any other (linear attention, state-space, convolution) carries a state
# along the row that no mask stops
_MASKABLE = ("full_attention", "sliding_attention", "chunked_attention")


def layer_masks(config) -> dict[str, LayerMask]:
    """The mask each layer type of a model needs, from its text config's ``layer_types`` (all layers full
    attention where it has none). Types outside ``_MASKABLE`` are returned too, with no mask: see
    :func:`packed_refusal`."""
    text = config.get_text_config()
    types = dict.fromkeys(getattr(text, "layer_types", None) or ["full_attention"])
    window = getattr(text, "sliding_window", None)
    chunk = getattr(text, "attention_chunk_size", None)
    return {t: LayerMask(window=window if t == "sliding_attention" else None,
                         chunk=chunk if t == "chunked_attention" else None) for t in types}


def packed_refusal(model) -> str | None:
    """Why the packed forward cannot serve ``model``, decided from its config; None when it can."""
    recurrent = [t for t in layer_masks(unwrap(model).config) if t not in _MASKABLE]
    if recurrent:
        return (f"its {', '.join(recurrent)} layers carry a state along the sequence that an attention mask cannot "
                f"stop (the chosen response would leak into the rejected one)")
    return None


def bidirectional_images(config) -> str | None:
    """The forward argument (``token_type_ids`` / ``mm_token_type_ids``) with which a family lets each image's
    tokens attend to the whole image, or None where image tokens attend causally like text. Gemma 3 does it
    whenever ``token_type_ids`` are given (its processor gives them), Gemma 4 where its text config says
    ``use_bidirectional_attention: vision``."""
    if getattr(config.get_text_config(), "use_bidirectional_attention", None) == "vision":
        return "mm_token_type_ids"
    if config.model_type in ("gemma3", "paligemma"):
        return "token_type_ids"
    return None


def image_blocks(input_ids: torch.Tensor, image_token: int | None) -> torch.Tensor:
    """[B, L] the index of the image each token belongs to (a run of image tokens), -1 for other tokens."""
    if image_token is None:
        return torch.full_like(input_ids, -1)
    is_image = input_ids == image_token
    starts = is_image & ~torch.nn.functional.pad(is_image, (1, 0))[:, :-1]
    return torch.where(is_image, starts.long().cumsum(1) - 1, -1)


def _allowed(segments: torch.Tensor, positions: torch.Tensor | None = None, layer: LayerMask | None = None,
             blocks: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L, L] booleans: a query sees earlier keys of the prompt and of its own segment (padding sees the
    prompt and padding, so that no row of the mask is empty); with ``blocks``, an image token also sees its whole
    image; a sliding window or a chunk (``layer``) then keeps the keys near the query in ``positions`` ([B, L]
    1-D positions; the plain row's indices, since the segments restart them)."""
    L = segments.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=segments.device).tril()
    q, k = segments[:, :, None], segments[:, None, :]
    allow = causal & ((k == PROMPT) | (k == q))
    if blocks is not None:
        allow = allow | ((blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0))
    if layer is not None and layer.window is not None:
        allow = allow & (positions[:, :, None] - positions[:, None, :] < layer.window)
    if layer is not None and layer.chunk is not None:
        allow = allow & (positions[:, :, None] // layer.chunk == positions[:, None, :] // layer.chunk)
    return allow


def _block_mask(segments: torch.Tensor, positions: torch.Tensor | None = None, layer: LayerMask | None = None,
                blocks: torch.Tensor | None = None):
    """:func:`_allowed` as a flex-attention ``BlockMask``, composed of only the parts this layer type uses."""
    from torch.nn.attention.flex_attention import and_masks, create_block_mask, or_masks

    def segment_mod(b, h, q_idx, kv_idx):
        q, k = segments[b, q_idx], segments[b, kv_idx]
        return (kv_idx <= q_idx) & ((k == PROMPT) | (k == q))

    def image_mod(b, h, q_idx, kv_idx):
        return (blocks[b, q_idx] == blocks[b, kv_idx]) & (blocks[b, q_idx] >= 0)

    def window_mod(b, h, q_idx, kv_idx):
        return positions[b, q_idx] - positions[b, kv_idx] < layer.window

    def chunk_mod(b, h, q_idx, kv_idx):
        return positions[b, q_idx] // layer.chunk == positions[b, kv_idx] // layer.chunk

    mask_mod = segment_mod if blocks is None else or_masks(segment_mod, image_mod)
    if layer is not None and layer.window is not None:
        mask_mod = and_masks(mask_mod, window_mod)
    if layer is not None and layer.chunk is not None:
        mask_mod = and_masks(mask_mod, chunk_mod)
    B, L = segments.shape
    return create_block_mask(mask_mod, B, None, L, L, device=segments.device)


def packed_attention_mask(segments: torch.Tensor, backend: str, dtype: torch.dtype,
                          positions: torch.Tensor | None = None, layer: LayerMask | None = None,
                          blocks: torch.Tensor | None = None):
    """The per-row mask of one layer type in the form ``backend`` takes (see module doc and
    :mod:`mpo_train.attention`)."""
    form = registered_backend(backend).mask
    if form == "block":
        return _block_mask(segments, positions, layer, blocks)
    allow = _allowed(segments, positions, layer, blocks)[:, None]
    if form == "additive":
        return torch.zeros(allow.shape, dtype=dtype, device=allow.device).masked_fill(~allow,
                                                                                       torch.finfo(dtype).min)
    return allow


class PackedUnsupported(UserError):
    """The model has layers that the packed layout cannot keep apart (see :func:`packed_refusal`)."""


def _packed_masks(inner, layout: PackedLayout, input_ids: torch.Tensor, order: torch.Tensor, image_token: int | None,
                  backend: str):
    """The attention mask of the packed rows: one tensor where every layer is full attention and image tokens
    attend causally; else a mapping layer type -> mask, which the models with several layer types take as is."""
    dtype = next(inner.parameters()).dtype
    segments = layout.segments.to(input_ids.device)
    layers = layer_masks(inner.config)
    blocks = image_blocks(input_ids, image_token) if bidirectional_images(inner.config) else None
    if list(layers) == ["full_attention"] and blocks is None:
        return packed_attention_mask(segments, backend, dtype)
    return {t: packed_attention_mask(segments, backend, dtype, order, layer, blocks) for t, layer in layers.items()}


def packed_logps(model, pairs: list[EncodedPair]) -> Logps:
    """The packed forward (see module doc)."""
    inner = unwrap(model)
    device = next(inner.parameters()).device
    image_token = _image_token_id(model)
    base = getattr(inner, "model", None)
    mrope = base is not None and hasattr(base, "get_rope_index")
    pad = getattr(inner.config.get_text_config(), "pad_token_id", None) or 0
    layout = packed_layout(pairs, pad)
    refusal = packed_refusal(model)
    if refusal:
        raise PackedUnsupported(f"forward: packed cannot serve this model: {refusal}; use forward: auto or plain")
    B, L = layout.input_ids.shape
    order = torch.zeros((B, L), dtype=torch.long)  # each token's index in its plain row
    for b, (p, (a, c, r, end)) in enumerate(zip(pairs, layout.columns, strict=True)):
        P, C, R = len(p.prompt), len(p.chosen), len(p.rejected)
        order[b, a:c + C] = torch.arange(P + C)
        order[b, r:end] = torch.arange(P, P + R)
    positions = order.to(device)
    if mrope:
        positions = torch.zeros((3, B, L), dtype=torch.long, device=device)
        for b, (p, (a, c, r, end)) in enumerate(zip(pairs, layout.columns, strict=True)):
            P, C, R = len(p.prompt), len(p.chosen), len(p.rejected)
            pos = _mrope_positions(base, p, image_token, device)
            positions[:, b, a:c + C] = pos[:, :P + C]
            positions[:, b, r:end] = pos[:, P:P + R]
    input_ids = layout.input_ids.to(device)
    dtype = model_dtype(model)
    mask = _packed_masks(inner, layout, input_ids, order.to(device), image_token, attention_backend(model))
    kwargs = _mm(pairs, device, dtype)
    if image_token is not None and _accepts(inner.forward, "mm_token_type_ids") and mrope:
        kwargs["mm_token_type_ids"] = (input_ids == image_token).long()
    with captured_hidden(model) as captured:
        model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
              logits_to_keep=layout.keep.to(device), use_cache=False, **kwargs)
    targets = layout.targets.to(device)
    valid = targets >= 0
    out = _reduce(model_token_logps(model, captured.hidden[valid], targets[valid]), [len(p.chosen) for p in pairs],
                  [len(p.rejected) for p in pairs])
    out.tokens = B * L
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
    kwargs = _mm(pairs, device, model_dtype(model), repeat=2)
    image_token = _image_token_id(model)
    if image_token is not None and _accepts(inner.forward, "mm_token_type_ids"):
        kwargs["mm_token_type_ids"] = (input_ids == image_token).long()
    bidirectional = bidirectional_images(inner.config)
    if image_token is not None and bidirectional:  # as the processor gives them to the model's own forward
        kwargs[bidirectional] = (input_ids == image_token).long()
    with captured_hidden(model) as captured:
        model(input_ids=input_ids, attention_mask=attention, use_cache=False, **kwargs)
    picked, targets = [], []
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    for i, (p, response) in enumerate(zip(pairs + pairs, responses, strict=True)):
        P = len(p.prompt)
        picked.append(captured.hidden[i, P - 1:P - 1 + len(response)])
        targets += response
    token_logps = model_token_logps(model, torch.cat(picked), torch.tensor(targets, device=device))
    per_row = token_logps.split([len(r) for r in responses])
    B = len(pairs)
    ordered = torch.cat([t for i in range(B) for t in (per_row[i], per_row[B + i])])
    out = _reduce(ordered, [len(p.chosen) for p in pairs], [len(p.rejected) for p in pairs])
    out.tokens = sum(len(r) for r in rows)
    return out


TOLERANCE = 1e-3  # nats per response token: how far packed may be from plain (absolute, not relative to the sum)


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _max_over_ranks(value: float, device) -> float:
    """The largest ``value`` over the ranks of a distributed run (every rank gets the same number)."""
    import torch.distributed as dist

    if not _distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def _from_rank_0(value):
    """Rank 0's ``value`` on every rank of a distributed run (any picklable object)."""
    import torch.distributed as dist

    if not _distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def per_token_difference(packed: Logps, plain: Logps, pairs: list[EncodedPair]) -> float:
    """The largest per-token mean difference between two forwards' log-probs: |summed difference| / tokens of
    each response (chosen and rejected of every pair), the maximum over the responses."""
    tokens = torch.tensor([[max(len(p.chosen), 1), max(len(p.rejected), 1)] for p in pairs], dtype=torch.float64)
    diff = torch.stack([packed.chosen - plain.chosen, packed.rejected - plain.rejected], dim=1).double().abs()
    return float((diff.cpu() / tokens).max())


def config_refusal(model) -> str | None:
    """Why ``model``'s config rules the packed forward out (its attention backend takes no custom mask, or its
    layers carry a state along the row); None when only a check on a micro-batch can tell."""
    backend = attention_backend(model)
    if not registered_backend(backend).packs:
        return f"attention backend {backend!r} takes no custom attention mask"
    return packed_refusal(model)


class SequenceLogps:
    """The run's one decision of the forward, and the forward it decided: ``packed``, ``plain``, or ``auto``: packed
    where the model's config allows it (:func:`config_refusal`), checked against plain on every micro-batch that
    brings an image-path signature not seen before (:func:`batch_signatures`: the first batch, the first with
    images after a text-only one, the first with padded crops...), with an absolute tolerance of :data:`TOLERANCE`
    nats per token; plain from the first check that fails, with the reason on the console.

    One object serves every pass of a run (the reference precompute, the policy, the online or LoRA-base reference),
    so what one pass decided holds for the others. In a distributed run every rank checks its own micro-batch when
    any rank meets a new signature, the largest difference over the ranks reaches rank 0, and rank 0's decision is
    broadcast: every rank takes the same forward, with the same reason. Each call takes a collective while
    checking: where ranks run different numbers of batches (the reference precompute), :meth:`lockstep` and
    :meth:`idle` keep the calls matched."""

    def __init__(self, mode: str = "auto", *, say=None):
        self.mode = "packed" if mode == "auto" else mode
        self.checking = mode == "auto"
        self.seen: set[tuple] = set()
        self.reason = ""
        self.calls: dict[str, int] = {}
        self.say = say or (lambda message: None)

    def __call__(self, model, pairs: list[EncodedPair]) -> Logps:
        if self.checking:
            self._check(model, pairs)
        self.calls[self.mode] = self.calls.get(self.mode, 0) + 1
        return (packed_logps if self.mode == "packed" else plain_logps)(model, pairs)

    def settle(self, model) -> None:
        """Decide what ``model``'s config decides before any micro-batch (the same on every rank): the mode a
        reference cache is keyed by is then the one its pairs are scored with."""
        reason = config_refusal(model) if self.checking else None
        if reason:
            self._fall_back(reason)

    def lockstep(self, batches: int, device) -> int:
        """How many calls this rank makes for its ``batches`` so that the check's collectives meet: the most any
        rank has while checking in a distributed run, else ``batches``."""
        return int(_max_over_ranks(float(batches), device)) if self.checking else batches

    def idle(self, model) -> None:
        """A call without a micro-batch (this rank has run out): it joins the other ranks' check, if any."""
        if self.checking:
            self._check(model, [])

    def describe(self) -> str:
        """The mode used and why, e.g. for the model card: ``packed: checked against plain on ...``."""
        earlier = [f"{mode} for the first {n} forwards" for mode, n in self.calls.items() if mode != self.mode]
        why = self.reason or f"set by forward: {self.mode}"
        return f"{self.mode}{' (' + ', '.join(earlier) + ')' if earlier else ''}: {why}"

    def _check(self, model, pairs: list[EncodedPair]) -> None:
        device = next(unwrap(model).parameters()).device
        new = batch_signatures(pairs) - self.seen
        if not _max_over_ranks(float(bool(new)), device):
            return
        self.seen |= new
        refusal = config_refusal(model)
        if refusal:  # decided by the config, the same on every rank: a tolerance cannot tell a leak from rounding
            self._fall_back(refusal)
            return
        failure, diff = "", 0.0
        if pairs:
            with torch.no_grad():
                try:
                    packed = packed_logps(model, pairs)
                except (RuntimeError, ValueError, TypeError) as e:
                    failure = f"the packed forward failed on this model ({type(e).__name__}: {e})"
                plain = plain_logps(model, pairs)
            diff = math.inf if failure else per_token_difference(packed, plain, pairs)
        diff = _max_over_ranks(diff, device)
        if diff > TOLERANCE:
            failure = failure or ("the packed forward failed on another rank" if math.isinf(diff) else "")
            decided = ("plain", failure or f"packed and plain log-probs differ by {diff:.2e} nats per token (more "
                       f"than {TOLERANCE:g}) on a micro-batch with a new image signature")
        else:
            decided = ("packed", f"packed forward checked against plain on {len(self.seen)} image signatures (max "
                       f"difference {diff:.1e} nats per token)")
        mode, reason = _from_rank_0(decided)
        if mode == "plain":
            self._fall_back(reason)
            return
        self.reason = reason
        log.info(self.reason)
        self.say(self.reason)

    def _fall_back(self, reason: str) -> None:
        self.mode, self.checking = "plain", False
        self.reason = f"using the plain two-sequence forward: {reason}"
        log.warning(self.reason)
        self.say(self.reason)


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
    dtype = model_dtype(model)
    features = inner.get_image_features(**{k: v.to(device, dtype) if v.is_floating_point() else v.to(device)
                                           for k, v in image_inputs.items()})
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
