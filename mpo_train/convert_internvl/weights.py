"""State-dict maps between the original InternVL checkpoints and transformers' native InternVL layout.

Original (``InternVLChatModel``, remote code)         transformers (``InternVLForConditionalGeneration``)
  vision_model.embeddings.class_embedding              model.vision_tower.embeddings.cls_token
  vision_model.embeddings.patch_embedding.*            model.vision_tower.embeddings.patch_embeddings.projection.*
  vision_model.embeddings.position_embedding           model.vision_tower.embeddings.position_embeddings
  vision_model.encoder.layers.N.attn.qkv (fused q|k|v) model.vision_tower.encoder.layer.N.attention.{q,k,v}_proj
  ....attn.proj / ls1 / ls2 / norm1 / norm2 / mlp.*    ....attention.projection_layer / lambda_1 / lambda_2 /
                                                           layernorm_before / layernorm_after / mlp.*
  mlp1.0 / mlp1.1 / mlp1.3                             model.multi_modal_projector.layer_norm / linear_1 / linear_2
  language_model.model.* (InternLM2, fused wqkv)       model.language_model.* (Llama)
  language_model.output                                lm_head
  language_model.model.* (Qwen2)                       model.language_model.* (Qwen2, same names)
  language_model.lm_head                               lm_head

InternLM2 packs q, k and v of one key/value group next to each other: ``wqkv`` has
``num_key_value_heads * (groups + 2) * head_dim`` rows, each group being ``groups`` query heads, then its key head,
then its value head (``groups = num_attention_heads // num_key_value_heads``).
Every map here only renames, slices and concatenates: the round trip is bit-exact.
"""

from __future__ import annotations

import re

import torch

from mmpr.errors import UserError

_VISION = [  # (original, transformers) name fragments below the vision prefix, applied in order
    ("embeddings.class_embedding", "embeddings.cls_token"),
    ("embeddings.patch_embedding.", "embeddings.patch_embeddings.projection."),
    ("embeddings.position_embedding", "embeddings.position_embeddings"),
    ("encoder.layers.", "encoder.layer."),
    (".attn.proj.", ".attention.projection_layer."),
    (".attn.q_norm.", ".attention.q_norm."),
    (".attn.k_norm.", ".attention.k_norm."),
    (".ls1", ".lambda_1"),
    (".ls2", ".lambda_2"),
    (".norm1.", ".layernorm_before."),
    (".norm2.", ".layernorm_after."),
]
_PROJECTOR = {"mlp1.0.": "model.multi_modal_projector.layer_norm.", "mlp1.1.": "model.multi_modal_projector.linear_1.",
              "mlp1.3.": "model.multi_modal_projector.linear_2."}
_INTERNLM2 = [
    ("tok_embeddings.", "embed_tokens."),
    (".attention.wo.", ".self_attn.o_proj."),
    (".feed_forward.w1.", ".mlp.gate_proj."),
    (".feed_forward.w3.", ".mlp.up_proj."),
    (".feed_forward.w2.", ".mlp.down_proj."),
    (".attention_norm.", ".input_layernorm."),
    (".ffn_norm.", ".post_attention_layernorm."),
]
_WQKV = re.compile(r"^language_model\.model\.layers\.(\d+)\.attention\.wqkv\.weight$")
_VIT_QKV = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$")


def split_wqkv(wqkv: torch.Tensor, *, num_heads: int, num_kv_heads: int) -> tuple[torch.Tensor, ...]:
    """InternLM2's grouped ``wqkv`` [(kv * (g + 2) * d), hidden] -> (q [heads*d, hidden], k, v [kv*d, hidden])."""
    groups = num_heads // num_kv_heads
    rows, hidden = wqkv.shape
    head_dim = rows // (num_kv_heads * (groups + 2))
    if head_dim * num_kv_heads * (groups + 2) != rows:
        raise UserError(f"wqkv has {rows} rows, not a multiple of {num_kv_heads} groups x ({groups} + 2) heads")
    grouped = wqkv.reshape(num_kv_heads, groups + 2, head_dim, hidden)
    q = grouped[:, :groups].reshape(num_heads * head_dim, hidden)
    k = grouped[:, groups].reshape(num_kv_heads * head_dim, hidden)
    v = grouped[:, groups + 1].reshape(num_kv_heads * head_dim, hidden)
    return q.contiguous(), k.contiguous(), v.contiguous()


def fuse_wqkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, num_heads: int, num_kv_heads: int) -> torch.Tensor:
    """The inverse of :func:`split_wqkv`."""
    groups = num_heads // num_kv_heads
    hidden = q.shape[1]
    head_dim = q.shape[0] // num_heads
    grouped = torch.cat([q.reshape(num_kv_heads, groups, head_dim, hidden),
                         k.reshape(num_kv_heads, 1, head_dim, hidden),
                         v.reshape(num_kv_heads, 1, head_dim, hidden)], dim=1)
    return grouped.reshape(-1, hidden).contiguous()


