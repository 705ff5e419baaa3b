import pytest
from transformers import LlamaConfig

from mmpr.errors import UserError
from mmpr.loading import load_processor, load_vlm, vlm_class


def test_a_model_in_no_vlm_auto_class_is_refused_in_one_line(tmp_path):
    LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(UserError, match="model type 'llama' is not an image-text-to-text model") as caught:
        load_vlm(tmp_path)
    assert "\n" not in str(caught.value)


def test_phi4_multimodal_loads_through_the_multimodal_auto_class(tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoModelForMultimodalLM

    assert vlm_class(tiny_model_dir("qwen2_vl")) is AutoModelForImageTextToText
    assert vlm_class(tiny_model_dir("phi4_multimodal")) is AutoModelForMultimodalLM


def test_the_tokenizers_string_template_renders_mmpr_conversations(tiny_model_dir):
    """Phi-4-multimodal: no template on the processor; the tokenizer's reads contents as strings."""
    from transformers import AutoProcessor

    from mmpr.chat import conversation

    path = tiny_model_dir("phi4_multimodal")
    assert not AutoProcessor.from_pretrained(path).chat_template
    processor = load_processor(path)
    rendered = processor.apply_chat_template(conversation("How many <image> and <image>?", 2),
                                             add_generation_prompt=True, tokenize=False)
    assert rendered == "<|user|>How many <|image|> and <|image|>?<|end|><|assistant|>"
    strings = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    assert processor.apply_chat_template(strings, tokenize=False) == "<|user|>hi<|end|><|assistant|>yes<|end|>" + \
        processor.tokenizer.eos_token, "string contents render as the template itself renders them"


def test_a_processor_template_that_takes_parts_is_left_alone(tiny_model_dir):
    from transformers import AutoProcessor

    path = tiny_model_dir("smolvlm")
    assert load_processor(path).chat_template == AutoProcessor.from_pretrained(path).chat_template
