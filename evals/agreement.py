"""``python -m evals.agreement RUN``: the project's judge-free verdicts vs each benchmark's official scorer, same
responses, with every disagreement listed so a run can be audited.

For the benchmarks whose official scorer is rule-based (MMMU, M3CoT, MathVision, DynaMath, WeMath) the official rule
(re-implemented in :mod:`evals.official`, citing each source file) re-scores the run's samples; nothing else is
needed. MathVista's lmms-eval scorer extracts answers with an LLM (``API_TYPE=local`` + ``LLM_JUDGE_URL`` for an
OpenAI-compatible server of your own), snaps multiple-choice answers to the nearest option and compares strings:
its exact code runs on the MathVista samples when the run has them (``--judge-url``). MathVerse and LogicVista are
scored by GPT-4 officially and are left out.

    python -m evals.agreement runs/reasoning-internvl2-8b
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

from pydantic import BaseModel, ConfigDict, Field

from evals import official, registry
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import NothingMade, UserError
from mmpr.io import atomic_write_text
from mmpr.locations import check_server, check_writable, writing_to

TASK = "mmpr_mathvista_testmini_cot"


class Disagreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: str
    answer: str | list[str] | None
    ours_extracted: str | None
    ours_correct: bool
    official_extracted: str | None
    official_correct: bool
    response_end: str


class AgreementReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scorer: str = Field(description="The official scorer the samples were re-scored with.")
    total: int
    agree: int
    agreement_rate: float
    ours_accuracy: float
    official_accuracy: float
    ours_unparsable: int
    disagreements: list[Disagreement]


class SuiteAgreement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: str
    benchmarks: dict[str, AgreementReport] = Field(description="benchmark -> its agreement, per samples file.")


def _official(benchmark: str, record: dict) -> tuple[str | None, bool]:
    """The official rule of ``benchmark`` on one sample of an evals.run folder."""
    target, ref, response = record.get("target") or {}, record.get("reference") or {}, record["response"]
    if benchmark == "mmmu":
        return official.mmmu(response, ref["question_type"], ref["options"], ref["answers"])
    if benchmark == "m3cot":
        return official.m3cot(response, target["choices"], target["answer"])
    if benchmark == "mathvision":
        return official.mathvision(response, target.get("choices") or [], target["answer"])
    if benchmark == "dynamath":
        return official.dynamath(response, ref["answer_type"], ref["ground_truth"])
    return official.wemath(response, target["answer"])


OFFICIAL_SCORERS = {
    "mmmu": "MMMU-Benchmark/MMMU:mmmu/utils/eval_utils.py",
    "m3cot": "LightChen233/M3CoT:utils/metric.py",
    "mathvision": "mathllm/MATH-V:evaluation/evaluate.py",
    "dynamath": "DynaMath/DynaMath:evaluation/opensource_json_eval.py",
    "wemath": "We-Math/We-Math:evaluation/accuracy.py",
}


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


def _report(records: list[dict], score, scorer: str) -> AgreementReport:
    agree, theirs_correct, disagreements = 0, 0, []
    for record in records:
        extracted, correct = score(record)
        theirs_correct += correct
        if correct == record["correct"]:
            agree += 1
            continue
        answer = (record.get("reference") or {}).get("answer", (record.get("target") or {}).get("answer"))
        disagreements.append(Disagreement(
            doc_id=str(record.get("doc_id")), answer=answer, ours_extracted=record.get("extracted"),
            ours_correct=record["correct"], official_extracted=extracted, official_correct=correct,
            response_end=record["response"][-300:]))
    n = max(len(records), 1)
    return AgreementReport(scorer=scorer, total=len(records), agree=agree, agreement_rate=round(100 * agree / n, 2),
                           ours_accuracy=round(100 * sum(r["correct"] for r in records) / n, 2),
                           official_accuracy=round(100 * theirs_correct / n, 2),
                           ours_unparsable=sum(not r.get("parsable", True) for r in records),
                           disagreements=disagreements)


def agreement(records: list[dict], *, judge_url: str | None = None, judge_model: str | None = None,
              evaluator=None) -> AgreementReport:
    """MathVista samples re-scored by lmms-eval's own MathVista code through a judge server."""
    evaluator = evaluator or _evaluator(judge_url, judge_model)
    return _report(records, lambda record: lmms_eval_score(evaluator, record),
                   "EvolvingLMMs-Lab/lmms-eval:lmms_eval/tasks/mathvista/mathvista_evals.py")


def official_agreement(benchmark: str, records: list[dict]) -> AgreementReport:
    """Samples of ``benchmark`` (one of :data:`OFFICIAL_SCORERS`) re-scored by its official rule."""
    return _report(records, lambda record: _official(benchmark, record), OFFICIAL_SCORERS[benchmark])


def samples_files(run: Path) -> dict[str, list[Path]]:
    """benchmark -> the samples files of ``run`` it has an official rule for (MathVista: the CoT samples)."""
    found = {b.name: [run / f"samples_{b.task_name(p)}.jsonl" for p in b.prompts]
             for b in registry.benchmarks() if b.name in OFFICIAL_SCORERS}
    found["mathvista"] = [run / f"samples_{TASK}.jsonl"]
    return {name: [p for p in paths if p.is_file()] for name, paths in found.items()
            if any(p.is_file() for p in paths)}


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
    parser.add_argument("run", type=Path, help="an evals.run output folder")
    parser.add_argument("--judge-url", help="OpenAI-compatible server for lmms-eval's MathVista answer extraction")
    parser.add_argument("--judge-model", help="the model name that server serves")
    add_output_arguments(parser, overwrite=False)
    args = parser.parse_args(argv)
    writing_to(args.run)
    files = samples_files(args.run)
    if not files:
        raise UserError(f"{args.run}: no MathVista CoT samples and no samples of {', '.join(OFFICIAL_SCORERS)}; "
                        "run evals.run --tasks mathvista (or those benchmarks) first")
    loaded = {name: [r for p in paths for r in read_samples(p)] for name, paths in files.items()}
    for name, paths in files.items():
        if not loaded[name]:
            raise NothingMade(f"{', '.join(map(str, paths))}: holds no samples; nothing to score")
    check_writable(args.run, "the run folder")  # agreement.json goes there
    reports = {name: official_agreement(name, records) for name, records in loaded.items() if name != "mathvista"}
    if "mathvista" in loaded:
        # lmms-eval logs a refused connection and scores that answer as unextracted: an agreement rate made that
        # way is meaningless, so the judge must be there before anything is scored
        url = args.judge_url or os.environ.get("LLM_JUDGE_URL", "http://localhost:8000/v1")
        check_server(url.rstrip("/").removesuffix("/chat/completions") + "/models", "judge server (--judge-url)")
        evaluator = _evaluator(args.judge_url, args.judge_model)
        quiet_logs(args.verbose, args.run / "agreement.log")  # after lmms-eval's import, which points loguru at stdout
        reports["mathvista"] = agreement(loaded["mathvista"], evaluator=evaluator)
    suite = SuiteAgreement(run=str(args.run), benchmarks=reports)
    atomic_write_text(args.run / "agreement.json", suite.model_dump_json(indent=2) + "\n")
    for name, report in reports.items():
        print(f"{name}: {report.agree}/{report.total} samples scored alike ({report.agreement_rate:.1f}%); judge-free "
              f"{report.ours_accuracy:.2f} vs official {report.official_accuracy:.2f}; "
              f"{len(report.disagreements)} disagreements")
    print(f"every disagreement is listed in {args.run / 'agreement.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
