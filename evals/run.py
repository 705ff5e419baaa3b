"""``python -m evals.run``: chain-of-thought evaluation through lmms-eval, judge-free and reproducible.

Examples::

    # offline, CPU: a tiny model on a local copy of MathVista testmini (a parquet file or folder)
    python -m evals.run --tasks mathvista --model tiny:qwen2_vl --engine hf --limit 8 \\
        --data mathvista=~/data/mathvista_testmini.parquet --out runs/eval-tiny
    # GPU: the paper's judge-free benchmarks, then the reasoning suite, for InternVL2-8B (and again for -MPO)
    python -m evals.run --tasks paper --model OpenGVLab/InternVL2-8B --engine vllm \\
        --engine-args trust_remote_code=true --out runs/paper-InternVL2-8B
    python -m evals.run --tasks reasoning --model OpenGVLab/InternVL2-8B --engine vllm \\
        --engine-args trust_remote_code=true --out runs/reasoning-InternVL2-8B
    python -m evals.compare runs/paper-InternVL2-8B runs/paper-InternVL2-8B-MPO --out runs/compare

--prompt picks cot (the paper's), direct, or reasoning (<think>/<answer>); results.json records it.
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

from evals import registry
from evals.prompting import PROMPT_STYLES, template_text
from evals.registry import Benchmark
from evals.scoring import MissingField
from mmpr.cli import (
    EXIT_CODES,
    ArgumentParser,
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

TASKS_DIR = Path(__file__).parent / "tasks"


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
    unscorable: int = Field(default=0, description="Samples of items whose ground truth cannot be judged (e.g. it "
                            "names none of the options); counted wrong, listed in unscorable_items.")
    unscorable_items: dict[str, str] = Field(default_factory=dict, description="doc_id -> why it is unscorable.")
    judged: int = Field(default=0, description="Unparsable answers sent to the --judge (0 without one).")
    accuracy_with_judge: float | None = None
    headline: str = Field(default="accuracy", description="Which score the benchmark reports: 'accuracy' or a key "
                          "of metrics (DynaMath's worst_case, WeMath's strict).")
    score: float | None = Field(default=None, description="The headline score, percent; None when the samples "
                                "evaluated cannot give it.")
    metrics: dict[str, float] = Field(default_factory=dict, description="The benchmark's own scores beyond "
                                      "per-sample accuracy, and their counts.")
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


def task_yaml(bench: Benchmark, prompt: str, data: str | None = None, max_new_tokens: int | None = None) -> str:
    """The lmms-eval task for ``bench`` under ``prompt``, reading the Hub dataset or ``data``: a parquet file or
    folder of parquet files, or a folder written by ``save_to_disk``."""
    config: dict[str, Any] = {"task": bench.task_name(prompt)}
    if data is None:
        config["dataset_path"] = bench.dataset
        if bench.dataset_name:
            config["dataset_name"] = bench.dataset_name
    else:
        path = Path(data).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"--data {bench.name}={data}: no such file or folder")
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            config |= {"dataset_path": str(path), "dataset_kwargs": {"load_from_disk": True}}
        else:
            files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob("*.parquet"))
            if not files:
                raise FileNotFoundError(f"--data {bench.name}={data}: no parquet files there")
            config |= {"dataset_path": "parquet", "dataset_kwargs": {"data_files": {bench.split: files}}}
    config |= {"test_split": bench.split, "output_type": "generate_until",
               "generation_kwargs": {"max_new_tokens": max_new_tokens or bench.max_new_tokens[prompt], "temperature": 0,
                                     "do_sample": False},
               "lmms_eval_specific_kwargs": {"default": {"prompt": prompt}}, "metadata": {"version": 1.0}}
    functions = {"doc_to_visual": "doc_to_visual", "doc_to_text": "doc_to_text", "doc_to_target": "doc_to_target",
                 "process_results": f"process_results_{prompt}"}
    metrics = ("  - metric: accuracy\n    aggregation: !function utils.accuracy\n    higher_is_better: true\n"
               "  - metric: unparsable\n    aggregation: !function utils.unparsable\n    higher_is_better: false\n")
    return (yaml.safe_dump(config, sort_keys=False) + "".join(f"{k}: !function utils.{v}\n" for k, v in
                                                               functions.items()) + "metric_list:\n" + metrics)


def _check_fields(task_dict: dict, benches: list[Benchmark], prompt: str) -> None:
    """A dataset missing a field the task needs fails before any generation, naming the field."""
    for bench in benches:
        task = task_dict[bench.task_name(prompt)]
        columns = task.dataset[bench.split].column_names
        missing = [f for f in bench.fields if f not in columns]
        if missing:
            raise MissingField(f"{bench.task_name(prompt)}: the dataset has no field {', '.join(missing)} (it has "
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


def check_selection(benchmarks: list[str] | str, prompt: str) -> list[Benchmark]:
    """The benchmarks named (names and presets), each having ``prompt``; else a :class:`UserError` listing what
    there is."""
    benches = registry.resolve(benchmarks)
    if prompt not in PROMPT_STYLES:
        raise UserError(f"unknown prompt {prompt!r}; available: {', '.join(PROMPT_STYLES)}")
    for bench in benches:
        if prompt not in bench.prompts:
            raise UserError(f"{bench.name} has no {prompt!r} prompt; it has {', '.join(bench.prompts)}")
    return benches


def check_data(benches: list[Benchmark], data: dict[str, str]) -> None:
    """--data names only benchmarks selected, and every local-only benchmark (no Hub dataset) has its file."""
    unknown_keys(data, [b.name for b in benches], "--data")
    local = [b.name for b in benches if not b.dataset and b.name not in data]
    if local:
        raise UserError(f"{local[0]} has no Hub dataset; name its file with --data {local[0]}=PATH")


def evaluate(benchmarks: list[str] | str, model: str, *, engine: str = "hf", prompt: str = "cot",
             limit: int | None = None, out: Path, data: dict[str, str] | None = None, judge: str | None = None,
             engine_args: dict | None = None, batch_size: int = 16, engine_instance=None,
             max_new_tokens: int | None = None) -> RunResult:
    """Run ``benchmarks`` (names and presets) through lmms-eval; write ``results.json`` and
    ``samples_<task>.jsonl`` to ``out``. ``max_new_tokens`` overrides each benchmark's budget for the prompt."""
    benches = check_selection(benchmarks, prompt)
    check_data(benches, data or {})
    for name, path in (data or {}).items():
        if not Path(path).expanduser().exists():
            raise UserError(f"--data {name}={path}: no such file or folder")
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager, get_task_dict

    from evals.models import MmprModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    task_names = [b.task_name(prompt) for b in benches]
    resolved = resolve_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(tmp)
        for bench in benches:
            folder = include / bench.name
            shutil.copytree(TASKS_DIR / bench.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
            (folder / f"{bench.task_name(prompt)}.yaml").write_text(
                task_yaml(bench, prompt, (data or {}).get(bench.name), max_new_tokens))
        manager = TaskManager("WARNING", include_path=str(include), include_defaults=False)
        task_dict = get_task_dict(task_names, manager)
        _check_fields(task_dict, benches, prompt)
        lm = MmprModel(resolved, engine=engine, cache_dir=out / "cache", batch_size=batch_size,
                       engine_args=engine_args, engine_instance=engine_instance)
        # the tasks already built (their datasets loaded once)
        raw = simple_evaluate(model=lm, tasks=[task_dict[name] for name in task_names], limit=limit,
                              log_samples=True, task_manager=manager,
                              verbosity="WARNING", random_seed=0, numpy_random_seed=0, torch_random_seed=0)
    return _write(raw, benches, prompt, model, engine, limit, out, data or {}, judge, dict(lm.failures))


def _write(raw: dict, benches: list[Benchmark], prompt: str, model: str, engine: str, limit: int | None, out: Path,
           data: dict, judge: str | None, failures: dict[str, int] | None = None) -> RunResult:
    from evals.judge import judge_unparsable
    from evals.models import MmprModel

    tasks = {}
    for bench in benches:
        task = bench.task_name(prompt)
        records = [{**s["accuracy"], "response": _response(s)} for s in raw["samples"][task]]
        judged, with_judge = judge_unparsable(records, judge) if judge else (0, None)
        with atomic_path(out / f"samples_{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        correct = sum(r["correct"] for r in records)
        unparsable = sum(not r["parsable"] for r in records)
        total = len(records)
        unscorable = {str(r["doc_id"]): r.get("problem") or "" for r in records if not r.get("scorable", True)}
        summarize = getattr(bench.utils(), "summarize", None)
        metrics = summarize(records) if summarize else {}
        accuracy = round(100 * correct / max(total, 1), 2)
        tasks[bench.name] = TaskResult(
            benchmark=bench.name, task=task, accuracy=accuracy, correct=correct, total=total,
            unparsable=unparsable, unparsable_rate=round(100 * unparsable / max(total, 1), 2),
            unscorable=len(unscorable), unscorable_items=unscorable, judged=judged,
            accuracy_with_judge=with_judge, categories=_breakdown(records),
            headline=bench.headline,
            # None when nothing it needs was evaluated (e.g. --limit cut every WeMath problem short)
            score=accuracy if bench.headline == "accuracy" else metrics.get(bench.headline),
            metrics=metrics, dataset=data.get(bench.name) or raw["configs"][task].get("dataset_path"),
            dataset_revision=(raw["configs"][task].get("dataset_kwargs") or {}).get("revision"))
    # the settings the engine applied (greedy unless the task samples; stop strings are not used: CoT answers span
    # paragraphs)
    generation = {b.task_name(prompt): MmprModel.sampling(raw["configs"][b.task_name(prompt)].get(
        "generation_kwargs", {})).model_dump() for b in benches}
    result = RunResult(model=model, engine=engine, prompt=prompt, prompt_template=template_text(prompt),
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
    parser = ArgumentParser(prog="python -m evals.run", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file whose keys are the flag names; flags override it")
    parser.add_argument("--tasks", required=True, help=f"comma-separated benchmarks ({', '.join(registry.BENCHMARKS)}) "
                        f"and presets ({'; '.join(f'{k}: {chr(44).join(v)}' for k, v in registry.PRESETS.items())})")
    parser.add_argument("--model", required=True, help="model path, Hub id, or tiny:<family>")
    parser.add_argument("--engine", choices=["vllm", "hf"], default="hf", help="vllm (GPU) or hf (transformers)")
    parser.add_argument("--prompt", choices=PROMPT_STYLES, default="cot",
                        help="cot: the paper's CoT prompt; direct: short answers; reasoning: <think>/<answer> format")
    parser.add_argument("--limit", type=int, help="first N samples of each benchmark")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--data", action="extend", nargs="+", default=[], metavar="BENCHMARK=PATH",
                        help="a local copy of a benchmark (parquet file/folder or save_to_disk folder)")
    parser.add_argument("--judge", help="OpenAI-compatible URL (e.g. http://127.0.0.1:8000/v1): only the unparsable "
                        "answers are sent to it; the judge-free score is reported as well")
    parser.add_argument("--engine-args", "--engine-arg", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="engine arguments, e.g. tensor_parallel_size=2 max_model_len=8192")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, help="override every benchmark's generation budget (recorded "
                        "in results.json; quick CPU checks only: CoT answers need the default)")
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
    benches = check_selection(args.tasks, args.prompt)
    tasks = [b.name for b in benches]
    data = parse_pairs(args.data, "--data", typed=False)
    check_data(benches, data)
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
                              batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        if not any(task.total for task in result.tasks.values()):
            raise NothingMade(f"0 samples scored for {', '.join(tasks)}; check --data and --limit")
    for name, task in result.tasks.items():
        judge_note = f", {task.accuracy_with_judge:.2f} with the judge on {task.judged}" if task.judged else ""
        if task.unscorable:
            print(f"{name}: {task.unscorable} unscorable samples (counted wrong): "
                  f"{', '.join(f'{k}: {v}' for k, v in list(task.unscorable_items.items())[:5])}", file=sys.stderr)
        extra = "".join(f", {k} {v:.2f}" for k, v in task.metrics.items() if k in ("worst_case", "loose", "strict"))
        print(f"{name}: {task.accuracy:.2f} ({task.correct}/{task.total}){extra}, unparsable "
              f"{task.unparsable_rate:.1f}%{judge_note}")
    print(f"results in {args.out / 'results.json'}")
    if result.engine_failures:
        causes = ", ".join(f"{k} {v}" for k, v in sorted(result.engine_failures.items()))
        print(f"error: the engine failed on {sum(result.engine_failures.values())} samples ({causes}), scored as "
              f"empty answers; rerun the same command to ask again", file=sys.stderr)
        return EXIT_NOTHING_MADE
    return 0


if __name__ == "__main__":
    sys.exit(main())
