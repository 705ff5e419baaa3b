"""``python -m evals.run``: chain-of-thought evaluation through lmms-eval, judge-free and reproducible.

Examples::

    # offline, CPU: a tiny model on a local copy of MathVista testmini (a parquet file or folder)
    python -m evals.run --tasks mathvista --model tiny:qwen2_vl --engine transformers --limit 8 \\
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

from evals import registry, task_utils
from evals.prompting import STYLES, template_text
from evals.registry import Benchmark
from evals.results import CategoryScore, Interval, RunResult, TaskResult
from evals.sampling import sampled_scores
from evals.scoring import MissingField
from evals.thinking import for_scoring, thinking_stats
from evals.uncertainty import headline_interval
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs, reading
from mmpr.errors import EXIT_NOTHING_MADE, NothingMade, UserError, one_line
from mmpr.images import add_max_pixels_argument, set_max_pixels
from mmpr.io import atomic_path, atomic_write_text
from mmpr.locations import check_inputs_apart, check_out, check_server, new_folder
from mmpr.model_ref import check_model, resolve_model
from mmpr.problems import ProblemLog
from mmpr.settings import flag_keys, parse_args, parse_pairs, positive_int, unknown_keys

# benchmarks with a judged protocol scored beside the judge-free headline when --judge is given
JUDGED_PROTOCOLS = ("mathvista",)


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
                 "process_results": f"process_results_{prompt}", "process_docs": "process_docs"}
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
    if not benches:
        raise UserError(f"--tasks {benchmarks!r}: names no benchmark; give one or more of "
                        f"{', '.join(registry.BENCHMARKS)} or a preset ({', '.join(registry.PRESETS)})")
    STYLES.canonical(prompt)
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


def evaluate(benchmarks: list[str] | str, model: str, *, engine: str = "transformers", prompt: str = "cot",
             limit: int | None = None, out: Path, data: dict[str, str] | None = None, judge: str | None = None,
             engine_args: dict | None = None, batch_size: int = 16, engine_instance=None,
             max_new_tokens: int | None = None, samples: int = 0, temperature: float = 1.0,
             strip_thinking: bool = False, judge_model: str | None = None) -> RunResult:
    """Run ``benchmarks`` (names and presets) through lmms-eval; write ``results.json`` and
    ``samples_<task>.jsonl`` to ``out``. ``max_new_tokens`` overrides each benchmark's budget for the prompt;
    ``samples`` > 0 also draws that many answers per item at ``temperature`` for avg@k / pass@k / majority@k."""
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
            shutil.copytree(bench.task_dir(), folder, ignore=shutil.ignore_patterns("__pycache__"))
            (folder / f"{bench.task_name(prompt)}.yaml").write_text(
                task_yaml(bench, prompt, (data or {}).get(bench.name), max_new_tokens))
        manager = TaskManager("WARNING", include_path=str(include), include_defaults=False)
        task_utils.SKIPPED.clear()
        task_dict = get_task_dict(task_names, manager)
        _check_fields(task_dict, benches, prompt)
        lm = MmprModel(resolved, engine=engine, cache_dir=out / "cache", batch_size=batch_size,
                       engine_args=engine_args, engine_instance=engine_instance, samples=samples,
                       temperature=temperature, strip_thinking=strip_thinking, style=prompt)
        # the tasks already built (their datasets loaded once)
        raw = simple_evaluate(model=lm, tasks=[task_dict[name] for name in task_names], limit=limit,
                              log_samples=True, task_manager=manager,
                              verbosity="WARNING", random_seed=0, numpy_random_seed=0, torch_random_seed=0)
        sampled = {b.task_name(prompt): _score_samples(b, prompt, task_dict[b.task_name(prompt)], lm.sampled)
                   for b in benches} if samples else {}
    return _write(raw, benches, prompt, model, lm.engine_name, limit, out, data or {}, judge, dict(lm.failures),
                  raw_responses=lm.raw, sampled=sampled, temperature=temperature, strip_thinking=strip_thinking,
                  judge_model=judge_model)


def _score_samples(bench: Benchmark, prompt: str, task, answers: dict[tuple[str, int], list[str]]) -> dict:
    """lmms-eval doc index -> the scored records of its sampled answers, by the task's own process_results."""
    name = bench.task_name(prompt)
    process = getattr(bench.utils(), f"process_results_{prompt}")
    docs = task.dataset[bench.split]
    return {index: [process(docs[index], [text])["accuracy"] for text in texts]
            for (task_name, index), texts in answers.items() if task_name == name and texts}


