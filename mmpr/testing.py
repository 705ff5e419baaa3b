"""Tiny offline vision-language models, images and sources for tests and demos.

Nothing here touches a model hub: each model is built from a config with random weights and a byte-level
BPE tokenizer trained on the spot, then saved with its processor and a chat template, so that
``AutoModelForImageTextToText.from_pretrained(path)`` and ``AutoProcessor.from_pretrained(path)`` load it.
The ``qwen2_vl`` and ``llava`` models also load in vLLM's CPU engine (attention head size 32).
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw

from mmpr.registry import Registry

Family = str  # a name in TINY_FAMILIES


@dataclass(frozen=True)
class TinyFamily:
    """A tiny family: ``build(out, *, layers, hidden, max_image_tokens, extra_corpus) -> (model, processor)`` and
    what sets it apart (``traits``: ``demo``, ``mixed_shapes``, ``layer_types``, see the tuples below the builders;
    ``vllm_vision_keys``: its vision tower is saved in the layout vLLM's loader expects)."""

    build: Callable[..., tuple]
    traits: frozenset[str]


# every tiny family, by name (tiny_vlm's ``family``)
TINY_FAMILIES: Registry[TinyFamily] = Registry("tiny VLM family")


def _family(name: str, *traits: str, description: str):
    """Register the decorated builder as the tiny family ``name``."""
    def register(build):
        TINY_FAMILIES.register(name, TinyFamily(build, frozenset(traits)), description=description)
        return build

    return register


# Special tokens shared by all families; each family uses the ones its processor expects.
_SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
    "<img>", "</img>", "<IMG_CONTEXT>", "<video>",
]

_WORDS = (
    "the a an of to and is are in on with for from by at it this that what which how many much "
    "image picture chart figure table diagram graph bar line shape circle triangle square angle "
    "red green blue yellow black white color left right top bottom number value total sum "
    "step first second then so therefore because since we find compute answer question option "
    "choice final yes no true false area length width height degree percent cm meter unit "
    "solve equation x y z plus minus times divided equals greater less than"
).split()


def _corpus(rng: random.Random, extra: tuple[str, ...] = ()):
    yield from extra
    for _ in range(3000):
        yield " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 25)))
    for i in range(1500):
        a, b = rng.randint(0, 999), rng.randint(0, 99)
        letter = "ABCDE"[i % 5]
        yield (f"Step {i % 9 + 1}: {a} + {b} = {a + b}. So the answer is {letter}.\n"
               f"Final answer: ({letter}) {a / (b + 1):.2f}\\boxed{{{a}}} Answer: {b}%")
    yield "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \n\t"


@functools.lru_cache(maxsize=4)
def _trained_tokenizer(vocab_size: int, seed: int, extra_corpus: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(random.Random(seed), extra_corpus), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        extra_special_tokens={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )


def tiny_tokenizer(*, chat_template: str | None = None, vocab_size: int = 2000, seed: int = 0,
                   extra_corpus: tuple[str, ...] = ()):
    """A freshly trained byte-level BPE tokenizer with ChatML-style special tokens (deterministic).

    ``extra_corpus`` adds training text, so that a task's own words (e.g. a synthetic task's prompts and
    reasoning) become whole tokens instead of byte pieces."""
    tok = copy.deepcopy(_trained_tokenizer(vocab_size, seed, tuple(extra_corpus)))
    tok.chat_template = chat_template if chat_template is not None else chat_template_for("<image>")
    return tok


def published_template(name: str) -> str:
    """A family's chat template as its checkpoint ships it, stored verbatim in ``mmpr/data/chat_templates/<name>.jinja``
    (where each comes from: ``SOURCES.md`` there)."""
    return (Path(__file__).parent / "data" / "chat_templates" / f"{name}.jinja").read_text()


def chat_template_for(image_placeholder: str) -> str:
    """A ChatML chat template that renders each image part as ``image_placeholder``.

    It accepts string or list-of-parts contents and supports ``continue_final_message``.
    """
    return (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'text' %}{{ part['text'] }}"
        "{% elif part['type'] in ('image', 'image_url', 'image_pil') %}"
        "{{ '" + image_placeholder + "' }}{% endif %}"
        "{% endfor %}{% endif %}"
        "{{ '<|im_end|>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


def _text_config(tok, *, layers: int, hidden: int) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,  # head size 32: the smallest vLLM's CPU attention accepts
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
    )


def _merged_patches(patch: int, max_image_tokens: int, **extra) -> dict:
    """Image / video processor settings of the families that merge 2 x 2 patches into one LM token (Qwen-VL, GLM-V):
    an image gets 4 to ``max_image_tokens`` tokens of (2 * patch)^2 pixels each."""
    side = 2 * patch
    return dict(size={"shortest_edge": side * side * 4, "longest_edge": side * side * max_image_tokens},
                patch_size=patch, merge_size=2, temporal_patch_size=2, **extra)


@_family("qwen2_vl", "demo", description="Qwen2-VL (ChatML template; loads in vLLM's CPU engine)")
def _build_qwen2_vl(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = tiny_tokenizer(chat_template=chat_template_for("<|vision_start|><|image_pad|><|vision_end|>"),
                         extra_corpus=extra_corpus)
    head_dim = 32
    text = _text_config(tok, layers=layers, hidden=hidden)
    # mrope sections (temporal, height, width) must sum to head_dim / 2
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    assert sum(text["rope_parameters"]["mrope_section"]) == head_dim // 2
    vision = dict(depth=layers, embed_dim=64, hidden_size=hidden, num_heads=2, mlp_ratio=2, in_channels=3,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    ids = tok.convert_tokens_to_ids
    cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                        video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                        vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=True)
    model = Qwen2VLForConditionalGeneration(cfg)
    kw = _merged_patches(14, max_image_tokens)
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessorPil(**kw), tokenizer=tok,
                                 video_processor=Qwen2VLVideoProcessor(**kw), chat_template=tok.chat_template)
    return model, processor


