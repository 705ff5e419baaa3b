"""The prompt styles of ``evals.run --prompt`` (the :data:`STYLES` registry) and how the answer is read back under
each.

- ``cot``: the data engine's chain-of-thought template (``mmpr.prompts``, last line ``Final answer: ...``), the
  prompt the paper trains and evaluates with;
- ``direct``: the short-answer templates; the whole response is the answer;
- ``reasoning``: the ``<think>...</think><answer>...</answer>`` format of lmms-eval's judge-free "reasoning" task
  variants (its instruction, put in the user turn); the answer is the last ``<answer>`` block.

Scores under different styles are not comparable, so the style is recorded in results.json and ``evals.compare``
refuses to mix them. Judging is the shared judge's (:func:`evals.scoring.judge`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from evals.scoring import SampleScore, Target, extract_answer, score_extracted
from mmpr.answers import extract_final_answer
from mmpr.prompts import get_template
from mmpr.registry import Registry

REASONING_INSTRUCTION = (
    "Your response must have two parts: first the reasoning process enclosed in <think>...</think> tags, then the "
    "final answer enclosed in <answer>...</answer> tags. Keep the answer inside <answer> </answer> short and direct.")

_ANSWER_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.S | re.I)
_BOXED = re.compile(r"^\\boxed\{(.*)\}$", re.S)


@dataclass(frozen=True)
class PromptStyle:
    """How a question is asked (``render(question, choices)``) and its answer read back (``extract(response)``,
    None when the response states none); ``template`` is the text recorded in results.json."""

    template: str
    render: Callable[[str, list[str] | None], str]
    extract: Callable[[str], str | None]


def answer_tag(response: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` block (a ``\\boxed{}`` around it removed), or None."""
    found = _ANSWER_TAG.findall(response)
    if not found or not found[-1].strip():
        return None
    text = found[-1].strip()
    boxed = _BOXED.match(text)
    return boxed[1].strip() if boxed else text


def _reasoning(question: str, choices: list[str] | None) -> str:
    """The same question text as the CoT template shows, with lmms-eval's reasoning instruction."""
    body = get_template("mpo_cot").render(question, choices).split("Question:\n", 1)[-1]
    return f"{body}\n\n{REASONING_INSTRUCTION}"


STYLES: Registry[PromptStyle] = Registry("prompt style")
STYLES.register("cot", PromptStyle(get_template("mpo_cot").template, get_template("mpo_cot").render,
                                   extract_final_answer), description="the paper's CoT prompt")
STYLES.register("direct", PromptStyle(
    get_template("direct").template,
    lambda question, choices: get_template("direct_choice" if choices else "direct").render(question, choices),
    lambda response: response.strip().rstrip(".") or None), description="short answers")
STYLES.register("reasoning", PromptStyle("{question}\n\n" + REASONING_INSTRUCTION, _reasoning, answer_tag),
                description="<think>/<answer> format")
PROMPT_STYLES = tuple(STYLES)


def template_text(style: str) -> str:
    """The template recorded in results.json for ``style``."""
    return STYLES.get(style).template


def render(question: str, style: str, choices: list[str] | None = None) -> str:
    """The user turn for ``question`` (options listed when ``choices`` are given) under ``style``."""
    return STYLES.get(style).render(question, choices)


def extract(response: str, style: str) -> str | None:
    """The answer ``response`` states under ``style``; None when it states none (wrong and unparsable)."""
    return STYLES.get(style).extract(response)


def score_response(response: str, target: Target, style: str,
                   judge_fn: Callable[[str], bool] | None = None) -> SampleScore:
    """Extract the answer as ``style`` asks for it (a CoT response stating none: the benchmark's own whole-response
    reading, :func:`evals.scoring.extract_answer`) and judge it: with the shared judge against ``target``, or with
    ``judge_fn`` where a benchmark has its own rule on top of it (several acceptable answers, sets of letters)."""
    extracted = extract_answer(response, target) if style == "cot" else extract(response, style)
    return score_extracted(extracted, target, judge_fn)