def _write(raw: dict, benches: list[Benchmark], prompt: str, model: str, engine: str, limit: int | None, out: Path,
           data: dict, judge: str | None, failures: dict[str, int] | None = None, *,
           raw_responses: dict[tuple[str, int], str] | None = None, sampled: dict[str, dict] | None = None,
           temperature: float = 1.0, strip_thinking: bool = False, judge_model: str | None = None) -> RunResult:
    from evals.judge import judge_unparsable
    from evals.judged import Judge, judge_records, write_table
    from evals.models import MmprModel

    tasks = {}
    judged_protocol = None
    for bench in benches:
        task = bench.task_name(prompt)
        records = []
        for s in raw["samples"][task]:
            response = (raw_responses or {}).get((task, s.get("doc_id")), _response(s))
            _, think_chars, unclosed = for_scoring(response, strip=strip_thinking, style=prompt)
            records.append({**s["accuracy"], "response": response, "think_chars": think_chars,
                            "think_unclosed": unclosed})
        judged, with_judge = judge_unparsable(records, judge, model=judge_model) if judge else (0, None)
        comparison = None
        if judge and bench.name in JUDGED_PROTOCOLS:
            judged_protocol = judged_protocol or Judge(judge, out / "cache" / "judge.jsonl", model=judge_model)
            comparison = judge_records(records, judged_protocol, judge_model=judged_protocol.model)
            write_table(comparison, out / f"judged_{task}.md", bench.name)
        with atomic_path(out / f"samples_{task}.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        correct = sum(r["correct"] for r in records)
        unparsable = sum(not r["parsable"] for r in records)
        total = len(records)
        unscorable = {str(r["doc_id"]): r.get("problem") or "" for r in records if not r.get("scorable", True)}
        skipped = {p.file: f"{p.message} ({p.code})" for p in task_utils.SKIPPED.get(bench.name, ProblemLog()).items}
        summarize = getattr(bench.utils(), "summarize", None)
        metrics = summarize(records) if summarize else {}
        accuracy = round(100 * correct / max(total, 1), 2)
        # None when nothing it needs was evaluated (e.g. --limit cut every WeMath problem short)
        score = accuracy if bench.headline == "accuracy" else metrics.get(bench.headline)
        per_item = [v for s in raw["samples"][task] if (v := (sampled or {}).get(task, {}).get(s.get("doc_id")))]
        tasks[bench.name] = TaskResult(
            benchmark=bench.name, task=task, accuracy=accuracy, correct=correct, total=total,
            unparsable=unparsable, unparsable_rate=round(100 * unparsable / max(total, 1), 2),
            unscorable=len(unscorable), unscorable_items=unscorable, skipped=len(skipped), skipped_items=skipped,
            judged=judged, judge_failures=sum(bool(r.get("judge_failed")) for r in records),
            accuracy_with_judge=with_judge, categories=_breakdown(records),
            headline=bench.headline, score=score,
            interval=headline_interval(bench, records) if score is not None and total else None,
            metrics=metrics, sampled=sampled_scores(per_item, temperature) if per_item else None,
            judge_comparison=comparison, thinking=thinking_stats(records, strip_thinking),
            dataset=data.get(bench.name) or raw["configs"][task].get("dataset_path"),
            dataset_revision=(raw["configs"][task].get("dataset_kwargs") or {}).get("revision"))
    # the settings the engine applied (greedy unless the task samples; stop strings are not used: CoT answers span
    # paragraphs)
    generation = {b.task_name(prompt): MmprModel.sampling(raw["configs"][b.task_name(prompt)].get(
        "generation_kwargs", {})).model_dump() for b in benches}
    result = RunResult(model=model, engine=engine, prompt=prompt, prompt_template=template_text(prompt),
                       generation=generation, lmms_eval_version=version("lmms_eval"), created_at=datetime.now(UTC),
                       limit=limit, tasks=tasks, engine_failures=failures or {},
                       judge_failures=sum(t.judge_failures + (t.judge_comparison.judge_failures if
                                                               t.judge_comparison else 0) for t in tasks.values()))
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
    parser.add_argument("--engine", default="transformers",
                        help="transformers (default; hf is its old name) or vllm (GPU)")
    parser.add_argument("--prompt", default="cot", help="; ".join(f"{name}: {what}" for name, what in
                                                                 STYLES.describe().items()) + " (default cot)")
    parser.add_argument("--limit", type=positive_int, help="first N samples of each benchmark (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval"))
    parser.add_argument("--data", action="extend", nargs="+", default=[], metavar="BENCHMARK=PATH",
                        help="a local copy of a benchmark (parquet file/folder or save_to_disk folder)")
    parser.add_argument("--judge", help="OpenAI-compatible URL (e.g. http://127.0.0.1:8000/v1): the unparsable "
                        "answers are sent to it, and MathVista is also scored under its judged protocol (LLM "
                        "extraction, official comparison) beside the judge-free headline")
    parser.add_argument("--judge-model", help="the model name the --judge server serves (default: its first)")
    parser.add_argument("--samples", type=int, default=0, metavar="K",
                        help="also draw K answers per item at --temperature: avg@K (with its interval), pass@K and "
                        "majority@K beside the greedy score")
    parser.add_argument("--temperature", type=float, default=1.0, help="temperature of the --samples answers")
    parser.add_argument("--strip-thinking", action="store_true",
                        help="remove a <think>...</think> span before extraction; a block never closed is "
                        "unparsable (the think length is recorded either way)")
    parser.add_argument("--engine-args", "--engine-arg", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="engine arguments, e.g. tensor_parallel_size=2 max_model_len=8192")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--max-new-tokens", type=positive_int, help="override every benchmark's generation budget "
                        "(recorded in results.json; quick CPU checks only: CoT answers need the default)")
    add_max_pixels_argument(parser)
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
    set_max_pixels(args.max_image_pixels)
    from evals.models import eval_engine

    args.engine = eval_engine(args.engine)
    benches = check_selection(args.tasks, args.prompt)
    tasks = [b.name for b in benches]
    data = parse_pairs(args.data, "--data", typed=False)
    check_data(benches, data)
    for name, path in data.items():
        check_parquet(Path(path).expanduser(), f"--data {name}={path}")
    engine_args = parse_pairs(args.engine_args, "--engine-args")
    import lmms_eval.models  # noqa: F401 - it points loguru at stdout when imported; quiet_logs undoes that

    if args.samples < 0 or (args.samples and args.temperature <= 0):
        raise UserError(f"--samples {args.samples} --temperature {args.temperature}: K must be >= 0 and sampled "
                        "answers need a temperature above 0")
    check_model(args.model)  # a missing model is one line here, not a Hub retry later
    if args.judge:
        check_server(args.judge.rstrip("/") + "/models", "--judge")
    check_inputs_apart(args.out, [("--model", args.model), *((f"--data {k}", v) for k, v in data.items())])
    check_out(args.out, marker="this model's evaluation", same_job=_same_run(args.model), overwrite=args.overwrite)
    quiet_logs(args.verbose, Path(args.out) / "eval.log")
    with new_folder(args.out, only=UserError):
        with reading("a benchmark's data", "check --data or re-download it"):
            result = evaluate(tasks, args.model, engine=args.engine, prompt=args.prompt, limit=args.limit,
                              out=args.out, data=data, judge=args.judge, engine_args=engine_args,
                              batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                              samples=args.samples, temperature=args.temperature,
                              strip_thinking=args.strip_thinking, judge_model=args.judge_model)
        if not any(task.total for task in result.tasks.values()):
            raise NothingMade(f"0 samples scored for {', '.join(tasks)}; check --data and --limit")
    for name, task in result.tasks.items():
        if task.skipped:
            print(f"{name}: {task.skipped} items skipped (not scored): "
                  f"{', '.join(f'{k}: {v}' for k, v in list(task.skipped_items.items())[:5])}", file=sys.stderr)
        if task.unscorable:
            print(f"{name}: {task.unscorable} unscorable samples (counted wrong): "
                  f"{', '.join(f'{k}: {v}' for k, v in list(task.unscorable_items.items())[:5])}", file=sys.stderr)
        print(summary_line(name, task))
    print(f"results in {args.out / 'results.json'}")
    if result.judge_failures:
        print(f"error: the judge gave no usable reply for {result.judge_failures} items; their judged score is "
              f"withheld (listed under failed_items); rerun the same command to ask again", file=sys.stderr)
    if result.engine_failures:
        causes = ", ".join(f"{k} {v}" for k, v in sorted(result.engine_failures.items()))
        print(f"error: the engine failed on {sum(result.engine_failures.values())} samples ({causes}), scored as "
              f"empty answers; rerun the same command to ask again", file=sys.stderr)
    return EXIT_NOTHING_MADE if result.engine_failures or result.judge_failures else 0


