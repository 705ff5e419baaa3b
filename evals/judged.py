"""MathVista's judged protocol, as VLMEvalKit and the MathVista paper score it, beside the judge-free headline.

An LLM (any OpenAI-compatible server of yours) reads every response and writes the answer it gives, prompted with
the five demonstrations of MathVista's answer-extraction prompt (``evaluation/prompts/ext_ans.py`` in
lupantech/MathVista; the same five in VLMEvalKit ``vlmeval/dataset/utils/mathvista.py``). The extraction is then
normalised and compared the official way (MathVista ``evaluation/calculate_score.py``): a multiple-choice
extraction "(B) ..." or "B" becomes option B's text, anything else snaps to the option nearest by edit distance;
an integer is ``int(float(x))``, a float is rounded to the item's precision; then the strings must be equal.
VLMEvalKit's rule-based prefetch (which only ever keeps an answer it finds right) is not used: every item goes
to the judge, so the two scorings differ by the judge alone.

A judge call that fails (no reply after retries, or an empty one) is counted and its item listed; the judged
score is then withheld rather than computed with that item silently right or wrong. Replies are cached in the run's
folder, so a rerun asks only what it lacks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from Levenshtein import distance

from evals.cache import ResponseCache
from evals.intervals import RESAMPLES, SEED
from evals.results import JudgedComparison, JudgedDifference
from evals.uncertainty import interval, paired_difference

PROTOCOL = "mathvista-judged (LLM extraction with MathVista's demonstrations; official normalisation and equality)"

# MathVista's extraction demonstrations: (hint, question, choices or None, model response, extracted answer)
DEMONSTRATIONS = (
    ("Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the "
     "end.", "Which number is missing?", None, "The number missing in the sequence is 14.", "14"),
    ("Please answer the question requiring a floating-point number with one decimal place and provide the final "
     "value, e.g., 1.2, 1.3, 1.4, at the end.", "What is the fraction of females facing the camera?", None,
     "The fraction of females facing the camera is 0.6, which means that six out of ten females in the group are "
     "facing the camera.", "0.6"),
    ("Please answer the question requiring a floating-point number with two decimal places and provide the final "
     "value, e.g., 1.23, 1.34, 1.45, at the end.",
     "How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)", None,
     "Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.", "1.45"),
    ("Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], "
     "[1.2, 1.3, 1.4], at the end.", "Between which two years does the line graph saw its maximum peak?", None,
     "The line graph saw its maximum peak between 2007 and 2008.", "[2007, 2008]"),
    ("Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
     "What fraction of the shape is blue?", "(A) 3/11 (B) 8/11 (C) 6/11 (D) 3/5",
     "The correct answer is (B) 8/11.", "B"),
)

INSTRUCTION = ("Please read the following example. Then extract the answer from the model response and type it at "
               "the end of the prompt.")


def _demonstration(hint: str, question: str, choices: str | None, response: str, extracted: str) -> str:
    lines = [f"Hint: {hint}", f"Question: {question}"] + ([f"Choices: {choices}"] if choices else [])
    return "\n".join(lines) + f"\n\nModel response: {response}\n\nExtracted answer: {extracted}"


def extraction_prompt(query: str, response: str) -> str:
    """The extraction prompt for one item: the instruction, the five demonstrations, then the item's query (its
    hint, question and choices, as MathVista's ``query`` field writes them) and the response."""
    demos = "\n\n".join(_demonstration(*d) for d in DEMONSTRATIONS)
    return f"{INSTRUCTION}\n\n{demos}\n\n{query.strip()}\n\nModel response: {response.strip()}\n\nExtracted answer: "


def normalize(extraction: str | None, reference: dict) -> str | None:
    """The extraction as MathVista's ``normalize_extracted_answer`` makes it: an option's text for a multiple-choice
    item (by letter, else the nearest option), ``int(float(x))`` for an integer, ``x`` rounded to the item's
    precision for a float, the text otherwise; None when a number cannot be read."""
    text = (extraction or "").strip()
    if reference["question_type"] == "multi_choice":
        choices = [str(c) for c in reference["choices"]]
        letter = re.findall(r"\(([a-zA-Z])\)", text)
        if letter:
            text = letter[0].upper()
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        if text in letters:
            return choices[letters.index(text)]
        return min(choices, key=lambda choice: distance(text, choice))  # first of the nearest, as the official
    try:
        if reference["answer_type"] == "integer":
            return str(int(float(text)))
        if reference["answer_type"] == "float":
            return str(round(float(text), int(reference["precision"] or 0)))
    except (ValueError, OverflowError):
        return None
    return text


