"""Convert InternVL2 / InternVL2.5 checkpoints between the original remote-code layout (``InternVLChatModel``) and
transformers' native ``InternVLForConditionalGeneration``, and back.

``to_hf`` keeps the source's non-weight files (config.json, the remote-code ``*.py``, the tokenizer files) under
``OUT/original_layout/`` so that ``to_original`` can write the original layout again, also from a checkpoint trained
on the converted model (pass ``original_from`` when that folder is gone).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mmpr.locations import check_apart
from mpo_train.convert_internvl.configs import LayoutError, internvl_config, llm_kind, tiling
from mpo_train.convert_internvl.files import is_weights_file, read_state, write_json, write_state, write_text
from mpo_train.convert_internvl.processor import build_processor, load_tokenizer
from mpo_train.convert_internvl.weights import hf_to_original, original_to_hf

__all__ = ["LayoutError", "to_hf", "to_original", "ORIGINAL_DIR"]

ORIGINAL_DIR = "original_layout"


def _heads(text: dict) -> dict:
    return {"num_heads": text["num_attention_heads"],
            "num_kv_heads": text.get("num_key_value_heads") or text["num_attention_heads"]}


def _copy_non_weights(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.is_file() and not is_weights_file(path.name) and path.name not in skip and \
                not path.name.startswith("."):  # hidden: this tool's own job marker, editor files
            shutil.copy2(path, dst / path.name)


def to_hf(src: str | Path, out: str | Path, *, max_shard_bytes: int = 5 * 1024**3) -> Path:
    """An original InternVL checkpoint folder -> a transformers-native one (model, processor, generation config)."""
    import torch
    from transformers import GenerationConfig, InternVLConfig, InternVLForConditionalGeneration

    src, out = Path(src), Path(out)
    check_apart(src, out, what_src="the checkpoint")
    config_text = (src / "config.json").read_text()
    config = json.loads(config_text)
    kind = llm_kind(config, where=str(src / "config.json"))
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(src, kind=kind, template=config.get("template", "internlm2-chat"))
    hf_kwargs = internvl_config(config, image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    state = original_to_hf(read_state(src), llm=kind, **_heads(hf_kwargs["text_config"]))
    hf_config = InternVLConfig(**hf_kwargs)
    hf_config.architectures = ["InternVLForConditionalGeneration"]
    hf_config.dtype = str(next(iter(state.values())).dtype).removeprefix("torch.")
    with torch.device("meta"):
        expected = set(InternVLForConditionalGeneration(hf_config).state_dict())
    if hf_config.tie_word_embeddings:
        expected.discard("lm_head.weight")
    if set(state) != expected:
        raise LayoutError(f"{src}: converted tensors differ from the model's: missing "
                          f"{sorted(expected - set(state))[:5]}, unexpected {sorted(set(state) - expected)[:5]}")
    write_state(state, out, max_shard_bytes=max_shard_bytes)
    hf_config.save_pretrained(out)
    build_processor(tok, tiling(config), out)
    eos = [tok.convert_tokens_to_ids("<|im_end|>")]
    if tok.eos_token_id is not None and tok.eos_token_id not in eos:
        eos.append(tok.eos_token_id)
    GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id).save_pretrained(out)
    _copy_non_weights(src, out / ORIGINAL_DIR, skip=("config.json",))
    # last: marks a finished conversion; the text read before anything was written, the source's own
    write_text(out / ORIGINAL_DIR / "config.json", config_text)
    return out


def source_dtype(config: dict):
    """The torch dtype an original config declares for its weights (``torch_dtype`` or ``dtype``, top level or
    in ``llm_config``), or None when it declares none."""
    import torch

    for section in (config, config.get("llm_config") or {}):
        name = section.get("torch_dtype") or section.get("dtype")
        if isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
    return None


def to_original(src: str | Path, out: str | Path, *, original_from: str | Path | None = None,
                max_shard_bytes: int = 5 * 1024**3) -> Path:
    """A transformers-native InternVL checkpoint -> the original layout, with config.json, remote code and tokenizer
    files from ``original_from`` (default ``SRC/original_layout``, written by :func:`to_hf`), the weights in the
    dtype that config declares (:func:`source_dtype`)."""
    src, out = Path(src), Path(out)
    check_apart(src, out, what_src="the checkpoint")
    if original_from:
        check_apart(original_from, out, what_src="--original-from")
    template = Path(original_from) if original_from else src / ORIGINAL_DIR
    if not (template / "config.json").exists():
        raise FileNotFoundError(f"{template / 'config.json'} not found: pass the original checkpoint the model was "
                                "converted from (--original-from) to take its config, remote code and tokenizer")
    config = json.loads((template / "config.json").read_text())
    kind = llm_kind(config, where=str(template / "config.json"))
    hf_config = json.loads((src / "config.json").read_text())
    text = hf_config["text_config"]
    state = read_state(src)
    if "lm_head.weight" not in state and not config["llm_config"].get("tie_word_embeddings", False):
        state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"].clone()  # saved tied
    original = hf_to_original(state, llm=kind, **_heads(text))
    dtype = source_dtype(config)
    if dtype is not None:  # a trained model is saved in float32; the source's config says what the weights are
        original = {k: v.to(dtype) if v.is_floating_point() else v for k, v in original.items()}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        if config["llm_config"].get(key) != text.get(key):
            raise LayoutError(f"{src / 'config.json'}: text_config.{key}={text.get(key)} but the original config "
                              f"{template / 'config.json'} has {config['llm_config'].get(key)}")
    out.mkdir(parents=True, exist_ok=True)
    write_state(original, out, max_shard_bytes=max_shard_bytes)
    _copy_non_weights(template, out, skip=("config.json",))
    write_json(out / "config.json", config)
    return out
