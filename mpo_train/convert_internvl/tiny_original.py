"""Tiny InternVL checkpoints in the ORIGINAL remote-code layout, for tests and the CI run of the reproduction script.

The layout follows the published InternVL2 checkpoints (OpenGVLab/InternVL2-8B with InternLM2 and a fused grouped
``wqkv``, OpenGVLab/InternVL2-1B with Qwen2): config.json with ``InternVLChatModel``, ``auto_map``, ``llm_config`` and
``vision_config``; InternViT + ``mlp1`` + LLM tensor names; InternLM2's sentencepiece ``tokenizer.model`` with the
image tokens added after it; remote-code file names (their content here is a stand-in: this project ships no copy
of InternVL's code).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import torch

from mpo_train.convert_internvl.files import write_json, write_state

LLMKind = Literal["internlm2", "qwen2"]
_IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
_REMOTE = {"internlm2": ["configuration_intern_vit.py", "configuration_internlm2.py", "configuration_internvl_chat.py",
                         "conversation.py", "modeling_intern_vit.py", "modeling_internlm2.py",
                         "modeling_internvl_chat.py", "tokenization_internlm2.py", "tokenization_internlm2_fast.py"],
           "qwen2": ["configuration_intern_vit.py", "configuration_internvl_chat.py", "conversation.py",
                     "modeling_intern_vit.py", "modeling_internvl_chat.py"]}


def _internlm2_tokenizer(out: Path, seed: int) -> int:
    """Train a sentencepiece BPE model like InternLM2's (byte fallback, no dummy prefix, whitespace kept) and write
    the tokenizer files; returns the vocabulary size including the added image tokens."""
    import sentencepiece as spm

    from mmpr.testing import _corpus

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(_corpus(random.Random(seed)))), model_prefix=str(out / "tokenizer"),
        vocab_size=800, model_type="bpe", byte_fallback=True, user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, minloglevel=2)
    (out / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    n = sp.get_piece_size()
    special = {0: "<unk>", 1: "<s>", 2: "</s>", sp.piece_to_id("<|im_start|>"): "<|im_start|>",
               sp.piece_to_id("<|im_end|>"): "<|im_end|>"} | {n + i: t for i, t in enumerate(_IMAGE_TOKENS)}
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for i, t in sorted(special.items())}
    write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": decoder, "additional_special_tokens": ["<|im_start|>", "<|im_end|>", *_IMAGE_TOKENS],
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer",
                                       "tokenization_internlm2_fast.InternLM2TokenizerFast"]},
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
        "add_eos_token": False, "clean_up_tokenization_spaces": False, "model_max_length": 4096,
        "tokenizer_class": "InternLM2Tokenizer"})
    write_json(out / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>",
                                                 "unk_token": "<unk>"})
    return n + len(_IMAGE_TOKENS)


def _im_end_id(out: Path) -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).piece_to_id("<|im_end|>")


def _qwen2_tokenizer(out: Path) -> tuple[int, int, int]:
    from mmpr.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.add_tokens(_IMAGE_TOKENS[3:], special_tokens=True)
    tok.chat_template = None
    tok.save_pretrained(out)
    return len(tok), tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")


def _llm_config(kind: LLMKind, vocab: int, hidden: int, layers: int, bos: int | None, eos: int, pad: int) -> dict:
    common = {"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
              "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "silu",
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 1000000,
              "tie_word_embeddings": False, "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
              "torch_dtype": "float32", "use_cache": True}
    if kind == "internlm2":
        return {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "bias": False,
                "attn_implementation": "eager", "rope_scaling": {"type": "dynamic", "factor": 2.0},
                "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                             "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
                             "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}, **common}
    return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "use_sliding_window": False,
            "sliding_window": 4096, "max_window_layers": layers, "attention_dropout": 0.0, **common}


def _weights(kind: LLMKind, cfg: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
    def r(*shape, scale=0.05):
        return torch.randn(*shape, generator=gen) * scale

    v, llm = cfg["vision_config"], cfg["llm_config"]
    d, n_patch = v["hidden_size"], (v["image_size"] // v["patch_size"]) ** 2
    s: dict[str, torch.Tensor] = {
        "vision_model.embeddings.class_embedding": r(1, 1, d),
        "vision_model.embeddings.patch_embedding.weight": r(d, 3, v["patch_size"], v["patch_size"]),
        "vision_model.embeddings.patch_embedding.bias": r(d),
        "vision_model.embeddings.position_embedding": r(1, n_patch + 1, d),
    }
    for i in range(v["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        s |= {p + "attn.qkv.weight": r(3 * d, d), p + "attn.qkv.bias": r(3 * d), p + "attn.proj.weight": r(d, d),
              p + "attn.proj.bias": r(d), p + "ls1": r(d, scale=0.5), p + "ls2": r(d, scale=0.5),
              p + "norm1.weight": 1 + r(d), p + "norm1.bias": r(d), p + "norm2.weight": 1 + r(d),
              p + "norm2.bias": r(d), p + "mlp.fc1.weight": r(v["intermediate_size"], d),
              p + "mlp.fc1.bias": r(v["intermediate_size"]), p + "mlp.fc2.weight": r(d, v["intermediate_size"]),
              p + "mlp.fc2.bias": r(d)}
    h, vocab, ff = llm["hidden_size"], llm["vocab_size"], llm["intermediate_size"]
    heads, kv = llm["num_attention_heads"], llm["num_key_value_heads"]
    hd = h // heads
    s |= {"mlp1.0.weight": 1 + r(4 * d), "mlp1.0.bias": r(4 * d), "mlp1.1.weight": r(h, 4 * d), "mlp1.1.bias": r(h),
          "mlp1.3.weight": r(h, h), "mlp1.3.bias": r(h)}
    if kind == "internlm2":
        s |= {"language_model.model.tok_embeddings.weight": r(vocab, h, scale=0.5),
              "language_model.model.norm.weight": 1 + r(h), "language_model.output.weight": r(vocab, h, scale=0.2)}
        for i in range(llm["num_hidden_layers"]):
            p = f"language_model.model.layers.{i}."
            s |= {p + "attention.wqkv.weight": r((heads + 2 * kv) * hd, h, scale=0.2),
                  p + "attention.wo.weight": r(h, h), p + "feed_forward.w1.weight": r(ff, h),
                  p + "feed_forward.w3.weight": r(ff, h), p + "feed_forward.w2.weight": r(h, ff),
                  p + "attention_norm.weight": 1 + r(h), p + "ffn_norm.weight": 1 + r(h)}
    else:
        s |= {"language_model.model.embed_tokens.weight": r(vocab, h, scale=0.5),
              "language_model.model.norm.weight": 1 + r(h), "language_model.lm_head.weight": r(vocab, h, scale=0.2)}
        for i in range(llm["num_hidden_layers"]):
            p = f"language_model.model.layers.{i}."
            s |= {p + "self_attn.q_proj.weight": r(heads * hd, h, scale=0.2),
                  p + "self_attn.q_proj.bias": r(heads * hd),
                  p + "self_attn.k_proj.weight": r(kv * hd, h, scale=0.2), p + "self_attn.k_proj.bias": r(kv * hd),
                  p + "self_attn.v_proj.weight": r(kv * hd, h), p + "self_attn.v_proj.bias": r(kv * hd),
                  p + "self_attn.o_proj.weight": r(h, h), p + "mlp.gate_proj.weight": r(ff, h),
                  p + "mlp.up_proj.weight": r(ff, h), p + "mlp.down_proj.weight": r(h, ff),
                  p + "input_layernorm.weight": 1 + r(h), p + "post_attention_layernorm.weight": 1 + r(h)}
    return s


def _answer_ends_at_once(state: dict[str, torch.Tensor], kind: LLMKind, stop_id: int) -> None:
    """Make greedy decoding emit ``stop_id`` first, whatever the input: residual channel 0 holds a constant that no
    layer writes to (embeddings and the projector's bias put it there), and only ``stop_id``'s output row reads it."""
    const = 10.0
    emb, out, wo, w2 = (("language_model.model.tok_embeddings.weight", "language_model.output.weight",
                         "attention.wo.weight", "feed_forward.w2.weight") if kind == "internlm2" else
                        ("language_model.model.embed_tokens.weight", "language_model.lm_head.weight",
                         "self_attn.o_proj.weight", "mlp.down_proj.weight"))
    state[emb][:, 0] = const
    state["mlp1.3.weight"][0] = 0
    state["mlp1.3.bias"][0] = const
    for name in state:
        if name.endswith((wo, w2)):
            state[name][0] = 0
    state[out][:, 0] = 0
    state[out][stop_id, 0] = 50.0


def tiny_original_internvl(path: str | Path, kind: LLMKind = "internlm2", *, seed: int = 0, layers: int = 2,
                           hidden: int = 64, tile: int = 56, max_tiles: int = 6, max_shard_bytes: int = 2**30,
                           answers_end_at_once: bool = False) -> Path:
    """Write a tiny original-layout InternVL checkpoint (``kind``: the LLM, ``internlm2`` or ``qwen2``) to ``path``.

    4 query heads share 2 key/value heads (GQA); a ``tile`` px tile gives ``(tile / 14)^2 / 4`` LM tokens.
    ``max_shard_bytes`` below the model's size writes shards with an index, as the real checkpoints are stored.
    ``answers_end_at_once`` makes every greedy answer stop at once (``<|im_end|>``), so that end-to-end runs
    through an evaluation that allows thousands of new tokens stay short on a CPU.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "internlm2":
        vocab, bos, eos, pad, template = _internlm2_tokenizer(out, seed), 1, 2, 2, "internlm2-chat"
    else:
        (vocab, eos, pad), bos, template = _qwen2_tokenizer(out), None, "Hermes-2"
    vision = {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 64,
              "intermediate_size": 128, "num_attention_heads": 2, "num_hidden_layers": layers, "image_size": tile,
              "patch_size": 14, "num_channels": 3, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
              "norm_type": "layer_norm", "qk_normalization": False, "qkv_bias": True, "attention_dropout": 0.0,
              "drop_path_rate": 0.0, "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02,
              "use_flash_attn": False}
    config = {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel",
                     "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"},
        "downsample_ratio": 0.5, "dynamic_image_size": True, "force_image_size": tile, "max_dynamic_patch": max_tiles,
        "min_dynamic_patch": 1, "ps_version": "v2", "select_layer": -1, "template": template,
        "torch_dtype": "float32", "use_backbone_lora": 0, "use_llm_lora": 0, "use_thumbnail": True,
        "llm_config": _llm_config(kind, vocab, hidden, layers, bos, eos, pad), "vision_config": vision,
    }
    write_json(out / "config.json", config)
    write_json(out / "generation_config.json", {"eos_token_id": [eos], "pad_token_id": pad})
    for name in _REMOTE[kind]:
        (out / name).write_text(f'"""Stand-in for InternVL\'s remote-code file {name} (tests only)."""\n')
    state = _weights(kind, config, torch.Generator().manual_seed(seed))
    if answers_end_at_once:
        _answer_ends_at_once(state, kind, eos if kind == "qwen2" else _im_end_id(out))
    write_state(state, out, max_shard_bytes=max_shard_bytes)
    return out
