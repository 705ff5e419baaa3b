"""Prompt templates: the paper's chain-of-thought prompt (a last line ``Final answer: ...``), a boxed variant,
and direct answering; plus the stripping of the direct-answer instructions that source datasets append.

The data engine wraps each question in a named template and records the name and text in the manifest; the
evaluations use the same templates, so a model is measured with the prompt it was trained on.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from mmpr.answers import LETTERS
from mmpr.registry import Registry


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    template: str = Field(description="Text with a {question} field.")
    style: str = Field(description="'cot' (reasoning, then a final answer) or 'direct'.")

    def render(self, question: str, choices: list[str] | None = None) -> str:
        return self.template.format(question=format_question(question, choices))


TEMPLATES: Registry[PromptTemplate] = Registry("prompt template")
"""The prompt templates by name; the build's ``prompt`` setting and the evaluations choose among them."""

for _template in [
    PromptTemplate(name="mpo_cot", style="cot", template=(
        "Answer the question below. Reason step by step before answering, and when you are ready, write the "
        "answer on the last line in the form \"Final answer: ...\".\n\nQuestion:\n{question}")),
    PromptTemplate(name="boxed_cot", style="cot", template=(
        "{question}\n\nThink step by step, considering all the relevant information, then give your conclusion "
        "on the last line in the form \"Answer: \\boxed{{...}}\".")),
    PromptTemplate(name="direct", style="direct", template=(
        "{question}\nAnswer the question using a single word or phrase.")),
    PromptTemplate(name="direct_choice", style="direct", template=(
        "{question}\nAnswer with the option's letter from the given choices directly.")),
]:
    TEMPLATES.register(_template.name, _template, description=f"{_template.style} prompt")
DEFAULT_TEMPLATE = "mpo_cot"


def get_template(name: str) -> PromptTemplate:
    """The template registered as ``name``; an unknown name is an :class:`~mmpr.registry.UnknownName` listing the
    available ones."""
    return TEMPLATES.get(name)


# Instructions that ask for a bare answer; they contradict a chain-of-thought prompt
# (the paper's data engine, Wang et al., 2024, arXiv 2411.10442).
_DIRECT_INSTRUCTIONS = [re.compile(p, re.I) for p in [
    r"answer the question (?:using|with) a single (?:word|number)(?: or phrase)?\.?",
    r"answer with the option'?s? letter from the given choices directly\.?",
    r"answer with the letter\.?",
    r"please answer (?:with )?yes or no\.?",
    r"answer (?:with )?yes or no\.?",
    r"(?:please )?answer (?:the question )?(?:directly|briefly|concisely)\.?",
    r"(?:hint: )?please answer the question and provide the correct option letter, e\.g\., [A-Z](?:, [A-Z])*,"
    r" at the end\.?",
    r"(?:hint: )?please answer the question requiring an? [\w\- ]+? and provide the final value, e\.g\.,"
    r" [^\n]*? at the end\.?",
]]


def strip_direct_instructions(question: str) -> str:
    """Remove "answer with a single word"-style instructions, wherever they are, and tidy the whitespace."""
    for pattern in _DIRECT_INSTRUCTIONS:
        question = pattern.sub("", question)
    lines = [line.rstrip() for line in question.strip().split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def format_question(question: str, choices: list[str] | None = None) -> str:
    """The question with its options listed as ``A. ...`` lines, unless the question already lists them."""
    if not choices:
        return question
    if all(re.search(rf"(?m)^\(?{LETTERS[i]}[.)]", question) for i in range(len(choices))):
        return question
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    return f"{question}\nOptions:\n{options}"
