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
from functools import lru_cache

import Levenshtein

from mmpr.schemas import AnswerType

CORRECT_ABOVE = 0.9
NUMERIC_REL_TOL = 1e-3
CHART_REL_TOL = 0.05
ANLS_THRESHOLD = 0.5
MIN_RATIONALE_WORDS = 3

# --------------------------------------------------------------------------------------------------- extraction

_FINAL = re.compile(r"final\s+answer\s*(?:is)?\s*[:：]", re.I)
_ANSWER = re.compile(r"(?<![a-z])answer\s*[:：]", re.I)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` in ``text`` (balanced braces), in order."""
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


def _clean(answer: str) -> str:
    answer = answer.strip()
    prev = None
    while prev != answer:
        prev = answer
        answer = _WRAPPERS.sub("", answer).strip()
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


def _rationale_ok(before: str, min_words: int) -> bool:
    return len(before.split()) >= min_words


def extract_final_answer(response: str, *, min_rationale_words: int = MIN_RATIONALE_WORDS) -> str | None:
    """The final answer a chain-of-thought response states, or None.

    Looks for the last ``Final answer:``, then the last ``\\boxed{}``, then the last ``Answer:``. Returns None
    when there is no such answer, when it is empty or ambiguous (several different boxed values on the
    answer line), or when fewer than ``min_rationale_words`` words of reasoning precede it: such
    responses are the "format" negatives of the data engine and "unparsable" in the evaluations.
    """
    final = _last(_FINAL, response) or _last(_BOXED, response) or _last(_ANSWER, response)
    if final is None:
        return None
    if not _rationale_ok(response[:final.start()], min_rationale_words):
        return None
    if final.re is _BOXED:  # judge the whole line the last box is on: two different boxes there are ambiguous
        line = _after(response, response.rfind("\n", 0, final.start()) + 1)
    else:
        line = _after(response, final.end())
    boxed = _boxed_contents(line)
    if boxed:
        if len(set(boxed)) > 1:
            return None
        return _clean(boxed[0]) or None
    return _clean(line) or None


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
_PUNCT = re.compile(r"(?<!\d)[.,](?!\d)|[;/\[\]\"{}()=+\\_\-><@`?!*#%^&$:|~]")


@lru_cache(maxsize=65_536)
def normalize_text(text: str) -> str:
    """VQA-style normalisation: lower case, punctuation out (decimal points kept), number words to digits,
    articles dropped, common contractions restored."""
    text = _PUNCT.sub(" ", text.lower().replace("\n", " ").replace("\t", " "))
    words = []
    for w in text.split():
        w = _NUMBER_WORDS.get(w, w)
        if w in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(w, w))
    return " ".join(words)


_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}")
_UNIT_POWER = re.compile(r"([A-Za-z°])\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])")
_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])"
                     r"|(?<![\w.])[-+−]?\.\d+(?![\w.])")
_FRACTION = re.compile(r"^\s*([-+−]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _strip_latex(text: str) -> str:
    text = _LATEX_TEXT.sub(r"\1", text)
    text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\%", "\\$", "$", "\\circ", "^\\circ", "^{\\circ}"):
        text = text.replace(token, "%" if token == "\\%" else " ")
    return text


@lru_cache(maxsize=65_536)
def parse_number(text: str) -> float | None:
    """The one number ``text`` states, units, currency, percent and degree signs aside; None if it states none
    or several (``x = 5`` -> 5, ``3/4`` -> 0.75, ``1,234 cm^2`` -> 1234)."""
    text = _strip_latex(text)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = _UNIT_POWER.sub(r"\1", text).replace("(", " ").replace(")", " ")
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
    re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:option|choice|answer)\s*(?:is\s*)?:?\s*\(?([A-Za-z])\)?(?![A-Za-z])",
               re.I),                                                # option B | the answer is (b)
]
_PAREN_LETTER = re.compile(r"\(([A-Z])\)")


