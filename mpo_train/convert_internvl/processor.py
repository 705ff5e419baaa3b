"""Tokenizer, chat template and processor for the converted model, made to reproduce the original preprocessing.

* Tokenizer: InternLM2's is a sentencepiece BPE model behind remote code (``tokenization_internlm2.py``); it becomes a
  ``tokenizers`` BPE (the same pieces, merges ranked by piece id, byte fallback, no added prefix space) with the
  checkpoint's added tokens at their ids. Qwen2's (InternVL2-1B) loads with transformers as it is.
* Chat template: the original conversation templates (``internlm2-chat``, ``Hermes-2``, InternVL's
  ``conversation.py``) are MPT style: ``<|im_start|>system\\n{system}<|im_end|><|im_start|>user\\n{q}<|im_end|>
  <|im_start|>assistant\\n``, with no newline after ``<|im_end|>`` (InternVL2.5's ``internvl2_5``: a newline) and
  the template's default system message when the conversation has none. An image part renders
  ``<IMG_CONTEXT>\\n``; the processor expands it to ``<img>`` + ``<IMG_CONTEXT>`` x (256 x tiles) + ``</img>``,
  as the original ``<image>\\n`` became.
* Image processor: GOT-OCR2's tiling is the original ``dynamic_preprocess`` (closest aspect ratio, ties to more
  tiles when the image is large enough, a thumbnail when more than one tile), bicubic, ImageNet mean/std.
"""

from __future__ import annotations

import json
from pathlib import Path

from mpo_train.convert_internvl.configs import LayoutError, Tiling

IMAGE_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# InternVL's conversation templates (internvl_chat/internvl/conversation.py, and the conversation.py shipped with
# each checkpoint), all MPT style: name -> (default system message, separator after each turn).
_INTERNVL2_SYSTEM = ("你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，"
                     "英文名叫InternVL, 是一个有用无害的人工智能助手。")
_INTERNVL2_5_SYSTEM = ("你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的"
                       "多模态大语言模型。")
TEMPLATES = {"internlm2-chat": (_INTERNVL2_SYSTEM, "<|im_end|>"), "Hermes-2": (_INTERNVL2_SYSTEM, "<|im_end|>"),
             "internvl2_5": (_INTERNVL2_5_SYSTEM, "<|im_end|>\n")}


