"""Final-answer extraction and rule-based judging, shared by the data engine and the evaluations.

The paper's data engine (arXiv 2411.10442) keeps a response only if it states a final answer after some
reasoning, then judges that answer against the ground truth with rules chosen by the answer type: option
letter or text for multiple choice; numbers with a relative tolerance of 1e-3 after stripping units;
VQA-normalised text; relaxed accuracy (5 %) for charts; ANLS for documents; math-verify for LaTeX. An answer
is correct iff its score exceeds 0.9. Everything here is a pure function of strings.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import Levenshtein

from mmpr.schemas import AnswerType

CORRECT_ABOVE = 0.9
NUMERIC_REL_TOL = 1e-3
CHART_REL_TOL = 0.05
ANLS_THRESHOLD = 0.5
MIN_RATIONALE_WORDS = 3

# --------------------------------------------------------------------------------------------------- extraction

_FINAL = re.compile(r"final\s+answer\s*(?:is)?\s*[:：]|答案\s*[:：]", re.I)
_ANSWER = re.compile(r"(?<![a-z])answer>?\s*[:：]", re.I)  # "Answer:" and We-Math's "<Answer>:"
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
# "The correct answer is (D) Ff." / "the answer should be 5": the sentence the benchmarks' stored outputs end with
_SAID = re.compile(r"\b(?:(?:correct|final|right|best)\s+(?:answer|option|choice)|answer)\s+"
                   r"(?:is|should\s+be|would\s+be|will\s+be)\s*:?\s*", re.I)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
_END_TOKENS = re.compile(r"(?:\s*(?:</s>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<eos>|<end_of_turn>))+\s*$")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` in ``text`` (balanced braces), in order."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    out = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end(): i - 1].strip())
    return out


_WRAPPERS = re.compile(r"^(?:\*\*|__|\$\$|\$|\\\(|\\\[|`)+|(?:\*\*|__|\$\$|\$|\\\)|\\\]|`)+$")
_ANGLED = re.compile(r"^<+([^<>]*)>+$")  # We-Math's "<<C>>"
_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_FULL_WIDTH = str.maketrans("（）［］：，．", "()[]:,.")


def unwrap_text_commands(text: str) -> str:
    """``\\text{Answer: D}`` -> ``Answer: D``: LaTeX text commands around an answer are formatting, not maths."""
    prev = None
    while prev != text:
        prev, text = text, _TEXT_COMMAND.sub(r"\1", text)
    return text


def _clean(answer: str) -> str:
    answer = unwrap_text_commands(answer.strip())
    prev = None
    while prev != answer:
        prev = answer
        answer = _WRAPPERS.sub("", answer).strip()
        answer = _ANGLED.sub(r"\1", answer).strip()
        answer = answer.rstrip(".。").strip()
    return answer


def _after(text: str, start: int) -> str:
    """The answer text from ``start``: the rest of its line, or the next non-empty line if that is empty."""
    rest = text[start:]
    for line in rest.split("\n"):
        if line.strip().strip("*_`").strip():
            return line
    return ""


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    match = None
    for match in pattern.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    return match


_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]|[^\s\u3040-\u30ff\u3400-\u9fff]+")


def _rationale_ok(before: str, min_words: int) -> bool:
    """Enough reasoning precedes the answer: words, or characters of scripts written without spaces (zh, ja)."""
    return len(before.split()) >= min_words or len(_WORD.findall(before)) >= min_words


def _one_answer(text: str) -> str | None:
    """The answer ``text`` states: its one boxed value if it has boxes (None if they differ), else the text."""
    boxed = _boxed_contents(text)
    if boxed:
        if len(set(boxed)) > 1:
            return None
        return _clean(boxed[0]) or None
    return _clean(text) or None


def _stated_answers(response: str) -> list[str]:
    """Every final answer ``response`` states: each ``Final answer:``/``答案:`` line, each box, each
    ``<answer>`` tag."""
    found = [_clean(b) for b in _boxed_contents(response)]
    found += [a for m in _FINAL.finditer(response) if (a := _one_answer(_after(response, m.end())))]
    found += [a for m in _ANSWER_TAG.finditer(response) if (a := _one_answer(m[1]))]
    return [a for a in found if a]


def _same_answer(a: str, b: str) -> bool:
    x, y = parse_number(a), parse_number(b)
    if x is not None and y is not None:
        return x == y
    return same_text(a, b) or _compact(a) == _compact(b)


_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.I)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.I)


def split_thinking(response: str) -> tuple[str | None, int]:
    """``(answer part, thinking length in characters)`` of a thinking model's response.

    The answer part is the text after the last ``</think>``; the thinking is everything before it (chat
    templates that open ``<think>`` in the generation prompt leave only the closing tag in the response). A
    response that opens a think block and never closes it has no answer part (None): it is unparsable, not
    judged on its half-finished reasoning. A response with no think tags is returned whole, with length 0.
    """
    close = _last(_THINK_CLOSE, response)
    if close is not None:
        return response[close.end():], len(_THINK_OPEN.sub("", response[:close.start()], count=1))
    opened = _THINK_OPEN.search(response)
    if opened is not None:
        return None, len(response) - opened.end()
    return response, 0


def extract_final_answer(response: str, *, min_rationale_words: int = MIN_RATIONALE_WORDS,
                         strict: bool = False) -> str | None:
    """The final answer a chain-of-thought response states, or None.

    Looks for the last ``<answer>...</answer>`` tag (R1-style), then the last ``Final answer:`` (or the Chinese
    prompts' ``答案:``), then the last ``\\boxed{}``, then the last ``Answer:`` (We-Math's ``<Answer>:`` too),
    then (not ``strict``) the sentence after the last "the (correct) answer is". Returns None when there is no
    such answer, when it is empty or ambiguous (several different boxed values on the answer line), or when
    fewer than ``min_rationale_words`` words of reasoning precede it: such responses are the "format" negatives
    of the data engine and "unparsable" in the evaluations.

    ``strict`` (the data engine) also returns None when the response states several *different* final answers
    anywhere (a corrected ``Final answer:``, a box that disagrees with the answer line): the reference pipeline
    rejects such responses, and a chosen response must commit to one answer.

    A ``<think>...</think>`` block is removed first (:func:`split_thinking`); a think block that never closes
    makes the response unparsable. The thinking counts as reasoning before the answer.
    """
    answer_part, _ = split_thinking(response)
    if answer_part is None:
        return None
    thought = _THINK_CLOSE.sub(" ", _THINK_OPEN.sub(" ", response[:len(response) - len(answer_part)]))
    # "\\[ \\text{Answer: D} \\]": the trigger hides inside a text command
    response = unwrap_text_commands(answer_part) if "\\" in answer_part else answer_part
    response = _END_TOKENS.sub("", response)
    has_tag = any(t in response for t in ("answer>", "Answer>", "ANSWER>"))
    tag = _last(_ANSWER_TAG, response) if has_tag else None
    if tag is not None:
        if not _rationale_ok(thought + response[:tag.start()], min_rationale_words):
            return None
        answer = _one_answer(tag[1].strip())
    else:
        final = _last(_FINAL, response) or _last(_BOXED, response) or _last(_ANSWER, response)
        if final is None and not strict:
            final = _last(_SAID, response)
        if final is None:
            return None
        if not _rationale_ok(thought + response[:final.start()], min_rationale_words):
            return None
        if final.re is _BOXED:  # judge the whole line the last box is on: two different boxes there are ambiguous
            line = _after(response, response.rfind("\n", 0, final.start()) + 1)
        elif final.re is _SAID:  # the rest of its sentence
            rest = response[final.end():]
            end = _SENTENCE_END.search(rest)
            line = rest[:end.start()] if end else rest
        else:
            line = _after(response, final.end())
        answer = _one_answer(line)
    if answer is None or not strict:
        return answer
    if any(not _same_answer(answer, other) for other in _stated_answers(response)):
        return None
    return answer


# ------------------------------------------------------------------------------------------------ normalisation

_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't",
    "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't",
    "isnt": "isn't", "shouldnt": "shouldn't", "wasnt": "wasn't", "werent": "weren't", "wont": "won't",
    "wouldnt": "wouldn't", "youre": "you're", "theyre": "they're", "whats": "what's", "thats": "that's",
}
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
                 "twelve": "12"}
_ARTICLES = {"a", "an", "the"}
_DIGIT_GROUP = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PUNCT = re.compile(r"\.(?!\d)|(?<!\d),|,(?!\d)|[;/\[\]\"{}()=+\\_\-><@`?!*#%^&$:|~]")


@lru_cache(maxsize=65_536)
def normalize_text(text: str) -> str:
    """The official VQA evaluation's normalisation: lower case, digit-grouping commas dropped (``1,000`` ->
    ``1000``), periods out unless a decimal point (``5.`` -> ``5``), other punctuation out, number words to
    digits, articles dropped (unless nothing else is left: ``A`` stays ``a``), common contractions restored."""
    text = _DIGIT_GROUP.sub("", text.lower().replace("\n", " ").replace("\t", " "))
    text = _PUNCT.sub(" ", text)
    words = [_CONTRACTIONS.get(w, w) for w in (_NUMBER_WORDS.get(w, w) for w in text.split())]
    # an article is dropped only beside other words: a lone "A" is an option letter, never an article
    kept = [w for w in words if w not in _ARTICLES]
    return " ".join(kept if kept else words)


def same_text(a: str, b: str) -> bool:
    """Equal after :func:`normalize_text`; text that normalises to nothing (punctuation) equals nothing."""
    x = normalize_text(a)
    return bool(x) and x == normalize_text(b)


_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}")
_UNIT_POWER = re.compile(r"([A-Za-z°])\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])")
# a period after a number ends a sentence ("4 or 5."), it is no decimal point
_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w]|\.\d)"
                     r"|(?<![\w.])[-+−]?\.\d+(?![\w]|\.\d)")
_PI = re.compile(r"([-+−]?(?:\d+(?:\.\d+)?)?)\s*\*?\s*(?:\\pi\b|π)(?:\s*/\s*(\d+(?:\.\d+)?))?")
# Math-Verify's readings: "1,22" and "1000,99" are decimal commas (a group of three digits is a thousands
# separator); "1 000" / "1\,000" group digits with a (thin) space
_DECIMAL_COMMA = re.compile(r"^\s*([-+−]?\d+),(\d{1,2}|\d{4,})\s*$")
_SPACE_GROUPS = re.compile(r"^\s*([-+−]?\d{1,3}(?:[ \u2009\u202f\u00a0]\d{3})+(?:\.\d+)?)\s*$")
_GLUED_UNIT = re.compile(r"(\d)(?=(?:cm|mm|km|kg|mg|ml|m|g|s|h|ft|in|yd|mi|lbs?|oz)(?:\^?[23²³])?\b)")
_FRACTION = re.compile(r"^\s*([-+−]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _strip_latex(text: str) -> str:
    text = _LATEX_TEXT.sub(r"\1", text)
    text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\%", "\\$", "$", "\\circ", "^\\circ", "^{\\circ}"):
        text = text.replace(token, "%" if token == "\\%" else " ")
    return text


def _pi_value(m: re.Match[str]) -> str:
    coefficient = m[1].replace("−", "-")
    value = float(coefficient + "1" if coefficient in ("", "-", "+") else coefficient) * math.pi / float(m[2] or 1)
    return f" {value!r} "


@lru_cache(maxsize=65_536)
def parse_number(text: str) -> float | None:
    """The one number ``text`` states, units, currency, percent and degree signs aside; None if it states none
    or several (``x = 5`` -> 5, ``3/4`` -> 0.75, ``1,234 cm^2`` -> 1234, ``2π/3`` -> 2.094, ``1,22`` -> 1.22)."""
    text = _strip_latex(text)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = _GLUED_UNIT.sub(r"\1 ", _UNIT_POWER.sub(r"\1", text))
    if "(" not in text and "[" not in text:
        text = _DECIMAL_COMMA.sub(r"\1.\2", text)
    text = _SPACE_GROUPS.sub(lambda m: re.sub(r"\s", "", m[1]), text.replace("(", " ").replace(")", " "))
    if "π" in text or "\\pi" in text:
        text = _PI.sub(_pi_value, text)
    frac = _FRACTION.match(text.replace("−", "-"))
    if frac:
        den = float(frac[2])
        return float(frac[1]) / den if den else None
    numbers = _NUMBER.findall(text)
    if len(numbers) != 1:
        word = _NUMBER_WORDS.get(text.strip().lower().rstrip("."))
        return float(word) if word is not None and not numbers else None
    return float(numbers[0].replace(",", "").replace("−", "-"))


def _close(a: float, b: float, rel: float) -> bool:
    if a == b:
        return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel * max(abs(b), 1e-12)


# ------------------------------------------------------------------------------------------------ multiple choice

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTER_FORMS = [
    re.compile(r"^\(([A-Z])\)"),                                  # (B) ...
    re.compile(r"^\[([A-Z])\]"),                                  # [B] ...
    re.compile(r"^([A-Z])(?:[.:)]|\s*$)"),                         # B | B. | B) | B:
]
# read only after the options' own texts: an option may itself be "(b) ..." or "option D in the image ..."
_LATE_LETTER_FORMS = [
    re.compile(r"^\(([a-z])\)[.:]?$"),                              # (b), the whole answer (not "(a) the energy ...")
    re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:option|choice|answer)\s*(?:is\s*)?:?\s*\(?([A-Za-z])\)?(?![A-Za-z])",
               re.I),                                                # option B | the answer is (b)
    re.compile(r"^(?:image|figure|shape|picture|diagram|pattern)\s+\(?([A-Z])\)?\.?$", re.I),  # Image C, whole
]
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


def _letter(m: re.Match[str] | None, n: int) -> frozenset[int] | None:
    return frozenset({LETTERS.index(m[1].upper())}) if m and m[1].upper() in LETTERS[:n] else None


def choice_indices(text: str, choices: list[str], *, gold: bool = False,
                   letter_gold: bool = False) -> frozenset[int]:
    """Every option ``text`` names, by letter (``B``, ``(B)``, ``B.``, ``option B``, ``B. text``) or by the
    option's text or value; empty if it names none or is ambiguous between different options.

    Options that repeat one text (MathVista has items with options 9, 12, 18, 18) are one answer: a text naming
    it names all its copies. A ground truth (``gold``) is read by its exact option text first, so a MathVista
    gold ``"E"`` among options ``A``..``E`` is the option ``E`` whatever its position; with ``letter_gold``
    (benchmarks whose gold is the option's letter: MMMU, M3CoT, WeMath, MathVision, ...) it is read as a
    letter first, so the gold ``B`` of options ``F; D; B; I`` is the second option. An answer that is the
    full text of an option names that option even where the text starts like a letter ("option D in the
    image ..."). Full-width brackets read as ASCII ones.
    """
    t = text.strip().translate(_FULL_WIDTH)
    n = len(choices)
    raw = [str(c).strip() for c in choices]
    if gold and not letter_gold:
        exact = frozenset(i for i, c in enumerate(raw) if c == t)
        if exact:
            return exact
    in_parens = {m for m in _PAREN_LETTER.findall(t) if m in LETTERS[:n]}
    if len(in_parens) > 1:
        return frozenset()
    if len(t) == 1 and t.upper() in LETTERS[:n]:
        return frozenset({LETTERS.index(t.upper())})
    for form in _LETTER_FORMS:
        if (found := _letter(form.match(t), n)) is not None:
            return found
    # an answer line loses its final period: "option A in the image is the right option." is that option
    exact = frozenset(i for i, c in enumerate(raw) if c and c.lower().rstrip(".") == t.lower().rstrip("."))
    if exact:
        return exact
    compact = _compact(t)
    exact = frozenset(i for i, c in enumerate(raw) if compact and _compact(c) == compact)
    if exact and len({raw[i] for i in exact}) == 1:  # "$\\frac{1}{300}$" is "\\frac{1}{300}"
        return exact
    for form in _LATE_LETTER_FORMS:
        if (found := _letter(form.match(t), n)) is not None:
            return found
    if len(in_parens) == 1:
        return frozenset({LETTERS.index(in_parens.pop())})
    norm = normalize_text(t)
    # an option that is one letter is named by that letter only ("A, C" normalises to "c": "a" is an article there)
    by_text = frozenset(i for i, c in enumerate(choices)
                        if norm and len(raw[i]) > 1 and normalize_text(str(c)) == norm)
    if by_text:  # several only when they are copies of one option (60-k and 60+k normalise alike)
        return by_text if len({raw[i] for i in by_text}) == 1 else frozenset()
    value = parse_number(t)
    if value is not None:
        numeric = frozenset(i for i, c in enumerate(raw) if (v := _option_value(c)) is not None and
                            _close(v, value, NUMERIC_REL_TOL))
        if len({raw[i] for i in numeric}) == 1:
            return numeric
    return frozenset()


_OPTION_MARK = re.compile(r"(?:^|(?<=[\s:;,.]))(?:\(([A-H])\)|([A-H])(?:[.)](?=\s|$)|[:：．]))")
_STRAY_MARK = re.compile(r"\s*;\s*[A-Z][.．:]\s")  # We-Math's "C. No.; F. No correct answer": F follows C


def options_in_text(text: str) -> list[str] | None:
    """The options a question lists in its own text, in letter order, or None if it lists none.

    Reads "Choices: (A) yes (B) no", "A. 45° B. 60° ;C. 120°" (stray separators), "B．②" (a full-width
    period) and one option per line; the options are the last run of marks A, B, C, ... in order. An option
    drawn only in the image ("(A) (B) (C)") has an empty text: the letter still names it.
    """
    chain: list[re.Match[str]] = []
    best: list[re.Match[str]] = []
    for m in _OPTION_MARK.finditer(text):
        letter = m[1] or m[2]
        if letter == "A":
            chain = [m]
        elif chain and letter == LETTERS[len(chain)]:
            chain.append(m)
        if len(chain) >= 2:
            best = list(chain)
    if not best:
        return None
    options = []
    for i, m in enumerate(best):
        end = best[i + 1].start() if i + 1 < len(best) else len(text)
        body = text[m.end():end]
        if i + 1 == len(best):  # the last option ends with its line, or where a stray mark starts
            body = _STRAY_MARK.split(body.strip().split("\n")[0])[0]
        options.append(body.strip().strip(";,").strip())
    return options


_SEVERAL = re.compile(r"\s*(?:,|;|&|/|\n|\band\b)\s*", re.I)


def choice_set(text: str, choices: list[str]) -> frozenset[int] | None:
    """The options an answer naming one or several of them names ("A, C", "C and A", "(A) and (C)", one per
    line, "['a', 'c']"), each part read by :func:`choice_index`; None if a part names no option."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):  # a list written out: "['b', 'd']" (LogicVista's extractions)
        text = text[1:-1].replace("'", "").replace('"', "")
    whole = choice_index(text, choices)
    if whole is not None:
        return frozenset({whole})
    found = set()
    for part in (p for p in _SEVERAL.split(text) if p):
        index = choice_index(part, choices)
        if index is None:
            return None
        found.add(index)
    return frozenset(found) or None


def several_choices(answer: str) -> bool:
    """Whether a gold names several options ("B, D", or one per line)."""
    return len([p for p in _SEVERAL.split(answer.strip()) if p]) > 1


def choice_index(text: str, choices: list[str]) -> int | None:
    """Which one option ``text`` names (see :func:`choice_indices`); None if none, several, or ambiguous."""
    found = choice_indices(text, choices)
    return next(iter(found)) if len(found) == 1 else None


class UnscorableItem(ValueError):
    """A benchmark item whose ground truth cannot be judged (e.g. it names none of its options)."""


# ------------------------------------------------------------------------------------------------------ scoring

_YES = {"yes", "true", "correct", "y", "yeah", "right"}
_NO = {"no", "false", "incorrect", "n", "not", "wrong"}


def _yes_no(text: str) -> str | None:
    words = normalize_text(text).split()
    if not words:
        return None
    return "yes" if words[0] in _YES else "no" if words[0] in _NO else None


def _split_list(text: str) -> list[str]:
    text = _strip_latex(text).strip().strip("[](){}")
    return [x.strip() for x in re.split(r"\s*(?:,|;|\band\b)\s*", text) if x.strip()]


def _same_item(a: str, b: str) -> bool:
    x, y = parse_number(a), parse_number(b)
    if x is not None and y is not None:
        return _close(x, y, NUMERIC_REL_TOL)
    return same_text(a, b)


def anls(prediction: str, answer: str) -> float:
    """Average Normalized Levenshtein Similarity of one answer: ``1 - dist / max(len)``, 0 below 0.5.

    (The reference engine returned ``dist / len``, a distance; this is the similarity the metric defines.)
    """
    p, a = " ".join(prediction.lower().split()), " ".join(answer.lower().split())
    if not p and not a:
        return 1.0
    similarity = 1.0 - Levenshtein.distance(p, a) / max(len(p), len(a))
    return similarity if similarity >= ANLS_THRESHOLD else 0.0


_math_verify_log_quieted = False


def _math_verify_timeout() -> int | None:
    """math-verify's timeout for this thread: its signal.alarm works only in the main thread (elsewhere it is
    off, and its warning about that is quieted)."""
    global _math_verify_log_quieted
    if not _math_verify_log_quieted:
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _math_verify_log_quieted = True
    return 5 if threading.current_thread() is threading.main_thread() else None


def _latex_equal(prediction: str, answer: str) -> bool:
    from math_verify import parse, verify

    timeout = _math_verify_timeout()

    def wrap(s: str) -> str:
        s = _plain_number_text(unwrap_text_commands(s))  # math-verify misreads \\mathrm{e} and "1,22"
        return s if "$" in s or "\\(" in s or "\\boxed" in s else f"${s}$"

    try:
        gold = parse(wrap(answer), parsing_timeout=timeout)
        pred = parse(wrap(prediction), parsing_timeout=timeout)
        if gold and pred:  # math-verify's parsed verdict stands, "no" included
            return bool(verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - math-verify raises on odd input; fall back as if unparsed
        pass
    return _plain_equal(prediction, answer)


_NOT_A_PLAIN_NUMBER = re.compile(r"\\pm|±|∓|[<>≤≥=]|\\[lg]eq?\b|\\ne\b")
_OPERATOR = re.compile(r"[-+*/^=<>±∓√]|\\[a-z]+")


_LATEX_NOISE = re.compile(r"\s+|\$|\\[,;! ]|\\displaystyle|\\left|\\right|~")


def _compact(text: str) -> str:
    """``text`` with its LaTeX text commands, dollars, sizing and spaces out, lower case: operators and signs kept
    (``$\\dfrac{1}{2}$`` -> ``\\frac{1}{2}``)."""
    return _LATEX_NOISE.sub("", unwrap_text_commands(text)).replace("\\dfrac", "\\frac").replace(
        "\\tfrac", "\\frac").lower()


@lru_cache(maxsize=65_536)
def _option_value(text: str) -> float | None:
    """The number an option states: plainly (``3.5 cm``), else as a LaTeX expression math-verify evaluates
    (``$3 \\cdot 2^{5}$`` -> 96)."""
    value = parse_number(text)
    if value is not None or not re.search(r"\\|\^|\*", text):
        return value
    from math_verify import parse

    try:
        parsed = parse(text if "$" in text else f"${text}$", parsing_timeout=_math_verify_timeout())
        return float(parsed[0]) if parsed and getattr(parsed[0], "is_number", False) else None
    except Exception:  # noqa: BLE001 - an option math-verify cannot evaluate has no value
        return None


def _plain_number_text(text: str) -> str:
    """A lone decimal-comma or space-grouped number (``1,22``, ``1 000``) written with a point and no spaces."""
    stripped = text.strip().strip("$")
    if _DECIMAL_COMMA.match(stripped) or _SPACE_GROUPS.match(stripped.replace("\\,", " ")):
        value = parse_number(stripped)
        return text if value is None else repr(value)
    return text


def _plain_equal(prediction: str, answer: str) -> bool:
    """Equality where math-verify could not parse a side: one plain number each, else the same text (words
    normalised as VQA does; anything with an operator compared character for character, signs kept).

    A side with a relation or a ``±`` is never reduced to one of its numbers."""
    if not (_NOT_A_PLAIN_NUMBER.search(prediction) or _NOT_A_PLAIN_NUMBER.search(answer)):
        x, y = parse_number(prediction), parse_number(answer)
        if x is not None and y is not None:
            return _close(x, y, NUMERIC_REL_TOL)
    if _OPERATOR.search(prediction) or _OPERATOR.search(answer):
        return bool(_compact(prediction)) and _compact(prediction) == _compact(answer)
    return same_text(prediction, answer)


_YEAR = re.compile(r"^\s*(19|20)\d\d\s*$")


def chart_correct(prediction: str, answer: str, *, rel_tol: float = CHART_REL_TOL) -> bool:
    """ChartQA's relaxed accuracy (Masry et al. 2022, sec. 5.1): a number within ``rel_tol`` (5 %) of the gold,
    else the same text.

    A gold year (``2018``) must match exactly. A percentage and its fraction are one answer (``81.9%`` and
    ``0.819``), whichever side carries the ``%``.
    """
    p, a = parse_number(prediction), parse_number(answer)
    if p is None or a is None:
        return same_text(prediction, answer)
    if _YEAR.match(answer):
        return p == a
    candidates = {p}
    p_pct, a_pct = "%" in prediction, "%" in answer
    if p_pct and not a_pct:
        candidates.add(p / 100)
    elif a_pct and not p_pct:
        candidates.add(p * 100)
    if a == 0:
        return 0 in candidates
    return any(abs(c - a) <= rel_tol * abs(a) for c in candidates)


def gold_choices(answer: str, choices: list[str] | None, *, letter_gold: bool = False) -> frozenset[int]:
    """The options a multiple-choice ground truth names (by letter first with ``letter_gold``, see
    :func:`choice_indices`); raises :class:`UnscorableItem` when it names none."""
    if not choices:
        raise UnscorableItem("multiple_choice judging needs the choices")
    gold = _gold_choices(answer, tuple(str(c) for c in choices), letter_gold)
    if not gold:
        raise UnscorableItem(f"the ground truth {answer!r} names none of the choices {choices!r}")
    return gold


@lru_cache(maxsize=65_536)
def _gold_choices(answer: str, choices: tuple[str, ...], letter_gold: bool) -> frozenset[int]:
    return choice_indices(answer, list(choices), gold=True, letter_gold=letter_gold)


@dataclass(frozen=True)
class Rules:
    """The parameters by which one benchmark's official scorer departs from the data engine's defaults.

    ``letter_gold``: a multiple-choice ground truth is the option's letter (MMMU, M3CoT, MathVision, WeMath,
    DynaMath, MathVerse, LogicVista), not its text (MathVista). ``numbers``: how a number matches, ``relative``
    (|p - a| <= tolerance * |a|, the data engine), ``absolute`` (|p - a| <= tolerance, DynaMath's
    ``evaluation/*_json_eval.py``) or ``decimals`` (both rounded to ``int(tolerance)`` decimals, MMMU's
    ``eval_utils.normalize_str`` and MATH-V's ``evaluation/utils.is_equal``). ``text``: ``equal`` (after VQA
    normalisation) or ``contains`` (the gold, lower case, anywhere in the answer: MMMU's ``eval_open``,
    DynaMath's text rule). ``whole_response``: the benchmark whose official scorer reads the whole response, named
    so that a CoT response stating no final answer is read by that benchmark's own extraction
    (``evals.scoring.WHOLE_RESPONSE``); None (the data engine, MathVista) leaves such a response unparsable.
    """

    letter_gold: bool = False
    numbers: Literal["relative", "absolute", "decimals"] = "relative"
    tolerance: float = NUMERIC_REL_TOL
    text: Literal["equal", "contains"] = "equal"
    whole_response: str | None = None


DEFAULT_RULES = Rules()


def numbers_match(prediction: float, answer: float, rules: Rules = DEFAULT_RULES) -> bool:
    """Whether two numbers are one answer under ``rules.numbers`` (see :class:`Rules`)."""
    if rules.numbers == "absolute":
        return math.isfinite(prediction) and abs(prediction - answer) <= rules.tolerance + 1e-12
    if rules.numbers == "decimals":
        return round(prediction, int(rules.tolerance)) == round(answer, int(rules.tolerance))
    return _close(prediction, answer, rules.tolerance)


def text_contains(prediction: str, answer: str) -> bool:
    """MMMU's and DynaMath's containment: the gold, lower case and spaces collapsed, occurs in the answer; a
    one-character gold must stand as its own word ("a" is not in "cat")."""
    p, a = " ".join(prediction.lower().split()), " ".join(answer.lower().split())
    if not a or not p:
        return False
    if len(a) == 1:
        return re.search(rf"(?<!\w){re.escape(a)}(?!\w)", p) is not None
    return a in p


def answer_score(prediction: str | None, answer: str | list[str], *, answer_type: AnswerType,
                 choices: list[str] | None = None, rules: Rules = DEFAULT_RULES) -> float:
    """How well ``prediction`` (an extracted final answer) matches ``answer``, in [0, 1].

    ``answer`` may be a list of acceptable answers (the best score counts). Binary for every type but
    ``document`` (ANLS). ``rules`` are the benchmark's own (see :class:`Rules`); the defaults are the data
    engine's. An answer that normalises to nothing (``#``, ``?``, ``the``) is never correct.
    """
    if prediction is None or not prediction.strip():
        return 0.0
    if isinstance(answer, list):
        return max((answer_score(prediction, a, answer_type=answer_type, choices=choices, rules=rules)
                    for a in answer), default=0.0)
    if answer_type == "multiple_choice":
        gold = gold_choices(answer, choices, letter_gold=rules.letter_gold)
        predicted = choice_indices(prediction, choices)
        return float(bool(predicted) and predicted <= gold)
    if answer_type in ("integer", "float"):
        p, a = parse_number(prediction), parse_number(answer)
        if p is None or a is None:
            return 0.0
        if answer_type == "integer":
            return float(p == a or (p.is_integer() and a.is_integer() and int(p) == int(a)))
        return float(numbers_match(p, a, rules))
    if answer_type == "yes_no":
        p, a = _yes_no(prediction), _yes_no(answer)
        return float(p is not None and p == a)
    if answer_type == "text":
        if rules.text == "contains":
            return float(text_contains(prediction, answer))
        return float(same_text(prediction, answer))
    if answer_type == "list":
        p, a = _split_list(prediction), _split_list(answer)
        return float(len(p) == len(a) and all(_same_item(x, y) for x, y in zip(p, a, strict=True)))
    if answer_type == "chart":
        return float(chart_correct(prediction, answer))
    if answer_type == "document":
        return anls(prediction, answer)
    if answer_type == "latex":
        if rules.numbers != "relative":  # a benchmark that compares values at its own tolerance (MATH-V: 2 decimals)
            p, a = parse_number(prediction), parse_number(answer)
            if p is not None and a is not None:
                return float(numbers_match(p, a, rules))
        return float(_latex_equal(prediction, answer))
    raise ValueError(f"unknown answer_type {answer_type!r}")


def is_correct(prediction: str, answer: str, *, answer_type: str, choices: list[str] | None = None,
               rules: Rules = DEFAULT_RULES) -> bool:
    """Whether ``prediction`` matches ``answer`` under the rules of ``answer_type`` (score > 0.9), with a
    benchmark's own ``rules`` where given."""
    return answer_score(prediction, answer, answer_type=answer_type, choices=choices, rules=rules) > CORRECT_ABOVE