def choice_index(text: str, choices: list[str]) -> int | None:
    """Which option ``text`` names, by letter (``B``, ``(B)``, ``B.``, ``option B``, ``B. text``) or by the
    option's text; None if it names none or is ambiguous."""
    t = text.strip()
    n = len(choices)
    in_parens = {m for m in _PAREN_LETTER.findall(t) if m in LETTERS[:n]}
    if len(in_parens) > 1:
        return None
    if len(t) == 1 and t.upper() in LETTERS[:n]:
        return LETTERS.index(t.upper())
    for form in _LETTER_FORMS:
        m = form.match(t)
        if m and m[1].upper() in LETTERS[:n]:
            return LETTERS.index(m[1].upper())
    if len(in_parens) == 1:
        return LETTERS.index(in_parens.pop())
    norm = normalize_text(t)
    matches = [i for i, c in enumerate(choices) if normalize_text(str(c)) == norm]
    if len(matches) == 1:
        return matches[0]
    value = parse_number(t)
    if value is not None:
        numeric = [i for i, c in enumerate(choices) if (v := parse_number(str(c))) is not None and
                   _close(v, value, NUMERIC_REL_TOL)]
        if len(numeric) == 1:
            return numeric[0]
    return None


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
    return normalize_text(a) == normalize_text(b)


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


def _latex_equal(prediction: str, answer: str) -> bool:
    global _math_verify_log_quieted
    from math_verify import parse, verify

    if not _math_verify_log_quieted:
        # math-verify warns on every call made without its signal-based timeout
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _math_verify_log_quieted = True
    # its timeout uses signal.alarm, which only works in the main thread
    timeout = 5 if threading.current_thread() is threading.main_thread() else None

    def wrap(s: str) -> str:
        return s if "$" in s or "\\(" in s or "\\boxed" in s else f"${s}$"

    gold = parse(wrap(answer), parsing_timeout=timeout)
    pred = parse(wrap(prediction), parsing_timeout=timeout)
    if gold and pred and verify(gold, pred, timeout_seconds=timeout):
        return True
    return _same_item(prediction, answer)


def answer_score(prediction: str | None, answer: str | list[str], *, answer_type: AnswerType,
                 choices: list[str] | None = None) -> float:
    """How well ``prediction`` (an extracted final answer) matches ``answer``, in [0, 1].

    ``answer`` may be a list of acceptable answers (the best score counts). Binary for every type but
    ``document`` (ANLS).
    """
    if prediction is None or not prediction.strip():
        return 0.0
    if isinstance(answer, list):
        return max((answer_score(prediction, a, answer_type=answer_type, choices=choices) for a in answer),
                   default=0.0)
    if answer_type == "multiple_choice":
        if not choices:
            raise ValueError("multiple_choice judging needs the choices")
        gold = choice_index(answer, choices)
        if gold is None:
            raise ValueError(f"the ground truth {answer!r} names none of the choices {choices!r}")
        return float(choice_index(prediction, choices) == gold)
    if answer_type in ("integer", "float"):
        p, a = parse_number(prediction), parse_number(answer)
        if p is None or a is None:
            return 0.0
        if answer_type == "integer":
            return float(p == a or (p.is_integer() and a.is_integer() and int(p) == int(a)))
        return float(_close(p, a, NUMERIC_REL_TOL))
    if answer_type == "yes_no":
        p, a = _yes_no(prediction), _yes_no(answer)
        return float(p is not None and p == a)
    if answer_type == "text":
        return float(normalize_text(prediction) == normalize_text(answer))
    if answer_type == "list":
        p, a = _split_list(prediction), _split_list(answer)
        return float(len(p) == len(a) and all(_same_item(x, y) for x, y in zip(p, a, strict=True)))
    if answer_type == "chart":
        p, a = parse_number(prediction), parse_number(answer)
        if p is not None and a is not None:
            return float(abs(p - a) <= CHART_REL_TOL * abs(a) if a else p == a)
        return float(normalize_text(prediction) == normalize_text(answer))
    if answer_type == "document":
        return anls(prediction, answer)
    if answer_type == "latex":
        return float(_latex_equal(prediction, answer))
    raise ValueError(f"unknown answer_type {answer_type!r}")


def is_correct(prediction: str, answer: str, *, answer_type: str, choices: list[str] | None = None) -> bool:
    """Whether ``prediction`` matches ``answer`` under the rules of ``answer_type`` (score > 0.9)."""
    return answer_score(prediction, answer, answer_type=answer_type, choices=choices) > CORRECT_ABOVE
