"""The rule-based official scorers of the suite, re-implemented on whole responses, for ``evals.agreement``.

Each function reads a model's whole response the way the benchmark's own evaluation code does and returns
``(extracted, correct)``; the docstring names the source file. They are audits of the project's judge, never the
project's score: where an official scorer guesses (MMMU picks a random option when none is named) the guess is
left out and the response counts wrong. MathVerse and LogicVista score with GPT-4 and MathVista with an LLM
extraction (see :mod:`evals.agreement` for that one), so they have no function here.
"""

from __future__ import annotations

import json
import math
import re

from mmpr.answers import LETTERS, choice_set, extract_final_answer, parse_number

# ------------------------------------------------------------------------------------------------------------ MMMU

_MMMU_NUMBER = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b|-?\d+(?:\.\d+)?[eE][+-]?\d+|-?(?:\d+\.\d+|\.\d+|\d+\b)"
                          r"(?![eE][+-]?\d+)(?![,\d])")
_MMMU_KEYS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")


def mmmu_choice(response: str, options: list[str]) -> str | None:
    """MMMU ``eval_utils.parse_multi_choice_response``: the last "(B)", else the last " B ", else (responses of more
    than five words) the last option text named; None where MMMU would pick at random."""
    letters = LETTERS[:len(options)]
    for char in ",.!?;:'":
        response = response.strip(char)
    response = f" {response} "
    found = [c for c in letters if f"({c})" in response]
    if found:
        return max(found, key=lambda c: response.rfind(f"({c})"))
    found = [c for c in letters if f" {c} " in response]
    if found:
        return max(found, key=lambda c: response.rfind(f" {c} "))
    if len(response.split()) > 5:
        low = response.lower()
        found = [c for c, text in zip(letters, options, strict=True) if text.lower() in low]
        if found:
            return max(found, key=lambda c: low.rfind(options[letters.index(c)].lower()))
    return None