@_family("llava", "demo", "vllm_vision_keys", description="LLaVA-1.5 layout: CLIP tower, Llama text")
def _build_llava(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    image_token = "<|image_pad|>"
    tok = tiny_tokenizer(chat_template=chat_template_for(image_token + "\n"), extra_corpus=extra_corpus)
    side = 14 * max(1, int(max_image_tokens**0.5))
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                              image_size=side, patch_size=14, projection_dim=64)
    cfg = LlavaConfig(vision_config=vision, text_config=LlamaConfig(**_text_config(tok, layers=layers, hidden=hidden)),
                      image_token_id=tok.convert_tokens_to_ids(image_token), vision_feature_layer=-1,
                      vision_feature_select_strategy="default", projector_hidden_act="gelu", tie_word_embeddings=True)
    model = LlavaForConditionalGeneration(cfg)
    ip = LlavaImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                do_pad=False, do_center_crop=True,
                                image_mean=[0.48145466, 0.4578275, 0.40821073],
                                image_std=[0.26862954, 0.26130258, 0.27577711])
    processor = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14,
                               vision_feature_select_strategy="default", image_token=image_token,
                               num_additional_image_tokens=1, chat_template=tok.chat_template)
    return model, processor


@_family("internvl", "demo", description="InternVL3 / 3.5, transformers-native: tiles and a thumbnail")
def _build_internvl(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    tok = tiny_tokenizer(chat_template=chat_template_for("<IMG_CONTEXT>\n"), extra_corpus=extra_corpus)
    tile, patch, downsample = 56, 14, 0.5
    tokens_per_tile = int((tile // patch) ** 2 * downsample**2)
    max_tiles = max(1, max_image_tokens // tokens_per_tile - 1)  # tiles + a thumbnail
    vision = dict(hidden_size=64, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=128,
                  image_size=tile, patch_size=patch)
    cfg = InternVLConfig(vision_config=vision, text_config=dict(model_type="qwen2", **_text_config(tok, layers=layers,
                                                                                                   hidden=hidden)),
                         image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=tokens_per_tile,
                         downsample_ratio=downsample, tie_word_embeddings=True)
    model = InternVLForConditionalGeneration(cfg)
    ip = GotOcr2ImageProcessorPil(size={"height": tile, "width": tile}, crop_to_patches=True, min_patches=1,
                                  max_patches=max_tiles)
    vp = InternVLVideoProcessor(size={"height": tile, "width": tile})
    processor = InternVLProcessor(image_processor=ip, tokenizer=tok, video_processor=vp,
                                  image_seq_length=tokens_per_tile, chat_template=tok.chat_template)
    return model, processor


def _family_tokenizer(chat_template: str, extra_corpus: tuple[str, ...], *, eos: str = "<|im_end|>",
                      bos: str | None = None, named: dict[str, str] | None = None, tokens: tuple[str, ...] = ()):
    """The tiny tokenizer with a family's own special tokens: ``named`` ones (attribute -> token, read by its
    processor, e.g. Gemma 3's ``boi_token``), the other ``tokens``, its eos and its bos, which it adds in front of a
    text like the real one does (so a template that renders it too shows a double one)."""
    from transformers import PreTrainedTokenizerFast

    base = tiny_tokenizer(extra_corpus=extra_corpus)
    named = dict(named or {})
    tok = PreTrainedTokenizerFast(tokenizer_object=copy.deepcopy(base.backend_tokenizer), bos_token=bos,
                                  eos_token=eos, pad_token="<|endoftext|>", unk_token=None,
                                  extra_special_tokens=named)
    new = dict.fromkeys(t for t in [bos, eos, *named.values(), *tokens] if t and t not in tok.get_vocab())
    tok.add_tokens(list(new), special_tokens=True)
    if bos:
        from tokenizers import processors

        tok.backend_tokenizer.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B",
                                          special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])])
    tok.chat_template = chat_template
    return tok


def _llama_text(tok, *, layers: int, hidden: int, eos: str, **switches) -> dict:
    """A Llama-style text config of the tiny sizes, ending turns with ``eos``; ``switches`` are the family's."""
    text = _text_config(tok, layers=layers, hidden=hidden)
    text.update(eos_token_id=tok.convert_tokens_to_ids(eos), **switches)
    return text