def safe_equal(prediction: str | None, answer: str) -> bool:
    """MathVista's comparison: the two as stripped strings are equal."""
    return prediction is not None and str(prediction).strip() == str(answer).strip()


def judge_records(records: list[dict], extract: Callable[[str], str | None], *, judge_model: str,
                  resamples: int = RESAMPLES, seed: int = SEED) -> JudgedComparison:
    """Score ``records`` (MathVista samples with their ``reference``) under the judged protocol, ``extract`` being
    one judge call (None: it failed); compare with their judge-free verdicts."""
    judge_free, judged, differing, failed = {}, {}, [], []
    for i, record in enumerate(records):
        ref = record["reference"]
        key = f"{record['doc_id']}#{i}"
        judge_free[key] = 100.0 * bool(record["correct"])
        extraction = extract(extraction_prompt(ref.get("query") or "", record["response"]))
        if extraction is None:
            failed.append(str(record["doc_id"]))
            continue
        prediction = normalize(extraction, ref)
        correct = safe_equal(prediction, ref["answer"])
        judged[key] = 100.0 * correct
        record.update(judged_extracted=extraction, judged_prediction=prediction, judged_correct=correct)
        if correct != bool(record["correct"]):
            differing.append(JudgedDifference(
                doc_id=str(record["doc_id"]), answer=str(ref["answer"]), judge_free_extracted=record["extracted"],
                judge_free_correct=bool(record["correct"]), judged_extracted=extraction,
                judged_prediction=prediction, judged_correct=correct))
    n = len(records)
    complete = not failed and n > 0
    difference = paired_difference(judge_free, judged, "item", resamples=resamples, seed=seed) if complete else None
    return JudgedComparison(
        protocol=PROTOCOL, judge_model=judge_model, judge_free=round(sum(judge_free.values()) / max(n, 1), 2),
        judged=round(sum(judged.values()) / n, 2) if complete else None,
        judged_interval=interval(list(judged.values()), "item", resamples=resamples, seed=seed) if complete
        else None, difference_interval=difference[1] if difference else None, items=n,
        judge_failures=len(failed), failed_items=failed, differing=differing)


class Judge:
    """One extraction call to an OpenAI-compatible server, cached by prompt in ``cache``; retried at a higher
    temperature when the reply is empty (as VLMEvalKit does), None when no usable reply comes."""

    def __init__(self, url: str, cache: Path, *, model: str | None = None, api_key: str = "EMPTY",
                 timeout: float = 120.0, tries: int = 3, retries: int = 2):
        from openai import OpenAI

        self.client = OpenAI(base_url=url, api_key=api_key, timeout=timeout, max_retries=retries)
        self.model = model or self.client.models.list().data[0].id
        self.cache = ResponseCache(cache)
        self.tries = tries

    def __call__(self, prompt: str) -> str | None:
        from openai import OpenAIError

        key = hashlib.sha256(f"{self.model}\n{prompt}".encode()).hexdigest()
        if key in self.cache.responses:
            return self.cache.responses[key]
        for attempt in range(self.tries):
            try:
                reply = self.client.chat.completions.create(
                    model=self.model, temperature=0.5 * attempt, max_tokens=128,
                    messages=[{"role": "user", "content": prompt}])
            except OpenAIError:
                return None  # the client has retried the transport already: this item's call failed
            text = ((reply.choices[0].message.content if reply.choices else None) or "").strip()
            if text:
                self.cache.add([(key, text)])
                return text
        return None


def _cell(text: str | None) -> str:
    return "-" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def write_table(comparison: JudgedComparison, path: Path, benchmark: str) -> None:
    """The per-run table: both scores, then every item the two scorings disagree on with both extractions."""
    from mmpr.io import atomic_write_text

    judged = "-" if comparison.judged is None else f"{comparison.judged:.2f}"
    lines = [f"# {benchmark}: judge-free vs judged ({comparison.judge_model})", "",
             f"judge-free {comparison.judge_free:.2f}, judged {judged} over {comparison.items} items; "
             f"judge failures: {comparison.judge_failures}", "",
             "| item | answer | judge-free extracted | right | judged extracted | normalised | right |",
             "|---|---|---|---|---|---|---|"]
    for d in comparison.differing:
        lines.append(f"| {d.doc_id} | {_cell(d.answer)} | {_cell(d.judge_free_extracted)} | {d.judge_free_correct} | "
                     f"{_cell(d.judged_extracted)} | {_cell(d.judged_prediction)} | {d.judged_correct} |")
    atomic_write_text(path, "\n".join(lines) + "\n")