def _rename(name: str, pairs: list[tuple[str, str]], *, reverse: bool = False) -> str:
    for old, new in (reversed(pairs) if reverse else pairs):
        a, b = (new, old) if reverse else (old, new)
        name = name.replace(a, b)
    return name


def original_to_hf(state: dict[str, torch.Tensor], *, llm: str, num_heads: int, num_kv_heads: int
                   ) -> dict[str, torch.Tensor]:
    """An original InternVL state dict -> transformers' InternVL names. ``llm`` is ``internlm2`` or ``qwen2``."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if m := _VIT_QKV.match(name):
            base = f"model.vision_tower.encoder.layer.{m[1]}.attention"
            for part, piece in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                out[f"{base}.{part}_proj.{m[2]}"] = piece.contiguous()
        elif name.startswith("vision_model."):
            out["model.vision_tower." + _rename(name[len("vision_model."):], _VISION)] = tensor
        elif name[:7] in _PROJECTOR:
            out[_PROJECTOR[name[:7]] + name[7:]] = tensor
        elif llm == "internlm2" and (m := _WQKV.match(name)):
            base = f"model.language_model.layers.{m[1]}.self_attn"
            pieces = split_wqkv(tensor, num_heads=num_heads, num_kv_heads=num_kv_heads)
            for part, piece in zip("qkv", pieces, strict=True):
                out[f"{base}.{part}_proj.weight"] = piece
        elif llm == "internlm2" and name.startswith("language_model.output."):
            out["lm_head." + name[len("language_model.output."):]] = tensor
        elif llm == "internlm2" and name.startswith("language_model.model."):
            out["model.language_model." + _rename(name[len("language_model."):], _INTERNLM2).removeprefix("model.")
                ] = tensor
        elif llm == "qwen2" and name.startswith("language_model.lm_head."):
            out["lm_head." + name[len("language_model.lm_head."):]] = tensor
        elif llm == "qwen2" and name.startswith("language_model.model."):
            out["model.language_model." + name[len("language_model.model."):]] = tensor
        else:
            raise UserError(f"unexpected tensor {name!r} in an original InternVL checkpoint with a {llm} LLM")
    return out


def hf_to_original(state: dict[str, torch.Tensor], *, llm: str, num_heads: int, num_kv_heads: int
                   ) -> dict[str, torch.Tensor]:
    """The inverse of :func:`original_to_hf`."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    projector = {v: k for k, v in _PROJECTOR.items()}
    vit_qkv = re.compile(r"^model\.vision_tower\.encoder\.layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)$")
    llm_qkv = re.compile(r"^model\.language_model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.weight$")
    for name, tensor in state.items():
        if m := vit_qkv.match(name):
            fused.setdefault(f"vision_model.encoder.layers.{m[1]}.attn.qkv.{m[3]}", {})[m[2]] = tensor
        elif name.startswith("model.vision_tower."):
            out["vision_model." + _rename(name[len("model.vision_tower."):], _VISION, reverse=True)] = tensor
        elif prefix := next((p for p in projector if name.startswith(p)), None):
            out[projector[prefix] + name[len(prefix):]] = tensor
        elif llm == "internlm2" and (m := llm_qkv.match(name)):
            fused.setdefault(f"language_model.model.layers.{m[1]}.attention.wqkv.weight", {})[m[2]] = tensor
        elif llm == "internlm2" and name.startswith("lm_head."):
            out["language_model.output." + name[len("lm_head."):]] = tensor
        elif llm == "internlm2" and name.startswith("model.language_model."):
            out["language_model." + _rename("model." + name[len("model.language_model."):], _INTERNLM2,
                                            reverse=True)] = tensor
        elif llm == "qwen2" and name.startswith("lm_head."):
            out["language_model.lm_head." + name[len("lm_head."):]] = tensor
        elif llm == "qwen2" and name.startswith("model.language_model."):
            out["language_model.model." + name[len("model.language_model."):]] = tensor
        else:
            raise UserError(f"unexpected tensor {name!r} in a transformers InternVL checkpoint with a {llm} LLM")
    for name, parts in fused.items():
        if set(parts) != {"q", "k", "v"}:
            raise UserError(f"{name}: found only {sorted(parts)} of q, k, v")
        if name.startswith("vision_model."):
            out[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        else:
            out[name] = fuse_wqkv(parts["q"], parts["k"], parts["v"], num_heads=num_heads, num_kv_heads=num_kv_heads)
    return out
