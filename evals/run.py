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

A rerun with the same --out skips the samples already answered and asks the engine again for those it failed on
(counted per cause in results.json under ``engine_failures``). An --out holding another model's run, or anything
else, needs --overwrite. Engine and lmms-eval logs go to <out>/eval.log (or stderr with --verbose).
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
from mmpr.cli import (
    EXIT_CODES,
    add_output_arguments,
    flag_keys,
    front_door,
    new_folder,
    one_line,
    parse_args,
    parse_pairs,
    quiet_logs,
    reading,
    unknown_keys,
)
from mmpr.errors import EXIT_NOTHING_MADE, NothingMade, UserError
from mmpr.io import atomic_path, atomic_write_text
from mmpr.locations import check_out, check_server
from mmpr.model_ref import check_model, resolve_model
from mmpr.prompts import get_template

TASKS_DIR = Path(__file__).parent / "tasks"
# short name -> (task folder, task name per prompt style)
BENCHMARKS = {
    "mathvista": ("mathvista", {"cot": "mmpr_mathvista_testmini_cot", "direct": "mmpr_mathvista_testmini_direct"}),
    "mathvision": ("mathvision", {"cot": "mmpr_mathvision_testmini_cot"}),
    "pope": ("pope", {"cot": "mmpr_pope_cot"}),
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
    engine_failures: dict[str, int] = Field(default_factory=dict, description="Requests the engine failed on, by "
                                            "cause; scored as empty answers here, asked again on a rerun.")


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
                "pope": scoring.POPE_FIELDS + ("image",)}
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


def check_selection(benchmarks: list[str], prompt: str) -> None:
    """Every benchmark known and having ``prompt``; else a :class:`UserError` listing what there is."""
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise UserError(f"unknown benchmark {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}")
    for b in benchmarks:
        if prompt not in BENCHMARKS[b][1]:
            raise UserError(f"{b} has no {prompt!r} prompt; it has {', '.join(BENCHMARKS[b][1])}")


def evaluate(benchmarks: list[str], model: str, *, engine: str = "hf", prompt: str = "cot", limit: int | None = None,
             out: Path, data: dict[str, str] | None = None, judge: str | None = None,
             engine_args: dict | None = None, batch_size: int = 16, engine_instance=None) -> RunResult:
    """Run ``benchmarks`` through lmms-eval; write ``results.json`` and ``samples_<task>.jsonl`` to ``out``."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager, get_task_dict

    from evals.models import MmprModel

    check_selection(benchmarks, prompt)
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
    return _write(raw, benchmarks, task_names, model, engine, prompt, limit, out, data or {}, judge,
                  dict(lm.failures))


def _write(raw: dict, benchmarks, task_names, model, engine, prompt, limit, out: Path, data: dict,
           judge: str | None, failures: dict[str, int] | None = None) -> RunResult:
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
                       limit=limit, tasks=tasks, engine_failures=failures or {})
    atomic_write_text(out / "results.json", result.model_dump_json(indent=2) + "\n")
    return result


def _response(sample: dict) -> str:
    resps = sample.get("resps") or [[""]]
    first = resps[0]
    return first[0] if isinstance(first, list) else first


def _same_run(model: str):
    """An --out that holds this model's results (or only a killed run's cache) is this job's: a resume."""
    def same(out: Path) -> bool:
        results = out / "results.json"
        if not results.is_file():
            return (out / "cache").is_dir() and all(p.name in ("cache", "eval.log") for p in out.iterdir())
        try:
            return json.loads(results.read_text()).get("model") == model
        except (OSError, ValueError):
            return False
    return same


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file whose keys are the flag names; flags override it")
    parser.add_argument("--tasks", required=True, help=f"comma-separated: {', '.join(BENCHMARKS)}")
    parser.add_argument("--model", required=True, help="model path, Hub id, or tiny:<family>")
    parser.add_argument("--engine", choices=["vllm", "hf"], default="hf", help="vllm (GPU) or hf (transformers)")
    parser.add_argument("--prompt", choices=["cot", "direct"], default="cot")
    parser.add_argument("--limit", type=int, help="first N samples of each benchmark")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--data", action="extend", nargs="+", default=[], metavar="BENCHMARK=PATH",
                        help="a local copy of a benchmark (parquet file/folder or save_to_disk folder)")
    parser.add_argument("--judge", help="OpenAI-compatible URL (e.g. http://127.0.0.1:8000/v1): only the unparsable "
                        "answers are sent to it; the judge-free score is reported as well")
    parser.add_argument("--engine-args", "--engine-arg", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="engine arguments, e.g. tensor_parallel_size=2 max_model_len=8192")
    parser.add_argument("--batch-size", type=int, default=16)
    add_output_arguments(parser)
    parser.epilog = f"YAML keys: {', '.join(flag_keys(parser))}\n\n{EXIT_CODES}"
    return parser


def check_parquet(path: Path, what: str) -> None:
    """A missing path, a parquet file there that is not one, or no rows at all fail before anything loads."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise UserError(f"{what}: no such file or folder; check the path")
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    rows = 0
    for file in files:
        try:
            rows += pq.read_metadata(file).num_rows
        except Exception as e:  # pyarrow's errors for a torn or foreign file
            raise UserError(f"{what}: {file} cannot be read as parquet ({one_line(e)[:200]}); re-download it") \
                from e
    if files and rows == 0:
        raise NothingMade(f"{what}: 0 samples in {path}; nothing to evaluate")


@front_door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    check_selection(tasks, args.prompt)
    data = parse_pairs(args.data, "--data", typed=False)
    unknown_keys(data, tasks, "--data")
    for name, path in data.items():
        check_parquet(Path(path).expanduser(), f"--data {name}={path}")
    engine_args = parse_pairs(args.engine_args, "--engine-args")
    import lmms_eval.models  # noqa: F401 - it points loguru at stdout when imported; quiet_logs undoes that

    check_model(args.model)  # a missing model is one line here, not a Hub retry later
    if args.judge:
        check_server(args.judge.rstrip("/") + "/models", "--judge")
    check_out(args.out, marker="this model's evaluation", same_job=_same_run(args.model), overwrite=args.overwrite)
    quiet_logs(args.verbose, Path(args.out) / "eval.log")
    with new_folder(args.out, only=UserError):
        with reading("a benchmark's data", "check --data or re-download it"):
            result = evaluate(tasks, args.model, engine=args.engine, prompt=args.prompt, limit=args.limit,
                              out=args.out, data=data, judge=args.judge, engine_args=engine_args,
                              batch_size=args.batch_size)
        if not any(task.total for task in result.tasks.values()):
            raise NothingMade(f"0 samples scored for {', '.join(tasks)}; check --data and --limit")
    for name, task in result.tasks.items():
        judge_note = f", {task.accuracy_with_judge:.2f} with the judge on {task.judged}" if task.judged else ""
        print(f"{name}: {task.accuracy:.2f} ({task.correct}/{task.total}), unparsable {task.unparsable_rate:.1f}%"
              f"{judge_note}")
    print(f"results in {args.out / 'results.json'}")
    if result.engine_failures:
        causes = ", ".join(f"{k} {v}" for k, v in sorted(result.engine_failures.items()))
        print(f"error: the engine failed on {sum(result.engine_failures.values())} samples ({causes}), scored as "
              f"empty answers; rerun the same command to ask again", file=sys.stderr)
        return EXIT_NOTHING_MADE
    return 0


if __name__ == "__main__":
    sys.exit(main())
