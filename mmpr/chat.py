"""Chat messages for a question with images: where the images go, and how a reply is continued."""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"


def with_placeholders(question: str, n_images: int) -> str:
    """The question with one ``<image>`` per image: as written if it has them, else prepended."""
    if n_images == 0 or IMAGE_PLACEHOLDER in question:
        return question
    return IMAGE_PLACEHOLDER * n_images + "\n" + question


def user_parts(question: str, n_images: int) -> list[dict]:
    """Content parts of the user turn: ``{"type": "image"}`` where the question's ``<image>`` placeholders
    are (all first if it has none), ``{"type": "text", "text": ...}`` for the text between them."""
    text = with_placeholders(question, n_images)
    parts: list[dict] = []
    for i, chunk in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i:
            parts.append({"type": "image"})
            chunk = chunk.lstrip("\n")
        if chunk:
            parts.append({"type": "text", "text": chunk})
    return parts


def conversation(question: str, n_images: int, *, prefix: str | None = None) -> list[dict]:
    """A one-turn conversation; with ``prefix``, an assistant turn to continue (``continue_final_message``)."""
    messages = [{"role": "user", "content": user_parts(question, n_images)}]
    if prefix is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": prefix}]})
    return messages


def fill_images(messages: list[dict], images, make_part) -> list[dict]:
    """Replace the ``{"type": "image"}`` parts, in order, with ``make_part(image)`` (an engine's own form)."""
    images = iter(images)
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            message["content"] = [make_part(next(images)) if part["type"] == "image" else part for part in content]
    return messages


def add_special_tokens(tokenizer, text: str) -> bool:
    """Whether to let the tokenizer add its special tokens to a chat-templated ``text``: not when the template
    already rendered the ``<bos>`` (Gemma's templates do; the tokenizer would add a second one)."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))