def chat_template(system_message: str, sep: str = "<|im_end|>") -> str:
    """InternVL's MPT-style conversation as a Jinja chat template (string or list-of-parts contents): every turn is
    ``<|im_start|>{role}\\n{content}`` + ``sep``."""
    system, end = json.dumps(system_message, ensure_ascii=False), json.dumps(sep)
    return (
        "{%- if messages[0]['role'] != 'system' -%}"
        "{{ '<|im_start|>system\\n' + " + system + " + " + end + " }}"
        "{%- endif -%}"
        "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'text' -%}{{ part['text'] }}"
        "{%- elif part['type'] in ('image', 'image_url', 'image_pil') -%}{{ '<IMG_CONTEXT>\\n' }}"
        "{%- elif part['type'] == 'video' -%}{{ '<video>\\n' }}"
        "{%- endif -%}{%- endfor -%}{%- endif -%}"
        "{{ " + end + " }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


_PROBES = ("The answer is (B) 3.14.", "  two  spaces\n\nand\ttabs ", "x^2 + y_1 = \\frac{1}{2}", "数学题：求面积。")


def _sentencepiece_bpe(model_file: Path, tokenizer_config: dict):
    """A sentencepiece BPE model -> an equivalent ``LlamaTokenizer`` (tokenizers backend)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    # sentencepiece BPE merges: every split of a piece into two pieces, ranked by the merged piece's id
    ranked = sorted((rank, vocab[piece[:k]], vocab[piece[k:]], piece[:k], piece[k:])
                    for piece, rank in vocab.items() for k in range(1, len(piece))
                    if piece[:k] in vocab and piece[k:] in vocab)
    names = {k: tokenizer_config.get(k) for k in ("bos_token", "eos_token", "unk_token")}
    tok = LlamaTokenizer(vocab=vocab, merges=[(a, b) for *_, a, b in ranked], legacy=False, add_prefix_space=False,
                         **{k: (v["content"] if isinstance(v, dict) else v) for k, v in names.items() if v})
    tok.add_bos_token = bool(tokenizer_config.get("add_bos_token", True))
    tok.add_eos_token = bool(tokenizer_config.get("add_eos_token", False))
    for probe in _PROBES:  # a model with other normalisation rules must not convert silently wrong
        if tok.encode(probe, add_special_tokens=False) != sp.encode(probe):
            raise LayoutError(f"{model_file}: the converted tokenizer splits {probe!r} differently from sentencepiece")
    return tok


def _add_decoder_tokens(tok, tokenizer_config: dict, where: str) -> None:
    """Add ``added_tokens_decoder`` entries (special ones as special) and check each lands on its id."""
    from tokenizers import AddedToken

    for id_, entry in sorted(tokenizer_config.get("added_tokens_decoder", {}).items(), key=lambda kv: int(kv[0])):
        token = AddedToken(entry["content"], special=entry.get("special", True), normalized=False,
                           lstrip=entry.get("lstrip", False), rstrip=entry.get("rstrip", False),
                           single_word=entry.get("single_word", False))
        tok.add_tokens([token], special_tokens=token.special)
        got = tok.convert_tokens_to_ids(entry["content"])
        if got != int(id_):
            raise LayoutError(f"{where}: added token {entry['content']!r} has id {id_} in the checkpoint but "
                              f"{got} after conversion")


def load_tokenizer(src: Path, *, kind: str, template: str):
    """The source checkpoint's tokenizer as a transformers tokenizer with InternVL's image tokens and chat template."""
    from transformers import AutoTokenizer

    where = str(src / "tokenizer_config.json")
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    if kind == "internlm2" and (src / "tokenizer.model").exists() and not (src / "tokenizer.json").exists():
        tok = _sentencepiece_bpe(src / "tokenizer.model", cfg)
        _add_decoder_tokens(tok, cfg, where)
    else:
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=False)
    missing = [t for t in IMAGE_TOKENS.values() if t != "<video>" and tok.convert_tokens_to_ids(t) in
               (None, tok.unk_token_id)]
    if missing:
        raise LayoutError(f"{where}: the tokenizer lacks InternVL's image tokens {missing}")
    if template not in TEMPLATES:
        raise LayoutError(f"{src / 'config.json'}: conversation template {template!r} is not known; known: "
                          f"{', '.join(TEMPLATES)}")
    tok.chat_template = chat_template(*TEMPLATES[template])
    return tok


def build_processor(tok, tiling: Tiling, out: Path):
    """Save ``tok`` with InternVL's named image tokens, then an ``InternVLProcessor`` around it, to ``out``."""
    from transformers import AutoTokenizer, InternVLProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    tok.save_pretrained(out)
    # the processor finds the image tokens by these names in the tokenizer's config
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    # InternVL2 has no video token: point it at the image token rather than add one beyond the LM's vocabulary
    has_video = tok.convert_tokens_to_ids("<video>") not in (None, tok.unk_token_id)
    cfg["extra_special_tokens"] = dict(IMAGE_TOKENS, video_token="<video>" if has_video else "<IMG_CONTEXT>")
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    tok = AutoTokenizer.from_pretrained(out)
    size = {"height": tiling.tile, "width": tiling.tile}
    ip = GotOcr2ImageProcessorPil(size=size, crop_to_patches=tiling.dynamic, min_patches=tiling.min_tiles,
                                  max_patches=tiling.max_tiles, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
                                  do_convert_rgb=True)
    processor = InternVLProcessor(image_processor=ip, tokenizer=tok, video_processor=InternVLVideoProcessor(size=size),
                                  image_seq_length=tiling.tokens_per_tile, chat_template=tok.chat_template)
    processor.save_pretrained(out)
    return processor