# SmolVLM-256M-Instruct (Idefics3ForConditionalGeneration): SigLIP 512 px / patch 16, pixel shuffle scale_factor 4
# (64 tokens per crop), images split into 512 px crops plus a global image (do_image_splitting, longest_edge 2048),
# "User:<image>...<end_of_utterance>\nAssistant:" turns. Scaled: 56 px crops of 14 px patches, scale_factor 2.
@_family("smolvlm", "mixed_shapes", description="SmolVLM / Idefics3: image crops and a global image")
def _build_smolvlm(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    grid = ("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
            *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)))
    tok = _family_tokenizer(published_template("smolvlm"), extra_corpus, eos="<end_of_utterance>", tokens=grid)
    crop, patch, scale = 56, 14, 2
    tokens_per_crop = (crop // patch) ** 2 // scale**2
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                  image_size=crop, patch_size=patch)
    text = _llama_text(tok, layers=layers, hidden=hidden, eos="<end_of_utterance>", rope_theta=100000.0)
    cfg = Idefics3Config(vision_config=vision, text_config=dict(model_type="llama", **text), scale_factor=scale,
                         image_token_id=tok.convert_tokens_to_ids("<image>"), pad_token_id=text["pad_token_id"],
                         tie_word_embeddings=True)
    model = Idefics3ForConditionalGeneration(cfg)
    # up to 2 x 2 crops and the global image, bounded by max_image_tokens
    side = crop * max(1, min(2, int((max_image_tokens // tokens_per_crop - 1) ** 0.5)))
    ip = Idefics3ImageProcessorPil(do_image_splitting=True, size={"longest_edge": side},
                                   max_image_size={"longest_edge": crop}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=tokens_per_crop,
                                  chat_template=tok.chat_template)
    return model, processor


# llava-onevision-qwen2-0.5b-ov-hf: SigLIP 384 px / patch 14 (729 tokens), anyres grid pinpoints 384..2304 px,
# vision_aspect_ratio anyres_max_9, feature strategy "full", Qwen2 text, images first then "\n" + text in a turn.
@_family("llava_onevision", "mixed_shapes", "vllm_vision_keys", description="LLaVA-OneVision: anyres patches")
def _build_llava_onevision(out: Path, *, layers: int, hidden: int, max_image_tokens: int,
                           extra_corpus: tuple[str, ...]):
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )
    from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

    tok = _family_tokenizer(published_template("llava_onevision"), extra_corpus, tokens=("<image>", "<video>"))
    tile, patch = 28, 14
    vision = dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                  num_attention_heads=2, image_size=tile, patch_size=patch)
    pinpoints = [[tile * h, tile * w] for h in (1, 2, 3) for w in (1, 2, 3)]
    cfg = LlavaOnevisionConfig(vision_config=vision, text_config=dict(model_type="qwen2", **_text_config(
        tok, layers=layers, hidden=hidden)), image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"), image_grid_pinpoints=pinpoints,
        vision_aspect_ratio="anyres_max_9", vision_feature_select_strategy="full", tie_word_embeddings=True)
    model = LlavaOnevisionForConditionalGeneration(cfg)
    kw = dict(size={"height": tile, "width": tile}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    ip = LlavaOnevisionImageProcessorPil(image_grid_pinpoints=pinpoints, do_pad=True, **kw)
    processor = LlavaOnevisionProcessor(image_processor=ip, tokenizer=tok, video_processor=LlavaOnevisionVideoProcessor(
        **kw), num_image_tokens=(tile // patch) ** 2, vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9", chat_template=tok.chat_template)
    return model, processor


# Mistral-Small-3.1 (Mistral3ForConditionalGeneration): Pixtral vision tower at native resolution (patch 14,
# longest edge 1540), spatial_merge_size 2, [IMG] / [IMG_BREAK] / [IMG_END] tokens, "[INST]...[/INST]" turns with
# no generation prompt and the answer closed by </s>. Scaled: longest edge 112 px.
@_family("mistral3", "mixed_shapes", description="Mistral Small 3.1: Pixtral tower at native resolution")
def _build_mistral3(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PixtralProcessor
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    tok = _family_tokenizer(published_template("mistral3"), extra_corpus, eos="</s>", bos="<s>",
                            tokens=("[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"))
    patch, merge = 14, 2
    longest = patch * merge * max(2, int(max_image_tokens**0.5))
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                  head_dim=32, image_size=longest, patch_size=patch)
    text = _llama_text(tok, layers=layers, hidden=hidden, eos="</s>", bos_token_id=tok.convert_tokens_to_ids("<s>"),
                       head_dim=hidden // (hidden // 32))
    cfg = Mistral3Config(vision_config=vision, text_config=dict(model_type="mistral", **text),
                         image_token_index=tok.convert_tokens_to_ids("[IMG]"), spatial_merge_size=merge,
                         multimodal_projector_bias=False, tie_word_embeddings=True)
    model = Mistral3ForConditionalGeneration(cfg)
    ip = PixtralImageProcessorPil(size={"longest_edge": longest}, patch_size={"height": patch, "width": patch})
    processor = PixtralProcessor(image_processor=ip, tokenizer=tok, patch_size=patch, spatial_merge_size=merge,
                                 chat_template=tok.chat_template)
    return model, processor


# Llama-4-Scout-17B-16E-Instruct: MoE text model (16 experts, top-1, every layer), NoPE on every 4th layer
# (no_rope_layer_interval 4), chunked attention (attention_chunk_size 8192), QK norm, attention temperature
# tuning; a 336 px / patch 14 vision tower with pixel shuffle 0.5 over up to 16 tiles; the image processor returns
# bfloat16 pixels; Llama 4's own chat template. Scaled: 4 layers (one NoPE), 4 experts, 56 px tiles, chunks of 32
# tokens (shorter than most prompts, as 8192 is shorter than long MMPR rows, so the chunked mask matters; vLLM's
# CPU engine wants a chunk that is a multiple of its 32-token blocks).
@_family("llama4", description="Llama 4 Scout: experts, NoPE layers, chunked attention, bf16 pixels")
def _build_llama4(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Llama4Config, Llama4ForConditionalGeneration, Llama4Processor
    from transformers.models.llama4.image_processing_llama4 import Llama4ImageProcessor
    from transformers.models.llama4.processing_llama4 import chat_template

    tok = _family_tokenizer(chat_template, extra_corpus, eos="<|eot|>", bos="<|begin_of_text|>",
                            tokens=("<|header_start|>", "<|header_end|>", "<|image_start|>", "<|image|>",
                                    "<|image_end|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>",
                                    "<|python_start|>", "<|python_end|>"))
    ids = tok.convert_tokens_to_ids
    tile, patch, shuffle = 56, 14, 0.5
    tokens_per_tile = int((tile // patch) ** 2 * shuffle**2)
    # the pixel shuffle feeds 64 / shuffle**2 channels to the adapter: intermediate_size (1408 x 4 in Scout)
    vision = dict(hidden_size=64, intermediate_size=int(64 / shuffle**2), num_hidden_layers=layers,
                  num_attention_heads=2, image_size=tile, patch_size=patch, pixel_shuffle_ratio=shuffle,
                  vision_output_dim=hidden, projector_input_dim=hidden, projector_output_dim=hidden)
    text = _llama_text(tok, layers=max(layers, 4), hidden=hidden, eos="<|eot|>",
                       bos_token_id=ids("<|begin_of_text|>"), head_dim=32, intermediate_size_mlp=2 * hidden,
                       num_local_experts=4, num_experts_per_tok=1,
                       interleave_moe_layer_step=1, no_rope_layer_interval=4, attention_chunk_size=32,
                       use_qk_norm=True, attn_temperature_tuning=True, floor_scale=8192, attn_scale=0.1)
    cfg = Llama4Config(vision_config=vision, text_config=text, boi_token_index=ids("<|image_start|>"),
                       eoi_token_index=ids("<|image_end|>"), image_token_index=ids("<|patch|>"),
                       tie_word_embeddings=True)
    model = Llama4ForConditionalGeneration(cfg)
    max_tiles = max(1, max_image_tokens // tokens_per_tile - 1)  # tiles + the global image
    ip = Llama4ImageProcessor(size={"height": tile, "width": tile}, max_patches=max_tiles)
    processor = Llama4Processor(image_processor=ip, tokenizer=tok, patch_size=patch, pixel_shuffle_ratio=shuffle,
                                chat_template=chat_template)
    return model, processor


# Phi-4-multimodal-instruct (Phi4MultimodalForCausalLM, only in AutoModelForMultimodalLM): Phi-4-mini text model
# (partial_rotary_factor 0.75, tied embeddings), a 448 px / patch 14 SigLIP tower over dynamic HD crops
# (dynamic_hd 36) whose token count the processor fixes for 448 px crops (256 + 16 per crop), an audio encoder,
# and a chat template on the tokenizer only, reading contents as strings. Scaled: 2 layers, dynamic_hd 2 (up to
# two crops and the global image), one audio block; long RoPE left out (the toy rows stay far below 4096 tokens).
_PHI4_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
    "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + "
    "message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + "
    "'<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}"
    "{{ eos_token }}{% endif %}")


@_family("phi4_multimodal", "mixed_shapes", description="Phi-4-multimodal: dynamic HD crops, AutoModelForMultimodalLM")
def _build_phi4_multimodal(out: Path, *, layers: int, hidden: int, max_image_tokens: int,
                           extra_corpus: tuple[str, ...]):
    from transformers import Phi4MultimodalConfig, Phi4MultimodalForCausalLM, Phi4MultimodalProcessor
    from transformers.models.phi4_multimodal.feature_extraction_phi4_multimodal import Phi4MultimodalFeatureExtractor
    from transformers.models.phi4_multimodal.image_processing_phi4_multimodal import Phi4MultimodalImageProcessor

    # the processor reads the image and audio tokens from the tokenizer's named special tokens
    tok = _family_tokenizer(_PHI4_TEMPLATE, extra_corpus, eos="<|endoftext|>",
                            named={"image_token": "<|image|>", "audio_token": "<|audio|>"},
                            tokens=("<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|tool|>", "<|/tool|>"))
    ids = tok.convert_tokens_to_ids
    crop, patch = 448, 14
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                  image_size=crop, patch_size=patch, crop_size=crop, image_token_id=ids("<|image|>"))
    audio = dict(hidden_size=64, intermediate_size=128, num_blocks=1, num_attention_heads=2, ext_pw_out_channel=64,
                 depthwise_separable_out_channel=64, nemo_conv_channels=64, audio_token_id=ids("<|audio|>"))
    text = _text_config(tok, layers=layers, hidden=hidden)
    text.update(eos_token_id=[ids("<|end|>"), ids("<|endoftext|>")], original_max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75})
    cfg = Phi4MultimodalConfig(**text, vision_config=vision, audio_config=audio)
    model = Phi4MultimodalForCausalLM(cfg)
    ip = Phi4MultimodalImageProcessor(size={"height": crop, "width": crop}, patch_size=patch, dynamic_hd=2)
    processor = Phi4MultimodalProcessor(image_processor=ip, audio_processor=Phi4MultimodalFeatureExtractor(),
                                        tokenizer=tok)
    return model, processor


def _qwen_vl_parts(template: str, extra_corpus: tuple[str, ...], *, layers: int, hidden: int,
                   mrope_section: list[int]):
    """The tokenizer (with the family's published ``template``), text config and special token ids the Qwen VL
    families share (ChatML, vision pads)."""
    tok = tiny_tokenizer(chat_template=published_template(template), extra_corpus=extra_corpus)
    text = _text_config(tok, layers=layers, hidden=hidden)
    assert sum(mrope_section) == 32 // 2, "mrope sections (temporal, height, width) cover half the head size"
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section}
    ids = tok.convert_tokens_to_ids
    tokens = dict(image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
                  vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return tok, text, tokens


def _qwen_vl(model_cls, processor_cls, video_cls, tok, text: dict, vision: dict, tokens: dict, *, layers: int,
             hidden: int, patch: int, max_image_tokens: int):
    """A Qwen VL family's model and processor from its parts (:func:`_qwen_vl_parts`) and its own ``vision``
    switches, on the tower sizes and 2 x 2 patch merging those families share."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    vision = dict(depth=layers, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=hidden,
                  patch_size=patch, spatial_merge_size=2, temporal_patch_size=2, **vision)
    model = model_cls(model_cls.config_class(text_config=text, vision_config=vision, **tokens,
                                             tie_word_embeddings=True))
    kw = _merged_patches(patch, max_image_tokens)
    processor = processor_cls(image_processor=Qwen2VLImageProcessorPil(**kw), tokenizer=tok,
                              video_processor=video_cls(**kw), chat_template=tok.chat_template)
    return model, processor


# Qwen2.5-VL-7B-Instruct: the Qwen2-VL layout with a windowed vision tower (window_size 112 px, full attention
# only in blocks 7, 15, 23, 31), SwiGLU vision MLP, out_hidden_size to the LM. Scaled: window 56 px (2 x 2 merged
# patches), full attention in the last of the tower's blocks.
@_family("qwen2_5_vl", description="Qwen2.5-VL: windowed vision tower")
def _build_qwen2_5_vl(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok, text, tokens = _qwen_vl_parts("qwen2_5_vl", extra_corpus, layers=layers, hidden=hidden,
                                       mrope_section=[4, 6, 6])
    vision = dict(window_size=56, fullatt_block_indexes=[layers - 1], hidden_act="silu")
    return _qwen_vl(Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLVideoProcessor, tok, text, vision,
                    tokens, layers=layers, hidden=hidden, patch=14, max_image_tokens=max_image_tokens)


# Qwen3-VL-8B-Instruct: patch 16, DeepStack (vision features of blocks 8, 16, 24 added to the first LM layers),
# interleaved mrope (sections 24, 20, 20), learned vision position embeddings (2304). Scaled: deepstack from the
# first vision block, sections 6, 5, 5 of a 32 head size.
@_family("qwen3_vl", description="Qwen3-VL: DeepStack, interleaved mrope")
def _build_qwen3_vl(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    from transformers import Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tok, text, tokens = _qwen_vl_parts("qwen3_vl", extra_corpus, layers=layers, hidden=hidden,
                                       mrope_section=[6, 5, 5])
    text["rope_parameters"]["mrope_interleaved"] = True
    text["head_dim"] = 32
    vision = dict(num_position_embeddings=64, deepstack_visual_indexes=[0])
    return _qwen_vl(Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor, tok, text, vision,
                    tokens, layers=layers, hidden=hidden, patch=16, max_image_tokens=max_image_tokens)


@_family("gemma3", "layer_types", "vllm_vision_keys", description="Gemma 3: sliding windows, bidirectional images")
def _build_gemma3(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """Gemma 3 (google/gemma-3-4b-it) scaled down: sliding-window layers with one full-attention layer last
    (5:1 in the real model; here ``layers - 1`` : 1), a window shorter than an image (1,024 there, 8 here),
    separate rope bases for local and global layers, image tokens bidirectional within an image
    (``token_type_ids``), SigLIP tower with average pooling to ``mm_tokens_per_image``, <bos> in the template."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tok = _family_tokenizer(published_template("gemma3"), extra_corpus, bos="<bos>", eos="<end_of_turn>", named=named)
    # runs of 1-4 newlines are whole tokens in Gemma's vocabulary (vLLM's Gemma 3 looks them up by text)
    tok.add_tokens(["\n" * n for n in (4, 3, 2, 1)])
    ids = tok.convert_tokens_to_ids
    side, patch = 56, 14
    tokens_per_image = min(16, max(4, max_image_tokens))
    text = {**_text_config(tok, layers=layers, hidden=hidden), "head_dim": 32, "query_pre_attn_scalar": 32,
            "sliding_window": 8, "layer_types": ["sliding_attention"] * (layers - 1) + ["full_attention"],
            "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                                "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
            "bos_token_id": ids("<bos>"), "eos_token_id": ids("<end_of_turn>")}
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                  image_size=side, patch_size=patch, vision_use_head=False)
    cfg = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=tokens_per_image,
                       boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
                       image_token_index=ids("<image_soft_token>"), tie_word_embeddings=True)
    model = Gemma3ForConditionalGeneration(cfg)
    ip = Gemma3ImageProcessorPil(size={"height": side, "width": side}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Gemma3Processor(image_processor=ip, tokenizer=tok, image_seq_length=tokens_per_image,
                                chat_template=tok.chat_template)
    return model, processor


@_family("gemma4", "layer_types", description="Gemma 4: sliding windows, bidirectional images, empty thought channel")
def _build_gemma4(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """Gemma 4 scaled down: sliding-window layers (window 8 here) with the last layer full attention, full layers
    with their own head size and shared keys/values (``attention_k_eq_v``), proportional rope on a quarter of the
    global heads, image tokens bidirectional within an image (``use_bidirectional_attention: vision``, through
    ``mm_token_type_ids``), logit soft-capping, a variable-resolution vision tower pooled 3x3 to the fewest soft
    tokens its processor allows (70), and the empty thought channel of its chat template."""
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration, Gemma4Processor
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil
    from transformers.models.gemma4.video_processing_gemma4 import Gemma4VideoProcessor

    named = {"boi_token": "<|image>", "eoi_token": "<image|>", "image_token": "<|image|>",
             "audio_token": "<|audio|>", "boa_token": "<|audio>", "eoa_token": "<audio|>"}
    tok = _family_tokenizer(published_template("gemma4"), extra_corpus, bos="<bos>", eos="<turn|>", named=named,
                            tokens=("<|turn>", "<|channel>", "<channel|>", "<|think|>", "<|video|>"))
    ids = tok.convert_tokens_to_ids
    text = {**_text_config(tok, layers=layers, hidden=hidden), "head_dim": 32, "global_head_dim": 32,
            "sliding_window": 8, "layer_types": ["sliding_attention"] * (layers - 1) + ["full_attention"],
            "use_bidirectional_attention": "vision", "hidden_size_per_layer_input": 0,
            "vocab_size_per_layer_input": len(tok), "final_logit_softcapping": 30.0, "attention_k_eq_v": True,
            "num_global_key_value_heads": 1, "bos_token_id": ids("<bos>"), "eos_token_id": ids("<turn|>")}
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=2,
                  num_key_value_heads=2, head_dim=32, patch_size=16, pooling_kernel_size=3,
                  position_embedding_size=256, default_output_length=70)  # read by vLLM: soft tokens per image
    cfg = Gemma4Config(text_config=text, vision_config=vision, audio_config=None, boi_token_id=ids("<|image>"),
                       eoi_token_id=ids("<image|>"), image_token_id=ids("<|image|>"), video_token_id=ids("<|video|>"),
                       audio_token_id=ids("<|audio|>"), boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"))
    model = Gemma4ForConditionalGeneration(cfg)
    kw = dict(patch_size=16, max_soft_tokens=70, pooling_kernel_size=3)
    processor = Gemma4Processor(feature_extractor=Gemma4AudioFeatureExtractor(),
                                image_processor=Gemma4ImageProcessorPil(**kw), tokenizer=tok,
                                video_processor=Gemma4VideoProcessor(**kw), image_seq_length=70,
                                chat_template=tok.chat_template)
    return model, processor


@_family("qwen3_5", "layer_types", description="Qwen3.5: Gated DeltaNet linear attention, thinking template")
def _build_qwen3_5(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """Qwen3.5 (Qwen/Qwen3.5-9B) scaled down: Gated DeltaNet linear-attention layers and full-attention layers
    3:1 (``layers - 1`` : 1 here), partial rotary (a quarter of the head) with interleaved mrope, gated attention
    output, patch-16 vision tower, and the thinking switch of its chat template."""
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tok = _family_tokenizer(published_template("qwen3_5"), extra_corpus, named={"image_token": "<|image_pad|>",
                                                                   "video_token": "<|video_pad|>"})
    ids = tok.convert_tokens_to_ids
    text = {**_text_config(tok, layers=layers, hidden=hidden), "head_dim": 32,
            "layer_types": ["linear_attention"] * (layers - 1) + ["full_attention"],
            "linear_conv_kernel_dim": 4, "linear_key_head_dim": 64, "linear_value_head_dim": 64,
            "linear_num_key_heads": 2, "linear_num_value_heads": 4, "partial_rotary_factor": 0.25,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e7, "mrope_section": [2, 1, 1],
                                "mrope_interleaved": True, "partial_rotary_factor": 0.25}}
    vision = dict(depth=layers, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=16,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=64)
    cfg = Qwen3_5Config(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                        video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                        vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=True)
    model = Qwen3_5ForConditionalGeneration(cfg)
    kw = _merged_patches(16, max_image_tokens, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Qwen3VLProcessor(image_processor=Qwen2VLImageProcessorPil(**kw), tokenizer=tok,
                                 video_processor=Qwen3VLVideoProcessor(**kw), chat_template=tok.chat_template)
    return model, processor


def _glm_v_parts(template: str, extra_corpus: tuple[str, ...], *, layers: int, hidden: int, max_image_tokens: int):
    """The tokenizer (with the published ``template``), text and vision configs, special token ids and processor
    that GLM-4.1V and GLM-4.6V share: 3-D mrope over half of each head, a patch-14 tower with 2x2 merging, image
    start / end tokens, turns ended by the next turn's header (``<|user|>`` is an end-of-sequence token)."""
    from transformers import Glm4vProcessor
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil
    from transformers.models.glm4v.video_processing_glm4v import Glm4vVideoProcessor

    tok = _family_tokenizer(published_template(template), extra_corpus, eos="<|endoftext|>",
                            named={"image_token": "<|image|>", "video_token": "<|video|>"},
                            tokens=("[gMASK]", "<sop>", "<|user|>", "<|assistant|>", "<|system|>", "<|observation|>",
                                    "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
                                    "<|end_of_video|>"))
    ids = tok.convert_tokens_to_ids
    text = {**_text_config(tok, layers=layers, hidden=hidden), "head_dim": 32,
            "eos_token_id": [ids("<|endoftext|>"), ids("<|user|>"), ids("<|observation|>")],
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                "partial_rotary_factor": 0.5}}
    vision = dict(depth=layers, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=14, image_size=56,
                  spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden)
    tokens = dict(image_token_id=ids("<|image|>"), video_token_id=ids("<|video|>"),
                  image_start_token_id=ids("<|begin_of_image|>"), image_end_token_id=ids("<|end_of_image|>"),
                  video_start_token_id=ids("<|begin_of_video|>"), video_end_token_id=ids("<|end_of_video|>"))
    kw = _merged_patches(14, max_image_tokens)
    processor = Glm4vProcessor(image_processor=Glm4vImageProcessorPil(**kw), tokenizer=tok,
                               video_processor=Glm4vVideoProcessor(**kw), chat_template=tok.chat_template)
    return text, vision, tokens, processor


@_family("glm4v", description="GLM-4.1V: partial rotary mrope, turns without an end token")
def _build_glm4v(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """GLM-4.1V (zai-org/GLM-4.1V-9B-Thinking) scaled down (:func:`_glm_v_parts`), with its published template,
    which renders an assistant's content as given (a string)."""
    from transformers import Glm4vConfig, Glm4vForConditionalGeneration

    text, vision, tokens, processor = _glm_v_parts("glm4v", extra_corpus, layers=layers, hidden=hidden,
                                                   max_image_tokens=max_image_tokens)
    model = Glm4vForConditionalGeneration(Glm4vConfig(text_config=text, vision_config=vision, **tokens,
                                                      tie_word_embeddings=True))
    return model, processor


@_family("glm4v_moe", description="GLM-4.6V: GLM-4.5-Air experts, turns without an end token")
def _build_glm4v_moe(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """GLM-4.6V (zai-org/GLM-4.6V, Glm4vMoeForConditionalGeneration) scaled down (:func:`_glm_v_parts`): its
    language model is GLM-4.5-Air's, a dense first layer (first_k_dense_replace 1) then routed experts (128, top 8,
    sigmoid router with grouped top-k) and one shared expert, with biased q/k/v projections; 4 experts (top 2) here.
    Its template is the GLM-4.5 layout (``mmpr/data/chat_templates/SOURCES.md``): every rendered assistant turn
    opens with an empty ``<think></think>`` and none ends with a token of its own."""
    from transformers import Glm4vMoeConfig, Glm4vMoeForConditionalGeneration

    text, vision, tokens, processor = _glm_v_parts("glm4v_moe", extra_corpus, layers=layers, hidden=hidden,
                                                   max_image_tokens=max_image_tokens)
    text.update(attention_bias=True, n_routed_experts=4, num_experts_per_tok=2, n_shared_experts=1,
                moe_intermediate_size=32, first_k_dense_replace=1, n_group=1, topk_group=1, norm_topk_prob=True,
                use_qk_norm=False)
    model = Glm4vMoeForConditionalGeneration(Glm4vMoeConfig(text_config=text, vision_config=vision, **tokens,
                                                            tie_word_embeddings=True))
    return model, processor


# Kimi K2.5's turn layout (moonshotai/Kimi-K2.5): <|im_user|> / <|im_assistant|> headers closed by <|im_middle|>,
# an image is <|media_begin|>image<|media_content|><|media_pad|><|media_end|>, the last assistant turn carries its
# (here empty) thinking block before the content
KIMI_K25_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}{{ '<|im_assistant|>assistant<|im_middle|>' }}"
    "{%- if loop.last -%}{{ '<think></think>' }}{%- endif -%}"
    "{%- else -%}{{ '<|im_' + message['role'] + '|>' + message['role'] + '<|im_middle|>' }}{%- endif -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<|media_begin|>image<|media_content|><|media_pad|><|media_end|>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_assistant|>assistant<|im_middle|>' }}{%- endif -%}"
)


@_family("kimi_k25", description="Kimi K2.5: DeepSeek-V3 latent attention and experts, MoonViT")
def _build_kimi_k25(out: Path, *, layers: int, hidden: int, max_image_tokens: int, extra_corpus: tuple[str, ...]):
    """Kimi K2.5 scaled down: a DeepSeek-V3 language model (multi-head latent attention with low-rank queries and
    keys/values and a decoupled rope part, a dense first layer then routed + shared experts), the MoonViT tower
    (native resolution, 2x2 merge) and its projector."""
    from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration, Kimi_K25Processor
    from transformers.models.kimi_k25.image_processing_kimi_k25 import Kimi_K25ImageProcessor
    from transformers.models.kimi_k25.video_processing_kimi_k25 import Kimi_K25VideoProcessor

    tok = _family_tokenizer(KIMI_K25_TEMPLATE, extra_corpus, named={
        "image_token": "<|media_pad|>", "video_token": "<|kimi_k25_video_placeholder|>"}, tokens=(
        "<|im_user|>", "<|im_assistant|>", "<|im_middle|>", "<|media_begin|>", "<|media_content|>", "<|media_end|>"))
    ids = tok.convert_tokens_to_ids
    text = {**_text_config(tok, layers=layers, hidden=hidden), "model_type": "deepseek_v3", "q_lora_rank": 32,
            "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 24, "v_head_dim": 32,
            "num_key_value_heads": hidden // 32, "n_routed_experts": 4, "num_experts_per_tok": 2,
            "n_shared_experts": 1, "moe_intermediate_size": 32, "first_k_dense_replace": 1, "n_group": 1,
            "topk_group": 1}
    vision = dict(patch_size=14, pos_emb_height=8, pos_emb_width=8, num_attention_heads=2, num_hidden_layers=layers,
                  hidden_size=64, intermediate_size=128)
    cfg = Kimi_K25Config(text_config=text, vision_config=vision, projection_hidden_size=64,
                         image_token_id=ids("<|media_pad|>"), video_token_id=ids("<|kimi_k25_video_placeholder|>"),
                         vision_start_token_id=ids("<|media_begin|>"), vision_end_token_id=ids("<|media_end|>"),
                         tie_word_embeddings=True)
    model = Kimi_K25ForConditionalGeneration(cfg)
    kw = dict(max_patches=4 * max_image_tokens, patch_size=14, merge_size=2)
    processor = Kimi_K25Processor(image_processor=Kimi_K25ImageProcessor(**kw), tokenizer=tok,
                                  video_processor=Kimi_K25VideoProcessor(**kw), chat_template=KIMI_K25_TEMPLATE)
    return model, processor


def _with(trait: str) -> tuple[Family, ...]:
    return tuple(name for name in TINY_FAMILIES if trait in TINY_FAMILIES.get(name).traits)


# the families tiny:<family> references build and most tests use
FAMILIES: tuple[Family, ...] = _with("demo")
# families whose images differ in shape from pair to pair (crops, anyres patches, native resolution)
MIXED_SHAPE_FAMILIES: tuple[Family, ...] = _with("mixed_shapes")
# families whose layers are not all full attention: sliding windows and bidirectional images (Gemma 3 and 4),
# linear attention (Qwen3.5); the packed forward builds a mask per layer type for them or is refused
LAYER_TYPE_FAMILIES: tuple[Family, ...] = _with("layer_types")


def _vision_keys_for_vllm(out: Path) -> None:
    """Save the CLIP / SigLIP tower as ``vision_tower.vision_model.*``, the llava-hf layout vLLM's loader expects
    (transformers loads both)."""
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    state = load_file(path)
    prefix, want = "vision_tower.", "vision_tower.vision_model."
    state = {(want + k[len(prefix):] if k.startswith(prefix) and not k.startswith(want) else k): v
             for k, v in state.items()}
    save_file(state, path, metadata={"format": "pt"})


def tiny_vlm(path: str | Path, family: Family = "qwen2_vl", *, seed: int = 0, layers: int = 2, hidden: int = 64,
             max_image_tokens: int = 64, dtype: str = "float32", extra_corpus: tuple[str, ...] = ()) -> Path:
    """Write a loadable tiny VLM with its processor and chat template to ``path`` and return the path.

    ``family`` is a name in :data:`TINY_FAMILIES` (an unknown one is :class:`~mmpr.registry.UnknownName`): each
    built from the architecture switches of its real published config, scaled down, with its published chat
    template (see its builder).
    The same ``seed`` gives byte-identical weights. ``max_image_tokens`` bounds the LM tokens per image.
    ``extra_corpus`` is text the tokenizer also learns from (a task's vocabulary).
    """
    import torch

    build = TINY_FAMILIES.get(family).build
    if hidden % 32:
        raise ValueError(f"hidden={hidden} must be a multiple of 32 (attention head size 32)")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = build(out, layers=layers, hidden=hidden, max_image_tokens=max_image_tokens,
                                 extra_corpus=tuple(extra_corpus))
    model.to(getattr(torch, dtype)).save_pretrained(out)
    processor.save_pretrained(out)
    if "vllm_vision_keys" in TINY_FAMILIES.get(family).traits:
        _vision_keys_for_vllm(out)
    return out


_PALETTE = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40), (20, 20, 20), (240, 240, 240),
            (150, 60, 200), (250, 130, 30)]


def tiny_images(n: int, *, size: tuple[int, int] = (64, 48), seed: int = 0) -> list[Image.Image]:
    """``n`` distinct small RGB images (coloured shapes on a coloured background), deterministic for a seed."""
    rng = random.Random(seed)
    images = []
    for i in range(n):
        bg = _PALETTE[i % len(_PALETTE)]
        img = Image.new("RGB", size, bg)
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
            x1, y1 = x0 + rng.randrange(4, size[0] // 2), y0 + rng.randrange(4, size[1] // 2)
            fill = _PALETTE[rng.randrange(len(_PALETTE))]
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
        draw.text((2, 2), str(i), fill=(0, 0, 0) if sum(bg) > 300 else (255, 255, 255))
        images.append(img)
    return images


def write_release(root: str | Path, subsets: dict[str, list[dict]], *, images: dict[str, Image.Image] | None = None,
                  repeat_time: dict[str, float] | None = None, annotation_prefix: str = "") -> Path:
    """Write a small MMPR release folder (``meta.json``, ``annotations/<subset>.jsonl``, ``images/``).

    ``subsets`` maps subset names to rows (dicts written as JSON lines; a ``str`` row is written verbatim,
    to make malformed lines). ``images`` maps relative names to images saved under ``images/``.
    ``annotation_prefix`` is prepended to annotation and root paths in meta.json (e.g. a foreign absolute path,
    as in the v1.0 release).
    """
    import json

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for name, image in (images or {}).items():
        path = root / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    meta = {}
    for name, rows in subsets.items():
        lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
        (root / "annotations" / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines))
        meta[name] = {"root": f"{annotation_prefix}images",
                      "annotation": f"{annotation_prefix}annotations/{name}.jsonl", "data_augment": False,
                      "repeat_time": (repeat_time or {}).get(name, 1), "length": len(rows)}
    (root / "meta.json").write_text(json.dumps(meta, indent=2))
    return root


def demo_vlm(path: str | Path, family: Family = "qwen2_vl") -> Path:
    """A tiny VLM at ``path`` taught the answer format (:func:`teach_answer_format`): the model behind
    ``tiny:<family>`` references (:func:`mmpr.model_ref.resolve_model`)."""
    out = tiny_vlm(path, family)
    teach_answer_format(out)
    if "vllm_vision_keys" in TINY_FAMILIES.get(family).traits:
        _vision_keys_for_vllm(out)
    return out


_TEACH_QUESTIONS = [
    ("How many circles are there in the image?", [str(i) for i in range(1, 7)]),
    ("What colour is the square?", ["(A) red", "(B) green", "(C) blue", "(D) yellow", "red", "blue"]),
    ("Is there a triangle in the image?", ["yes", "no"]),
    ("What is the value of the tallest bar?", [str(10 * i) for i in range(1, 10)]),
]
_TEACH_REASONING = [
    "Let me look at the image carefully.", "I check each shape in the picture one by one.",
    "First I find the objects, then I count them.", "The figure shows some coloured shapes.",
]


def teach_answer_format(path: str | Path, *, steps: int = 150, seed: int = 0) -> None:
    """Train a tiny model at ``path`` briefly to answer in the chain-of-thought format ("reasoning ...
    Final answer: X", with X drawn at random), so that sampling it gives parsable answers, some right and some
    wrong: enough for the data engine to make real pairs in demos and end-to-end tests."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmpr.chat import conversation
    from mmpr.prompts import get_template

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    rng = random.Random(seed)
    images = tiny_images(16, size=(112, 84), seed=seed)
    template = get_template("mpo_cot")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    processor.tokenizer.padding_side = "right"
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            texts, batch_images, prompt_lens = [], [], []
            for _ in range(4):
                question, answers = rng.choice(_TEACH_QUESTIONS)
                messages = conversation(template.render(question), 1)
                prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                reply = f"{rng.choice(_TEACH_REASONING)} Final answer: {rng.choice(answers)}"
                image = rng.choice(images)
                prompt_lens.append(processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1])
                texts.append(prompt + reply + processor.tokenizer.eos_token)
                batch_images.append(image)
            inputs = processor(text=texts, images=batch_images, return_tensors="pt", padding=True)
            labels = inputs["input_ids"].clone()
            for row, n in enumerate(prompt_lens):
                labels[row, :n] = -100
            labels[inputs["attention_mask"] == 0] = -100
            loss = model(**inputs, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.save_pretrained(path)


# ------------------------------------------------------------------------------------ original-layout InternVL
# Tiny InternVL checkpoints in the ORIGINAL remote-code layout (for the converter's tests and the CI run of the
# reproduction script). The layout follows the published InternVL2 checkpoints (OpenGVLab/InternVL2-8B with InternLM2
# and a fused grouped ``wqkv``, OpenGVLab/InternVL2-1B with Qwen2): config.json with ``InternVLChatModel``,
# ``auto_map``, ``llm_config`` and ``vision_config``; InternViT + ``mlp1`` + LLM tensor names; InternLM2's
# sentencepiece ``tokenizer.model`` with the image tokens added after it; remote-code file names (their content here
# is a stand-in: this project ships no copy of InternVL's code).

OriginalLLM = Literal["internlm2", "qwen2"]
_INTERNVL_IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>",
                          "</box>"]
_INTERNVL_REMOTE = {"internlm2": ["configuration_intern_vit.py", "configuration_internlm2.py",
                                  "configuration_internvl_chat.py", "conversation.py", "modeling_intern_vit.py",
                                  "modeling_internlm2.py", "modeling_internvl_chat.py", "tokenization_internlm2.py",
                                  "tokenization_internlm2_fast.py"],
                    "qwen2": ["configuration_intern_vit.py", "configuration_internvl_chat.py", "conversation.py",
                              "modeling_intern_vit.py", "modeling_internvl_chat.py"]}


def _internlm2_tokenizer(out: Path, seed: int) -> int:
    """Train a sentencepiece BPE model like InternLM2's (byte fallback, no dummy prefix, whitespace kept) and write
    the tokenizer files; returns the vocabulary size including the added image tokens."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(_corpus(random.Random(seed)))), model_prefix=str(out / "tokenizer"),
        vocab_size=800, model_type="bpe", byte_fallback=True, user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, minloglevel=2)
    (out / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    n = sp.get_piece_size()
    special = {0: "<unk>", 1: "<s>", 2: "</s>", sp.piece_to_id("<|im_start|>"): "<|im_start|>",
               sp.piece_to_id("<|im_end|>"): "<|im_end|>"} | {n + i: t for i, t in enumerate(_INTERNVL_IMAGE_TOKENS)}
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for i, t in sorted(special.items())}
    _write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", *_INTERNVL_IMAGE_TOKENS],
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer",
                                       "tokenization_internlm2_fast.InternLM2TokenizerFast"]},
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
        "add_eos_token": False, "clean_up_tokenization_spaces": False, "model_max_length": 4096,
        "tokenizer_class": "InternLM2Tokenizer"})
    _write_json(out / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>",
                                                  "unk_token": "<unk>"})
    return n + len(_INTERNVL_IMAGE_TOKENS)


