"""``python -m evals.agreement RUN``: our judge-free MathVista score vs lmms-eval's own scoring, same responses.

lmms-eval extracts MathVista answers with an LLM (``API_TYPE=local`` + ``LLM_JUDGE_URL`` for an
OpenAI-compatible server of your own), snaps multiple-choice answers to the nearest option and compares strings.
This report runs that exact code on the responses of an ``evals.run`` folder, counts where the two scorers
agree, and lists every disagreement.

    python -m evals.agreement runs/eval-internvl2-8b --judge-url http://127.0.0.1:8000/v1 \
        --judge-model Qwen/Qwen2.5-7B-Instruct
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import NothingMade, UserError
from mmpr.io import atomic_write_text
from mmpr.locations import check_server

TASK = "mmpr_mathvista_testmini_cot"


class Disagreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: str
    answer: str | None
    ours_extracted: str | None
    ours_correct: bool
    lmms_eval_extracted: str | None
    lmms_eval_correct: bool
    response_end: str


class AgreementReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: int
    agree: int
    agreement_rate: float
    ours_accuracy: float
    lmms_eval_accuracy: float
    ours_unparsable: int
    disagreements: list[Disagreement]


def _evaluator(judge_url: str | None, judge_model: str | None):
    """lmms-eval's MathVistaEvaluator, pointed at a local judge (its server is built when the module loads)."""
    os.environ["API_TYPE"] = "local"
    if judge_url:
        os.environ["LLM_JUDGE_URL"] = judge_url.rstrip("/") + ("" if judge_url.endswith("/chat/completions")
                                                               else "/chat/completions")
    if judge_model:
        os.environ["MODEL_VERSION"] = judge_model
    module = importlib.import_module("lmms_eval.tasks.mathvista.mathvista_evals")
    module = importlib.reload(module)
    evaluator = module.MathVistaEvaluator()
    return evaluator


def lmms_eval_score(evaluator, record: dict) -> tuple[str | None, bool]:
    ref = record["reference"]
    problem = {k: ref[k] for k in ("question_type", "answer_type", "choices", "query", "precision", "answer")}
    extraction = evaluator.extract_answer(record["response"], problem, quick_extract=True)
    prediction = evaluator.normalize_extracted_answer(extraction, ref["choices"], ref["question_type"],
                                                      ref["answer_type"], ref["precision"])
    return (None if prediction is None else str(prediction)), bool(evaluator.safe_equal(prediction, ref["answer"]))


def agreement(records: list[dict], *, judge_url: str | None = None, judge_model: str | None = None,
              evaluator=None) -> AgreementReport:
    evaluator = evaluator or _evaluator(judge_url, judge_model)
    agree, theirs_correct, disagreements = 0, 0, []
    for record in records:
        extracted, correct = lmms_eval_score(evaluator, record)
        theirs_correct += correct
        if correct == record["correct"]:
            agree += 1
            continue
        disagreements.append(Disagreement(
            doc_id=str(record["doc_id"]), answer=record["reference"].get("answer"),
            ours_extracted=record["extracted"], ours_correct=record["correct"], lmms_eval_extracted=extracted,
            lmms_eval_correct=correct, response_end=record["response"][-300:]))
    n = max(len(records), 1)
    return AgreementReport(total=len(records), agree=agree, agreement_rate=round(100 * agree / n, 2),
                           ours_accuracy=round(100 * sum(r["correct"] for r in records) / n, 2),
                           lmms_eval_accuracy=round(100 * theirs_correct / n, 2),
                           ours_unparsable=sum(not r["parsable"] for r in records), disagreements=disagreements)


def read_samples(path: Path) -> list[dict]:
    """The samples of an evals.run folder; a line that is not a JSON object is an error naming file and line."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{number}: not valid JSON ({e.msg}); rerun evals.run to rewrite it") from e
        if not isinstance(record, dict) or not {"reference", "response", "correct"} <= set(record):
            raise UserError(f"{path}:{number}: not an evals.run sample (needs reference, response, correct)")
        records.append(record)
    return records


@front_door
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m evals.agreement", description=__doc__, epilog=EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="an evals.run output folder with MathVista CoT samples")
    parser.add_argument("--judge-url", help="OpenAI-compatible server for lmms-eval's answer extraction")
    parser.add_argument("--judge-model", help="the model name that server serves")
    add_output_arguments(parser, overwrite=False)
    args = parser.parse_args(argv)
    samples = args.run / f"samples_{TASK}.jsonl"
    if not samples.is_file():
        raise UserError(f"{samples}: no MathVista CoT samples in {args.run}; run evals.run --tasks mathvista first")
    records = read_samples(samples)
    if not records:
        raise NothingMade(f"{samples}: holds no samples; nothing to score")
    # lmms-eval logs a refused connection and scores that answer as unextracted: an agreement rate made that way
    # is meaningless, so the judge must be there before anything is scored
    url = args.judge_url or os.environ.get("LLM_JUDGE_URL", "http://localhost:8000/v1")
    check_server(url.rstrip("/").removesuffix("/chat/completions") + "/models", "judge server (--judge-url)")
    evaluator = _evaluator(args.judge_url, args.judge_model)
    quiet_logs(args.verbose, args.run / "agreement.log")  # after lmms-eval's import, which points loguru at stdout
    report = agreement(records, evaluator=evaluator)
    atomic_write_text(args.run / "agreement.json", report.model_dump_json(indent=2) + "\n")
    print(f"{report.agree}/{report.total} samples scored alike ({report.agreement_rate:.1f}%); judge-free "
          f"{report.ours_accuracy:.2f} vs lmms-eval {report.lmms_eval_accuracy:.2f}; "
          f"{len(report.disagreements)} disagreements listed in {args.run / 'agreement.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
