import gc
import hashlib

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmpr.testing import (
    FAMILIES,
    LAYER_TYPE_FAMILIES,
    MIXED_SHAPE_FAMILIES,
    TINY_FAMILIES,
    tiny_images,
    tiny_tokenizer,
    tiny_vlm,
)


def _digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def _inputs(processor, image, text="How many shapes are there?"):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[prompt], images=[image], return_tensors="pt")


def test_tokenizer_is_deterministic_and_has_the_special_tokens():
    a, b = tiny_tokenizer(), tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    assert a is not b
    for token in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", "<IMG_CONTEXT>"):
        ids = a(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, token
    assert a.decode(a("Final answer: (B) 3.5")["input_ids"]) == "Final answer: (B) 3.5"


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = tiny_vlm(tmp_path / "a", "qwen2_vl", seed=1)
    b = tiny_vlm(tmp_path / "b", "qwen2_vl", seed=1)
    c = tiny_vlm(tmp_path / "c", "qwen2_vl", seed=2)
    assert _digest(a) == _digest(b) != _digest(c)


def test_unknown_family_names_the_known_ones(tmp_path):
    from mmpr.registry import UnknownName

    with pytest.raises(UnknownName, match="tiny VLM family 'paligemma'.*available: .*internvl.*llava.*qwen2_vl"):
        tiny_vlm(tmp_path, "paligemma")


def test_the_family_tuples_come_from_the_registry():
    assert set(FAMILIES) == {"qwen2_vl", "llava", "internvl"}
    assert set(MIXED_SHAPE_FAMILIES) == {"smolvlm", "llava_onevision", "mistral3", "phi4_multimodal"}
    assert set(LAYER_TYPE_FAMILIES) == {"gemma3", "gemma4", "qwen3_5"}
    assert set(FAMILIES + MIXED_SHAPE_FAMILIES + LAYER_TYPE_FAMILIES) < set(TINY_FAMILIES.names())
    assert all(TINY_FAMILIES.describe().values()), "every family says what it is"


@pytest.mark.parametrize("family", FAMILIES)
def test_family_loads_generates_n4_and_backpropagates(family, tiny_model_dir):
    path = tiny_model_dir(family)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    inputs = _inputs(processor, tiny_images(1, size=(90, 70))[0])
    image_token = model.config.image_token_id
    assert (inputs["input_ids"] == image_token).sum() >= 4

    torch.manual_seed(0)
    out = model.generate(**inputs, do_sample=True, temperature=1.0, num_return_sequences=4, max_new_tokens=6,
                         min_new_tokens=6)
    prompt_len = inputs["input_ids"].shape[1]
    assert out.shape == (4, prompt_len + 6)
    assert len({tuple(row[prompt_len:].tolist()) for row in out}) > 1, "4 samples should not all be equal"

    labels = inputs["input_ids"].masked_fill(inputs["input_ids"] == image_token, -100)
    loss = model(**inputs, labels=labels).loss
    loss.backward()
    vision_grads = [p.grad for n, p in model.named_parameters()
                    if ("vision" in n or "visual" in n) and p.grad is not None]
    assert torch.isfinite(loss) and loss.item() > 0
    assert vision_grads and any(g.abs().sum() > 0 for g in vision_grads), "the image must reach the loss"


def test_tiny_images_are_distinct_and_deterministic():
    a, b = tiny_images(5, seed=3), tiny_images(5, seed=3)
    assert [x.tobytes() for x in a] == [x.tobytes() for x in b]
    assert len({x.tobytes() for x in a}) == 5
    assert a[0].size == (64, 48) and a[0].mode == "RGB"


# families vLLM 0.32's CPU engine cannot load (README's families table)
NOT_IN_VLLM_CPU = {
    "phi4_multimodal": "vLLM dropped transformers' Phi4MultimodalForCausalLM after 0.12 (only the remote-code Phi4MM)",
    "kimi_k25": "vLLM serves it through its Transformers backend, whose weight names miss the MoonViT tower's",
}
# vLLM's CPU engine wants Llama 4's attention chunk (32 tokens here) to be a multiple of its KV-cache block
VLLM_ARGS = {"llama4": {"block_size": 32}}


def _vllm_samples(path, image, **kwargs):
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(path), max_model_len=2048, enforce_eager=True, distributed_executor_backend="uni",
              limit_mm_per_prompt={"image": 1, "video": 0}, seed=0, **kwargs)
    try:
        params = SamplingParams(n=4, temperature=1.0, max_tokens=8, ignore_eos=True, seed=0)
        conversation = [{"role": "user", "content": [{"type": "image_pil", "image_pil": image},
                                                     {"type": "text", "text": "How many shapes are there?"}]}]
        (result,) = llm.chat([conversation], params)
    finally:
        del llm
        gc.collect()
    return result


def _check_vllm_sampling(family, tiny_model_dir):
    path = tiny_model_dir(family)
    processor = AutoProcessor.from_pretrained(path)
    image = tiny_images(1, size=(90, 70))[0]
    expected_image_tokens = int((_inputs(processor, image)["input_ids"] == processor.image_token_id).sum())
    result = _vllm_samples(path, image, **VLLM_ARGS.get(family, {}))
    assert len(result.outputs) == 4
    assert all(len(o.token_ids) == 8 for o in result.outputs)
    assert result.prompt_token_ids.count(processor.image_token_id) == expected_image_tokens > 0


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_family_generates_through_vllm_with_an_image(family, tiny_model_dir):
    _check_vllm_sampling(family, tiny_model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in TINY_FAMILIES.names()
                                    if f not in ("qwen2_vl", "llava", *NOT_IN_VLLM_CPU)])
def test_every_family_vllm_supports_samples_through_its_cpu_engine(family, tiny_model_dir):
    """n=4 samples with an image through vLLM's CPU engine, whose prompt has as many image tokens as the family's
    own processor makes."""
    _check_vllm_sampling(family, tiny_model_dir)


@pytest.mark.parametrize(("family", "switches"), [
    ("gemma3", {"sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"]}),
    ("gemma4", {"sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"],
                "use_bidirectional_attention": "vision", "final_logit_softcapping": 30.0, "attention_k_eq_v": True}),
    ("qwen3_5", {"layer_types": ["linear_attention", "full_attention"], "partial_rotary_factor": 0.25}),
])
def test_layer_type_families_keep_their_real_switches(family, switches, tiny_model_dir):
    from transformers import AutoConfig

    assert family in LAYER_TYPE_FAMILIES
    text = AutoConfig.from_pretrained(tiny_model_dir(family)).get_text_config()
    assert {key: getattr(text, key) for key in switches} == switches
