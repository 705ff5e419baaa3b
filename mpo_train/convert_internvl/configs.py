"""Config maps: the original ``InternVLChatConfig`` (config.json with ``llm_config`` / ``vision_config``) -> the
keyword arguments of transformers' ``InternVLConfig``, and the facts the processor needs (tile size, tiling)."""

from __future__ import annotations

from dataclasses import dataclass

LLM_KINDS = {"InternLM2ForCausalLM": "internlm2", "Qwen2ForCausalLM": "qwen2"}

# The Qwen2 fields kept; the rest of a saved remote-code llm_config is transformers 4.x boilerplate (generation
# defaults, auto_map, ...) that Qwen2Config does not take.
_QWEN2_KEEP = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
               "rope_scaling", "use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout",
               "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings")


class LayoutError(ValueError):
    """A checkpoint that is not an InternVL layout this converter knows."""


@dataclass(frozen=True)
class Tiling:
    """The original preprocessing: ``dynamic_preprocess`` into ``tile`` px tiles, ``min_tiles``..``max_tiles`` of
    them plus a thumbnail when more than one, and ``tokens_per_tile`` LM tokens per tile after pixel shuffle."""

    tile: int
    min_tiles: int
    max_tiles: int
    tokens_per_tile: int
    dynamic: bool


def llm_kind(config: dict, *, where: str = "config.json") -> str:
    """``internlm2`` or ``qwen2`` from ``llm_config.architectures``; a clear error for anything else."""
    if config.get("architectures") != ["InternVLChatModel"]:
        raise LayoutError(f"{where}: architectures is {config.get('architectures')}, not ['InternVLChatModel']: "
                          "not an original InternVL checkpoint")
    arch = (config.get("llm_config", {}).get("architectures") or [None])[0]
    if arch not in LLM_KINDS:
        raise LayoutError(f"{where}: llm_config.architectures {arch!r} is not supported; supported: "
                          f"{', '.join(LLM_KINDS)} (InternVL2/2.5 1B, 2B, 8B, 26B)")
    return LLM_KINDS[arch]


def tiling(config: dict, *, where: str = "config.json") -> Tiling:
    if config.get("ps_version", "v2") != "v2":
        raise LayoutError(f"{where}: ps_version {config['ps_version']!r}: transformers implements pixel shuffle "
                          "v2 only")
    if not config.get("use_thumbnail", True):
        raise LayoutError(f"{where}: use_thumbnail false: transformers' InternVL processor always adds the thumbnail")
    vision = config["vision_config"]
    tile = int(config.get("force_image_size") or vision["image_size"])
    ratio = float(config.get("downsample_ratio", 0.5))
    tokens = int((tile // vision["patch_size"]) ** 2 * ratio**2)
    return Tiling(tile=tile, min_tiles=int(config.get("min_dynamic_patch", 1)),
                  max_tiles=int(config.get("max_dynamic_patch", 12)), tokens_per_tile=tokens,
                  dynamic=bool(config.get("dynamic_image_size", True)))


def text_config(llm: dict, kind: str) -> dict:
    """``llm_config`` -> a transformers text config dict (Llama for InternLM2, Qwen2 as it is)."""
    if kind == "qwen2":
        out = {k: llm[k] for k in _QWEN2_KEEP if k in llm}
        out["tie_word_embeddings"] = bool(out.get("tie_word_embeddings", False))
        return {"model_type": "qwen2", **out}
    heads = llm["num_attention_heads"]
    return {
        "model_type": "llama",
        "vocab_size": llm["vocab_size"], "hidden_size": llm["hidden_size"],
        "intermediate_size": llm["intermediate_size"], "num_hidden_layers": llm["num_hidden_layers"],
        "num_attention_heads": heads, "num_key_value_heads": llm.get("num_key_value_heads", heads),
        "head_dim": llm["hidden_size"] // heads, "hidden_act": llm.get("hidden_act", "silu"),
        "max_position_embeddings": llm["max_position_embeddings"], "rms_norm_eps": llm.get("rms_norm_eps", 1e-6),
        "rope_theta": llm.get("rope_theta", 10000), "rope_scaling": llm.get("rope_scaling"),
        "attention_bias": bool(llm.get("bias", False)), "mlp_bias": False,
        "bos_token_id": llm.get("bos_token_id"), "eos_token_id": llm.get("eos_token_id"),
        "pad_token_id": llm.get("pad_token_id"), "tie_word_embeddings": bool(llm.get("tie_word_embeddings", False)),
    }


def vision_config(vision: dict, *, tile: int) -> dict:
    """InternViT's ``vision_config`` -> ``InternVLVisionConfig`` keyword arguments."""
    return {
        "hidden_size": vision["hidden_size"], "num_hidden_layers": vision["num_hidden_layers"],
        "num_attention_heads": vision["num_attention_heads"], "intermediate_size": vision["intermediate_size"],
        "image_size": tile, "patch_size": vision["patch_size"], "num_channels": vision.get("num_channels", 3),
        "hidden_act": vision.get("hidden_act", "gelu"), "layer_norm_eps": vision.get("layer_norm_eps", 1e-6),
        "norm_type": vision.get("norm_type", "layer_norm"), "use_qk_norm": bool(vision.get("qk_normalization", False)),
        "attention_bias": bool(vision.get("qkv_bias", True)),
        "attention_dropout": vision.get("attention_dropout", 0.0), "use_absolute_position_embeddings": True,
    }


def internvl_config(config: dict, *, image_token_id: int) -> dict:
    """The whole original config -> ``InternVLConfig`` keyword arguments."""
    kind = llm_kind(config)
    t = tiling(config)
    text = text_config(config["llm_config"], kind)
    return {
        "text_config": text, "vision_config": vision_config(config["vision_config"], tile=t.tile),
        "image_token_id": image_token_id, "image_seq_length": t.tokens_per_tile,
        "downsample_ratio": float(config.get("downsample_ratio", 0.5)), "projector_hidden_act": "gelu",
        "vision_feature_layer": int(config.get("select_layer", -1)), "vision_feature_select_strategy": "default",
        "tie_word_embeddings": text["tie_word_embeddings"] if "tie_word_embeddings" in text else False,
    }
