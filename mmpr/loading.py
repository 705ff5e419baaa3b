"""Load a vision-language model and its processor, whichever transformers Auto class holds the family."""

from __future__ import annotations

from mmpr.errors import UserError


def vlm_class(path):
    """The Auto class that has the model at ``path``: ``AutoModelForImageTextToText`` (most families), then
    ``AutoModelForMultimodalLM`` (Phi-4-multimodal lives only there). A model in neither is refused in one line."""
    import transformers
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoModelForMultimodalLM

    config = AutoConfig.from_pretrained(path)
    for auto in (AutoModelForImageTextToText, AutoModelForMultimodalLM):
        if type(config) in auto._model_mapping:
            return auto
    raise UserError(f"{path}: model type {config.model_type!r} is not an image-text-to-text model in transformers "
                    f"{transformers.__version__} (neither AutoModelForImageTextToText nor AutoModelForMultimodalLM "
                    f"knows it); use a vision-language model, or a transformers release that has this family")


def load_vlm(path, **kwargs):
    """``from_pretrained`` through :func:`vlm_class`; ``kwargs`` go to ``from_pretrained`` (dtype, ...)."""
    return vlm_class(path).from_pretrained(path, **kwargs)


def load_processor(path):
    """``AutoProcessor.from_pretrained``, with the tokenizer's chat template where the processor has none
    (Phi-4-multimodal's processor exposes none; its tokenizer has it)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    tokenizer = getattr(processor, "tokenizer", None)
    if not getattr(processor, "chat_template", None) and getattr(tokenizer, "chat_template", None):
        processor.chat_template = tokenizer.chat_template
    return processor