def _mmmu_normalize(text: str) -> list:
    """MMMU ``eval_utils.normalize_str``: a number rounded to 2 decimals, else lower-case text (a one-character
    text padded with a space on either side)."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


def mmmu_open(response: str) -> list:
    """MMMU ``eval_utils.parse_open_response``: the shortest tail after a key phrase of each sentence, and every
    number in those tails, normalised."""
    response = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = list(_MMMU_KEYS)
    tails = []
    for i, sentence in enumerate(sentences):
        if i == len(sentences) - 1:
            keys.append("=")
        shortest = None
        for key in keys:
            if key in sentence:
                tail = sentence.split(key)[-1].strip()
                if shortest is None or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in ":,.!?;'":
            tails.append(shortest)
    tails = tails or [response]
    found = tails + [n for t in tails for n in _MMMU_NUMBER.findall(t)]
    return list({v for t in found for v in _mmmu_normalize(t)})


def mmmu(response: str, question_type: str, options: list[str], answers: list[str]) -> tuple[str | None, bool]:
    """MMMU ``eval_utils.eval_multi_choice`` / ``eval_open`` on the parsed response."""
    if question_type == "multiple-choice":
        choice = mmmu_choice(response, options)
        return choice, choice is not None and choice in answers
    predictions = mmmu_open(response)
    golds = [g for a in answers for g in _mmmu_normalize(a)]
    correct = any(isinstance(p, str) and any(isinstance(g, str) and g in p for g in golds) or
                  not isinstance(p, str) and p in golds for p in predictions)
    return "; ".join(str(p) for p in predictions), correct


# ----------------------------------------------------------------------------------------------------------- M3CoT

def m3cot_choice(response: str, choices: list[str]) -> str | None:
    """M3CoT ``utils/metric.py`` ``judge_answer``'s reading: the last "(x)", else the last option text contained,
    else the last bare letter (upper, then lower case); None where it finds none ("FAILED")."""
    letters = LETTERS[:len(choices)]
    text = response.split("[Answer]")[-1].split("[Rationale]")[0].split("[Context]")[0] \
        if "[Answer]" in response else response
    found = re.findall(r"\(([A-Za-z])\)", text)
    if found:
        return found[-1].upper()
    named = [letters[i] for i, c in enumerate(choices) if c.lower() in text.lower()]
    words = re.sub(r"[\n.,!?]", " ", text).split(" ")
    upper = [c for c in letters if c in words]
    lower = [c for c in letters if c.lower() in words]
    return (named or upper or lower or [None])[-1]


def m3cot(response: str, choices: list[str], answer: str) -> tuple[str | None, bool]:
    """M3CoT ``utils/metric.py`` ``judge_answer``: :func:`m3cot_choice` equal to the gold letter."""
    pred = m3cot_choice(response, choices)
    return pred, pred == answer


# ------------------------------------------------------------------------------------------------------ LogicVista

_LEADING_LETTER = re.compile(r"^\(?([A-Ea-e])(?:\)|\]|(?=[\s.,:;#]|$))")
_LEADING_MARKS = re.compile(r"^[^\w(]+")  # bullets and stray symbols before the answer: "✗ Echo", "¬\nB"
# "(B)" within a line (one that starts a line is an option listed), "C is the correct answer", a letter ending the
# response after "is" ("... the given figure is B.")
_MARKED = re.compile(r"(?<!^)(?<!\n)\(([A-Ea-e])\)|\b([A-E]) is the (?:correct|right|best) (?:answer|option|choice)"
                     r"|\b(?:is|be|option|choice)\s+\(?([A-E])\)?\.?$")


def logicvista_choices(response: str, options: list[str]) -> str | None:
    """The option letters LogicVista's GPT-4 extraction (``eval/extract_accuracy.py``) reads from a whole response,
    as its stored extractions (``eval/results/*-accuracy-results.csv``) show it: a stated answer (no reasoning
    needed before it: "The answer is A. BECAUSE"), else a response that is itself one or several options (a letter,
    "A and B", an option's text, the number of a numbered option), else the letter it starts with ("C) Some sperm
    whales ...", "(A) True"), else the one letter it marks ("... (x) ...", "x is the correct answer", "... is B."
    at its end); None where it names none or marks several letters (a list of the options: its "ZZZZZ"). A stated
    answer naming one option is read by its leading letter where it has one ("The answer is A 5.", "The answer is
    (B"); bullets and stray symbols before the answer are dropped ("✗ Echo")."""
    text = _LEADING_MARKS.sub("", response.strip())
    stated = extract_final_answer(text, min_rationale_words=0)
    if stated is not None:
        named, leading = choice_set(stated, options), _LEADING_LETTER.match(stated)
        return leading[1].upper() if leading and not (named and len(named) > 1) else stated
    if choice_set(text, options) is not None or re.fullmatch(r"\d+", text):
        return text
    if len({m.upper() for m in re.findall(r"\(([A-Ea-e])\)", text)}) > 1:  # "(B) (C) (D)": the options listed
        return None
    leading = _LEADING_LETTER.match(text)
    if leading is not None:
        return leading[1].upper()
    marked = {"".join(m).upper() for m in _MARKED.findall(text)}
    return marked.pop() if len(marked) == 1 else None


# ------------------------------------------------------------------------------------------------------- MathVerse

_INTRODUCED = re.compile(r":[ \t]*\n")  # "... the range is:\n\n(-2, 1)": the answer on the lines after
_IS = re.compile(r"\bis\s+(?:approximately\s+|about\s+|roughly\s+)?", re.I)
_OPTION_LINE = re.compile(r"^\(?[A-H][.):]\s")


def mathverse_extract(response: str) -> str | None:
    """The answer MathVerse's GPT-4 extraction (``evaluation/extract_answer_s1.py``) reads from a whole response, by
    the rule its demonstrations (``evaluation/prompts.py`` ``demo_prompt_extract``) show: a stated answer, else what
    the last sentence says something "is (approximately)" ("... is approximately 22.3 meters."), else the lines after
    the last line that ends with a colon ("... is:\n\nD. They give ..."; at most three lines); None where it says
    nothing (its "null")."""
    text = response.strip().strip("'\"").strip()
    stated = extract_final_answer(text, min_rationale_words=0)
    if stated is not None:
        return stated
    last = re.split(r"\n|(?<=[.!?])\s+", text.rstrip("."))[-1]
    said = None if _OPTION_LINE.match(last) else _last_of(_IS, last)
    if said is not None:
        return last[said.end():].strip() or None
    introduced = _last_of(_INTRODUCED, text)
    if introduced is not None:
        lines = [line.strip() for line in text[introduced.end():].split("\n") if line.strip()]
        if 0 < len(lines) <= 3:
            return "\n".join(lines)
    return None


def _last_of(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    return found


# ------------------------------------------------------------------------------------------------------ MathVision

_MATHV_FLAGS = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")


def mathvision_extract(response: str) -> str:
    """MATH-V ``evaluation/evaluate.py``: the trailing option letter, else the text after the last "the answer is"
    (its first line and sentence), else the last ``\\boxed{}``, cleaned as ``utils.find_math_answer`` does (lower
    case, after ``=``, spaces, ``\\text`` and units out)."""
    answer = response.strip()
    for c in "ABCDE":
        if (answer.endswith(f" {c}.") or answer.endswith(f" ({c}).") or answer.startswith(f"{c}\n")
                or answer.startswith(f"({c})\n") or answer.startswith(f"({c}) {c}\n")):
            answer = c
    tail = answer.split("is ")[-1].rstrip(".")
    if parse_number(tail) is not None and re.fullmatch(r"-?\d+(?:\.\d+)?", tail.strip()):
        answer = tail
    if "oxed{" not in answer:
        for flag in _MATHV_FLAGS:
            for variant in (flag, flag.replace("the", "The")):
                if variant in answer:
                    answer = answer.split(variant)[-1].strip().split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    s = answer.lower().replace("{}", "")
    boxed = re.findall(r"oxed{(.*)}", s, flags=re.S)
    s = boxed[-1] if boxed else s
    if "}" in s and ("{" not in s or s.find("}") < s.find("{")):
        s = s.split("}")[0]
    s = s.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("\\text", ""), ("\\mbox", ""), ("\\left", ""), ("\\right", ""),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("$", ""), ("\n", "")):
        s = s.replace(old, new)
    for c in "abcde":
        s = s.replace(f"({c})", c).replace(f"{{{c}}}", c)
    return s.rstrip(".").lstrip(":").strip()


def _mathvision_equal(answer: str, gold: str) -> bool:
    """MATH-V ``utils.is_equal``: equal text (case aside), else equal values at 2 decimals (the project's number
    reader stands in for ``latex2sympy``)."""
    answer, gold = answer.lower().strip(), gold.lower().strip()
    if not answer.replace(" ", "") or not gold.replace(" ", ""):
        return False
    if answer == gold:
        return True
    x, y = parse_number(answer), parse_number(gold)
    return x is not None and y is not None and math.isfinite(x) and round(x, 2) == round(y, 2)


def mathvision(response: str, options: list[str], answer: str) -> tuple[str | None, bool]:
    """MATH-V ``evaluation/evaluate.py``: right when the extraction equals the gold letter or the gold option's
    value."""
    extracted = mathvision_extract(response)
    value = options[ord(answer) - ord("A")] if options and len(answer) == 1 and answer.isalpha() else ""
    return extracted, _mathvision_equal(extracted, answer) or _mathvision_equal(extracted, value)


# ------------------------------------------------------------------------------------------------------- DynaMath

def dynamath_short_answer(response: str) -> str:
    """DynaMath ``evaluation/opensource_json_eval.py``: the JSON's "short answer", else the last line less its
    last character."""
    text = response.strip()
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            return str(json.loads(text[start:end + 1].replace("\\", ""), strict=False).get("short answer"))
        except (json.JSONDecodeError, AttributeError):
            pass
    return text.split("\n")[-1][:-1]


def dynamath(response: str, answer_type: str, ground_truth: str) -> tuple[str | None, bool]:
    """DynaMath's rule: a float within an absolute 0.001 (its first word, ``24π`` as 24 x pi); a multiple-choice
    letter equal to the gold (or the gold among its first three characters); any other answer containing the
    gold."""
    answer = dynamath_short_answer(response)
    if answer_type == "float":
        word = answer if answer.isdigit() else answer.split(" ")[0]
        try:
            value = float(word.split("π")[0]) * math.pi if "π" in word else float(word)
        except ValueError:
            return answer, False
        return answer, abs(value - float(ground_truth)) <= 0.001
    if answer_type == "multiple choice":
        return answer, answer == ground_truth if len(answer) == 1 else ground_truth in answer[:3]
    return answer, ground_truth in answer


# ---------------------------------------------------------------------------------------------------------- WeMath

def wemath(response: str, answer: str) -> tuple[str | None, bool]:
    """We-Math ``evaluation/accuracy.py``: the first character after the last "Answer" once ``<>:.`` are out, if
    it is a letter A-H."""
    tail = re.sub(r"[><:.]", "", response.split("Answer")[-1].strip()).strip()
    letter = tail[0] if tail and tail[0] in "ABCDEFGH" else None
    return letter, letter == answer
