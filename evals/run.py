"""``python -m evals.run``: chain-of-thought evaluation through lmms-eval, judge-free and reproducible.

Examples::

    # offline, CPU: a tiny model on a local copy of MathVista testmini (a parquet file or folder)
    python -m evals.run --tasks mathvista --model tiny:qwen2_vl --engine hf --limit 8 \\
        --data mathvista=~/data/mathvista_testmini.parquet --out runs/eval-tiny
    # GPU: InternVL2-8B before and after MPO, CoT and direct prompts, then compare
    python -m evals.run --tasks mathvista,mathvision,pope --model OpenGVLab/InternVL2-8B --engine vllm \\
        --out runs/eval-internvl2-8b
    python -m evals.run --tasks mathvista,mathvision,pope --model OpenGVLab/InternVL2-8B-MPO --engine vllm \\
        --out runs/eval-internvl2-8b-mpo
    python -m evals.compare runs/eval-internvl2-8b runs/eval-internvl2-8b-mpo --out runs/compare

A rerun with the same --out skips the samples already answered.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from evals.scoring import MissingField
from mmpr.io import atomic_path, atomic_write_text
from mmpr.prompts import get_template
from mmpr.testing import resolve_model

TASKS_DIR = Path(__file__).parent / "tasks"
# short name -> (task folder, task name per prompt style)
BENCHMARKS = {
    "mathvista": ("mathvista", {"cot": "mmpr_mathvista_testmini_cot", "direct": "mmpr_mathvista_testmini_direct"}),
    "mathvision": ("mathvision", {"cot": "mmpr_mathvision_testmini_cot"}),
    "pope": ("pope", {"cot": "mmpr_pope_cot"}),
    "synthetic_grid": ("synthetic_grid", {"cot": "mmpr_synthetic_grid_cot", "direct": "mmpr_synthetic_grid_direct"}),
}


class CategoryScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accuracy: float
    correct: int
    total: int


class TaskResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmark: str
    task: str
    accuracy: float = Field(description="Percent correct, judge-free.")
    correct: int
    total: int
    unparsable: int
    unparsable_rate: float = Field(description="Percent of responses with no extractable final answer.")
    judged: int = Field(default=0, description="Unparsable answers sent to the --judge (0 without one).")
    accuracy_with_judge: float | None = None
    categories: dict[str, dict[str, CategoryScore]] = Field(default_factory=dict)
    dataset: str
    dataset_revision: str | None = None


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    engine: str
    prompt: str
    prompt_template: str
    generation: dict[str, Any]
    lmms_eval_version: str
    created_at: datetime
    limit: int | None
    tasks: dict[str, TaskResult]


def _local_data_yaml(folder: str, source: Path, data: str, out_dir: Path) -> None:
    """Copy a task folder with its dataset pointed at local data: a parquet file or folder of parquet files,
    or a folder written by ``save_to_disk``."""
    shutil.copytree(TASKS_DIR / folder, out_dir / folder)
    path = Path(data).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"--data {folder}={data}: no such file or folder")
    for task_yaml in (out_dir / folder).glob("*.yaml"):
        text = task_yaml.read_text()
        split = yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line))["test_split"]
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            replacement = f"dataset_path: {path}\ndataset_kwargs:\n  load_from_disk: true\n"
        else:
            files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob("*.parquet"))
            if not files:
                raise FileNotFoundError(f"--data {folder}={data}: no parquet files there")
            replacement = "dataset_path: parquet\ndataset_kwargs:\n  data_files:\n    " + f"{split}:\n" + "".join(
                f"      - {f}\n" for f in files)
        lines = [line for line in text.splitlines(keepends=True) if not line.startswith("dataset_path:")]
        task_yaml.write_text(replacement + "".join(lines))


def _check_fields(task_dict: dict) -> None:
    """A dataset missing a field the task needs fails before any generation, naming the field."""
    from evals import scoring

    required = {"mathvista": scoring.MATHVISTA_FIELDS + ("decoded_image",),
                "mathvision": scoring.MATHVISION_FIELDS + ("decoded_image",),
                "pope": scoring.POPE_FIELDS + ("image",),
                "synthetic_grid": ("id", "question", "answer", "answer_type", "kind", "image")}
    for name, task in task_dict.items():
        benchmark = next(b for b, (_, tasks) in BENCHMARKS.items() if name in tasks.values())
        split = task.config.test_split
        columns = task.dataset[split].column_names
        missing = [f for f in required[benchmark] if f not in columns]
        if missing:
            raise MissingField(f"{name}: the dataset has no field {', '.join(missing)} (it has "
                               f"{', '.join(columns)})")


def _breakdown(records: list[dict]) -> dict[str, dict[str, CategoryScore]]:
    out: dict[str, dict[str, list[int]]] = {}
    for r in records:
        for key, values in (r.get("categories") or {}).items():
            for value in values:
                tally = out.setdefault(key, {}).setdefault(str(value), [0, 0])
                tally[0] += int(r["correct"])
                tally[1] += 1
    return {key: {value: CategoryScore(accuracy=round(100 * c / t, 2), correct=c, total=t)
                  for value, (c, t) in sorted(values.items())} for key, values in sorted(out.items())}


def evaluate(benchmarks: list[str], model: str, *, engine: str = "hf", prompt: str = "cot", limit: int | None = None,
             out: Path, data: dict[str, str] | None = None, judge: str | None = None,
             engine_args: dict | None = None, batch_size: int = 16, engine_instance=None) -> RunResult:
    """Run ``benchmarks`` through lmms-eval; write ``results.json`` and ``samples_<task>.jsonl`` to ``out``."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager, get_task_dict

    from evals.models import MmprModel

    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}")
    for b in benchmarks:
        if prompt not in BENCHMARKS[b][1]:
            raise ValueError(f"{b} has no {prompt!r} prompt; it has {', '.join(BENCHMARKS[b][1])}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task_names = [BENCHMARKS[b][1][prompt] for b in benchmarks]
    resolved = resolve_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(tmp)
        for b in benchmarks:
            folder = BENCHMARKS[b][0]
            if data and b in data:
                _local_data_yaml(folder, TASKS_DIR, data[b], include)
            else:
                shutil.copytree(TASKS_DIR / folder, include / folder)
        manager = TaskManager("WARNING", include_path=str(include), include_defaults=False)
        _check_fields(get_task_dict(task_names, manager))
        lm = MmprModel(resolved, engine=engine, cache_dir=out / "cache", batch_size=batch_size,
                       engine_args=engine_args, engine_instance=engine_instance)
        raw = simple_evaluate(model=lm, tasks=task_names, limit=limit, log_samples=True, task_manager=manager,
                              verbosity="WARNING", random_seed=0, numpy_random_seed=0, torch_random_seed=0)
    return _write(raw, benchmarks, task_names, model, engine, prompt, limit, out, data or {}, judge)


def _write(raw: dict, benchmarks, task_names, model, engine, prompt, limit, out: Path, data: dict,
           judge: str | None) -> RunResult:
    from evals.judge import judge_unparsable

    tasks = {}
    for benchmark, task in zip(benchmarks, task_names, strict=True):
        records = [{**s["accuracy"], "response": _response(s)} for s in raw["samples"][task]]
        judged, with_judge = judge_unparsable(records, judge) if judge else (0, None)
        with atomic_path(out / f"samples_{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        correct = sum(r["correct"] for r in records)
        unparsable = sum(not r["parsable"] for r in records)
        total = len(records)
        config = raw["configs"][task]
        tasks[benchmark] = TaskResult(
            benchmark=benchmark, task=task, accuracy=round(100 * correct / max(total, 1), 2), correct=correct,
            total=total, unparsable=unparsable, unparsable_rate=round(100 * unparsable / max(total, 1), 2),
            judged=judged, accuracy_with_judge=with_judge, categories=_breakdown(records),
            dataset=data.get(benchmark) or config.get("dataset_path"),
            dataset_revision=(config.get("dataset_kwargs") or {}).get("revision"))
    template = get_template("mpo_cot" if prompt == "cot" else "direct")
    from evals.models import MmprModel

    # the settings the engine applied (greedy unless the task samples; stop strings are not used: CoT answers span
    # paragraphs)
    generation = {name: MmprModel.sampling(raw["configs"][name].get("generation_kwargs", {})).model_dump()
                  for name in task_names}
    result = RunResult(model=model, engine=engine, prompt=prompt, prompt_template=template.template,
                       generation=generation, lmms_eval_version=version("lmms_eval"), created_at=datetime.now(UTC),
                       limit=limit, tasks=tasks)
    atomic_write_text(out / "results.json", result.model_dump_json(indent=2) + "\n")
    return result


def _response(sample: dict) -> str:
    resps = sample.get("resps") or [[""]]
    first = resps[0]
    return first[0] if isinstance(first, list) else first


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise SystemExit(f"error: {flag} {value!r}: expected NAME=VALUE")
        out[key] = rest
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", required=True, help=f"comma-separated: {', '.join(BENCHMARKS)}")
    parser.add_argument("--model", required=True, help="model path, Hub id, or tiny:<family>")
    parser.add_argument("--engine", choices=["vllm", "hf"], default="hf", help="vllm (GPU) or hf (transformers)")
    parser.add_argument("--prompt", choices=["cot", "direct"], default="cot")
    parser.add_argument("--limit", type=int, help="first N samples of each benchmark")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--data", action="append", default=[], metavar="BENCHMARK=PATH",
                        help="a local copy of a benchmark (parquet file/folder or save_to_disk folder)")
    parser.add_argument("--judge", help="OpenAI-compatible URL (e.g. http://127.0.0.1:8000/v1): only the unparsable "
                        "answers are sent to it; the judge-free score is reported as well")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="engine argument, e.g. tensor_parallel_size=2 or max_model_len=8192")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    engine_args = {k: yaml.safe_load(v) for k, v in _pairs(args.engine_arg, "--engine-arg").items()}
    try:
        result = evaluate([t.strip() for t in args.tasks.split(",") if t.strip()], args.model, engine=args.engine,
                          prompt=args.prompt, limit=args.limit, out=args.out, data=_pairs(args.data, "--data"),
                          judge=args.judge, engine_args=engine_args, batch_size=args.batch_size)
    except (MissingField, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, task in result.tasks.items():
        judge_note = f", {task.accuracy_with_judge:.2f} with the judge on {task.judged}" if task.judged else ""
        print(f"{name}: {task.accuracy:.2f} ({task.correct}/{task.total}), unparsable {task.unparsable_rate:.1f}%"
              f"{judge_note}")
    print(f"results in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