def _span(interval: Interval | None) -> str:
    return f" [{interval.low:.1f}, {interval.high:.1f}]" if interval else ""


def summary_line(name: str, task: TaskResult) -> str:
    """One benchmark's result in a line: headline with its interval, counts, and what else was measured."""
    parts = [f"{name}: {task.accuracy:.2f}" + (_span(task.interval) if task.headline == "accuracy" else "") +
             f" ({task.correct}/{task.total})"]
    if task.headline != "accuracy":
        parts.append(f"{task.headline} " + ("-" if task.score is None else f"{task.score:.2f}") + _span(task.interval))
    parts += [f"{k} {task.metrics[k]:.2f}" for k in ("worst_case", "loose", "strict")
              if k in task.metrics and k != task.headline]
    parts.append(f"unparsable {task.unparsable_rate:.1f}%")
    if task.judged:
        parts.append(f"{task.accuracy_with_judge:.2f} with the judge on {task.judged}")
    if s := task.sampled:
        parts.append(f"avg@{s.k} {s.avg_at_k:.2f}{_span(s.avg_at_k_interval)}, pass@{s.k} {s.pass_at_k:.2f}, "
                     f"majority@{s.k} {s.majority_at_k:.2f} (T={s.temperature:g})")
    if c := task.judge_comparison:
        judged = "withheld" if c.judged is None else f"{c.judged:.2f}{_span(c.judged_interval)}"
        parts.append(f"judged {judged}, {len(c.differing)} items differ, {c.judge_failures} judge failures")
    if t := task.thinking:
        parts.append(f"{t.responses_with_thinking} think (mean {t.mean_think_chars:.0f} chars), {t.unclosed} "
                     "never closed")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
