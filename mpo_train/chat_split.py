"""Prompt / response split of a chat-templated pair, token-exact.

The chat template renders the conversation twice: with the generation prompt (what the model sees when it answers)
and with the assistant turn (what it is trained to produce). The two need not agree where the answer starts:

- Gemma 4 adds an empty thought channel (``<|channel>thought\\n<channel|>``) to the generation prompt only: the
  prompt is then the generation prompt and the response is the rendered turn's content;
- Qwen3.5 ends the generation prompt with ``<think>\\n`` (thinking on) and renders the turn as
  ``<think>\\n\\n</think>\\n\\n{content}``: the empty thinking block joins the prompt, so it is not part of every
  chosen and rejected response (``chat_template_options: {enable_thinking: false}`` makes the two agree);
- a template that renders no end-of-turn token after the content (GLM-4.1V and GLM-4.6V, where the next turn's
  header ends a turn) gets the tokenizer's end-of-sequence token appended, so the SFT term teaches stopping;
- a template that renders an assistant content given as parts as the parts' Python repr (GLM-4.1V's
  ``{{ msg.content }}``) is given the answer as a string.

Each text ``prompt + response`` is tokenized once and the response found by character offsets, so a token that
straddles the boundary stays whole (it goes to the response) instead of being cut into two tokens the model never
saw. Whatever the template renders after the last special token of the turn (Qwen's ``\\n`` after
``<|im_end|>``) is not trained.
"""

from __future__ import annotations

from dataclasses import dataclass

_SENTINEL = "\x00"


@dataclass
class Split:
    prompt_text: str          # the prompt up to the first response token (images as their placeholders)
    prompt_tokens: int        # tokens of ``prompt_text`` (placeholders unexpanded)
    chosen: list[int]
    rejected: list[int]


def _assistant(text: str, as_parts: bool = True) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}] if as_parts else text}


def _parts_as_text(render, messages: list[dict]) -> bool:
    """Whether the template renders an assistant content given as parts as its text. GLM-4.1V's renders
    ``{{ msg.content }}``, the parts' Python repr: its assistant turns are given as strings."""
    parts = _assistant(_SENTINEL)
    return str(parts["content"]) not in render([*messages, parts])


def _turn(render, messages: list[dict], text: str, as_parts: bool = True) -> tuple[str, int]:
    """The rendering with the assistant turn, and where its content starts (templates may trim the content; an
    empty content is located with a sentinel)."""
    if text.strip():
        full = render([*messages, _assistant(text, as_parts)])
        start = full.rfind(text)
        if start < 0:
            start = full.rfind(text.strip())
        if start >= 0:
            return full, start
    marked = render([*messages, _assistant(text + _SENTINEL, as_parts)])
    start = marked.rfind(_SENTINEL) - len(text)
    if start < 0 or marked[start:start + len(text)] != text:
        raise ValueError("the chat template does not render the assistant's text as given; cannot find where the "
                         "response starts")
    return marked.replace(_SENTINEL, "", 1), start


def _prompt(generation: str, head: str) -> str:
    """The prompt: the longer of the generation prompt and the rendered turn's text before the content, when one
    extends the other (see module doc)."""
    if generation.startswith(head):
        return generation
    if head.startswith(generation):
        return head
    at = next(i for i, (a, b) in enumerate(zip(generation, head, strict=False)) if a != b)
    raise ValueError(f"the chat template's generation prompt and its rendered assistant turn differ at character "
                     f"{at} ({generation[at:at + 30]!r} vs {head[at:at + 30]!r}); cannot split prompt and response")


def _special_ids(tokenizer) -> set[int]:
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return set(tokenizer.all_special_ids) | {i for i, t in added.items() if getattr(t, "special", False)}


def _tokens(tokenizer, prompt: str, tail: str, specials: set[int], end_id: int | None) -> tuple[list[int], list[int]]:
    """``prompt + tail`` tokenized once: its tokens and the end offsets of those that lie wholly inside ``prompt``.
    The tail is cut after its last special token, or ends with ``end_id`` when it has none."""
    enc = tokenizer(prompt + tail, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    k = sum(1 for _, end in offsets if end <= len(prompt))
    ends = [i for i in range(k, len(ids)) if ids[i] in specials]
    if ends:
        ids = ids[:ends[-1] + 1]
    elif end_id is not None:
        ids = [*ids, end_id]
    return ids, [end for _, end in offsets[:k]]


def split_pair(processor, messages: list[dict], chosen: str, rejected: str, options: dict | None = None) -> Split:
    """Render ``messages`` with each answer and split them into one shared prompt and two responses (module doc).

    ``options`` are passed to ``apply_chat_template`` (``enable_thinking`` and the like)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    options = options or {}

    def render(conversation: list[dict], **kwargs) -> str:
        return processor.apply_chat_template(conversation, tokenize=False, **options, **kwargs)

    generation = render(messages, add_generation_prompt=True)
    specials = _special_ids(tokenizer)
    end_id = tokenizer.eos_token_id
    as_parts = _parts_as_text(render, messages)
    cuts = []
    for text in (chosen, rejected):
        full, start = _turn(render, messages, text, as_parts)
        prompt = _prompt(generation, full[:start])
        cuts.append(_tokens(tokenizer, prompt, full[start:], specials, end_id) + (prompt,))
    (ids_c, ends_c, prompt_c), (ids_r, ends_r, prompt_r) = cuts
    k = min(len(ends_c), len(ends_r))
    if prompt_c != prompt_r or ids_c[:k] != ids_r[:k]:
        raise ValueError("the chat template renders a different prompt for the chosen and the rejected answer; "
                         "cannot share one prompt between them")
    # the prompt is tokenized again on its own (the processor expands its images): where that would merge its
    # last tokens differently, the boundary moves back to a token the two tokenizations share
    while k and tokenizer(prompt_c[:ends_c[k - 1]], add_special_tokens=False)["input_ids"] != ids_c[:k]:
        k -= 1
    cut = ends_c[k - 1] if k else 0
    return Split(prompt_c[:cut], k, ids_c[k:], ids_r[k:])