def _im_end_id(out: Path) -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).piece_to_id("<|im_end|>")


def _qwen2_tokenizer(out: Path) -> tuple[int, int, int]:
    tok = tiny_tokenizer()
    tok.add_tokens(_INTERNVL_IMAGE_TOKENS[3:], special_tokens=True)
    tok.chat_template = None
    tok.save_pretrained(out)
    return len(tok), tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")


def _llm_config(kind: OriginalLLM, vocab: int, hidden: int, layers: int, bos: int | None, eos: int, pad: int) -> dict:
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


def _write_json(path: Path, obj) -> None:
    import json

    from mmpr.io import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _weights(kind: OriginalLLM, cfg: dict, gen):
    import torch

    def r(*shape, scale=0.05):
        return torch.randn(*shape, generator=gen) * scale

    v, llm = cfg["vision_config"], cfg["llm_config"]
    d, n_patch = v["hidden_size"], (v["image_size"] // v["patch_size"]) ** 2
    s = {
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


def _answer_ends_at_once(state: dict, kind: OriginalLLM, stop_id: int) -> None:
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


def tiny_original_internvl(path: str | Path, kind: OriginalLLM = "internlm2", *, seed: int = 0, layers: int = 2,
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
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", {"eos_token_id": [eos], "pad_token_id": pad})
    for name in _INTERNVL_REMOTE[kind]:
        (out / name).write_text(f'"""Stand-in for InternVL\'s remote-code file {name} (tests only)."""\n')
    import torch
    from huggingface_hub import save_torch_state_dict

    state = _weights(kind, config, torch.Generator().manual_seed(seed))
    if answers_end_at_once:
        _answer_ends_at_once(state, kind, eos if kind == "qwen2" else _im_end_id(out))
    save_torch_state_dict(state, out, max_shard_size=max_shard_bytes)
    return out
