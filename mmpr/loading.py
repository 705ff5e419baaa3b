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


# Jinja put in front of a chat template that reads each message's content as a string: contents given as parts
# (mmpr.chat's {"type": "text"} / {"type": "image"}) become one string, each image part the processor's image token.
_STRING_CONTENTS = (
    "{%- set ns = namespace(messages=[]) -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set ns.messages = ns.messages + [message] -%}"
    "{%- else -%}{%- set text = namespace(value='') -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{%- set text.value = text.value + part['text'] -%}"
    "{%- else -%}{%- set text.value = text.value + IMAGE_TOKEN -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set ns.messages = ns.messages + [{'role': message['role'], 'content': text.value}] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- set messages = ns.messages -%}")


def _takes_parts(processor) -> bool:
    """Whether the processor's chat template renders a message whose content is a list of parts."""
    try:
        processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                      add_generation_prompt=True, tokenize=False)
    except Exception:  # the template's own error (a str + list concatenation, ...): it takes strings only
        return False
    return True


def load_processor(path):
    """``AutoProcessor.from_pretrained``, with the tokenizer's chat template where the processor has none
    (Phi-4-multimodal's processor exposes none; its tokenizer has one). A template that reads contents as strings
    (Phi-4-multimodal's) is given the contents as strings, each image part the processor's image token, so that
    the conversations of :mod:`mmpr.chat` render with it."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    tokenizer = getattr(processor, "tokenizer", None)
    if not getattr(processor, "chat_template", None) and getattr(tokenizer, "chat_template", None):
        processor.chat_template = tokenizer.chat_template
    image_token = getattr(processor, "image_token", None)
    if getattr(processor, "chat_template", None) and image_token and not _takes_parts(processor):
        processor.chat_template = (_STRING_CONTENTS.replace("IMAGE_TOKEN", repr(image_token))
                                   + processor.chat_template)
    return processor
