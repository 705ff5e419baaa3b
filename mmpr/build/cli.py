"""``python -m mmpr.build``: questions -> sampled CoT answers -> judged -> preference pairs -> a versioned dataset.

Questions with a ground truth (outside the categories whose rule-based checks are unreliable) get
correctness and format pairs; the others get Dropout next-token-prediction pairs. The run is resumable: kill
it at any point and rerun the same command; it finishes with exactly the pairs an uninterrupted run gives.

Examples::

    # CPU, no hub: the shipped sample and a tiny model built on first use
    python -m mmpr.build --model tiny:qwen2_vl --sources sample --out runs/demo --n 8 --max-tokens 64

    # GPU: Qwen2-VL-2B on ScienceQA and ChartQA, the paper's sampling, published to the Hub
    python -m mmpr.build --model Qwen/Qwen2-VL-2B-Instruct --sources scienceqa chartqa --out runs/qwen2vl-mmpr \\
        --engine-args tensor_parallel_size=1 --push --repo-id my-org/mmpr-qwen2vl

    # the same from a YAML file: its keys are the flag names, which are BuildConfig's fields (configs/build/*.yaml);
    # flags and KEY=VALUE settings (named as the flags) override it
    python -m mmpr.build --config configs/build/qwen2vl_scienceqa_chartqa.yaml max_tokens=2048 sampling.n=16

    # a Ray cluster: 8 engine replicas of one GPU each (--out on storage every node sees)
    python -m mmpr.build --config build.yaml --runner ray --ray-address auto --replicas 8 --replica-gpus 1

    # the same with sampling on ray.data.llm's vLLM processor: 8 replicas of 2 GPUs each (tensor parallel)
    python -m mmpr.build --config build.yaml --engine ray-llm --ray-address auto --replicas 8 \\
        --engine-args tensor_parallel_size=2

    # several machines: one shard each, then merge
    python -m mmpr.build --config build.yaml --shard 0/4 --out runs/shard0
    python -m mmpr.build merge runs/shard0 runs/shard1 runs/shard2 runs/shard3 --out runs/merged
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmpr import hub
from mmpr.build.config import BuildConfig
from mmpr.build.executor import ClusterOptions, executor_for
from mmpr.build.runner import LOG_FILE, check_folders, merge, run
from mmpr.build.summary import BuildSummary
from mmpr.cli import EXIT_CODES, ArgumentParser, add_output_arguments, front_door, quiet_logs
from mmpr.errors import NothingMade, UserError
from mmpr.images import add_max_pixels_argument, set_max_pixels
from mmpr.settings import (
    add_field_flags,
    add_settings_argument,
    flag_keys,
    parse_args,
    parse_pairs,
    positive_int,
    settings_error,
    unknown_keys,
    values_of,
)
from mmpr.sources import SourceSpec, available_sources
from mmpr.store import WORK_DIR


def _source_spec(spec: str | dict) -> dict:
    if isinstance(spec, dict):
        return spec
    name, _, path = spec.partition("=")
    return {"name": name, **({"path": path} if path else {})}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m mmpr.build", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML file whose keys are the flag names below (engine_args, "
                   "max_tokens, ...; the sampling settings also as a mapping `sampling:`); flags given on the "
                   "command line override it")
    add_settings_argument(p)
    add_field_flags(p, BuildConfig, "model")
    p.add_argument("--sources", nargs="+", metavar="NAME[=PATH]", help="registered sources, optionally with a "
                   "Hub id / folder / file each (see --list-sources); in YAML also mappings with columns, split...")
    p.add_argument("--limit", type=positive_int, help="at most this many questions per source")
    add_field_flags(p, BuildConfig, "out", "engine")
    p.add_argument("--engine-args", "--engine-arg", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="engine arguments, e.g. tensor_parallel_size=2 max_model_len=8192 "
                        "endpoints=http://h1:8000/v1,http://h2:8000/v1 (a mapping in YAML)")
    add_field_flags(p, BuildConfig, "prompt", "sampling", "max_pairs_per_question", "dropout_ntp_ratio")
    add_field_flags(p, BuildConfig, "correctness_skip_categories", nargs="*", metavar="CATEGORY")
    add_field_flags(p, BuildConfig, "batch_size", "shard")
    p.add_argument("--runner", default="local",
                   help="local: this process (default); ray: a Ray Data pipeline on a Ray cluster, the engine "
                        "(--engine) in each replica. Both write the same dataset (pip install 'mmpr[ray]' for ray "
                        "and --engine ray-llm, which brings its own runner); ray-llm is the old spelling of "
                        "--engine ray-llm")
    p.add_argument("--ray-address", help="ray runner and --engine ray-llm: the cluster to join (auto, or "
                   "host:port); default: a Ray instance started on this machine")
    p.add_argument("--replicas", type=int, default=1, help="ray runner and --engine ray-llm: engine replicas "
                   "(default 1)")
    p.add_argument("--replica-cpus", type=float, default=1.0, help="ray runner: CPUs per replica (default 1)")
    p.add_argument("--replica-gpus", type=float, default=0.0,
                   help="ray runner: GPUs per replica, e.g. the engine's tensor_parallel_size (default 0)")
    p.add_argument("--chunks-per-wave", type=int, default=16,
                   help="--engine ray-llm: chunks per pass through the processor; each pass starts its engines and "
                        "a killed run redoes only the wave in flight (default 16)")
    add_field_flags(p, BuildConfig, "name", "version", "release_out")
    p.add_argument("--list-sources", action="store_true", help="list the registered sources and exit")
    add_max_pixels_argument(p)
    add_output_arguments(p)
    hub.add_push_arguments(p)
    p.epilog = f"YAML keys: {', '.join(flag_keys(p))}\n\n{EXIT_CODES}"
    return p


def parse_build_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags and the ``--config`` file of a build, old key names included (:data:`BuildConfig.RENAMED`)."""
    return parse_args(build_parser(), argv, model=BuildConfig, aliases=BuildConfig.RENAMED)


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    """The :class:`BuildConfig` the flags (and the ``--config`` keys merged into them) describe."""
    data: dict[str, Any] = values_of(args, BuildConfig)
    data["engine_args"] = parse_pairs(args.engine_args or [], "--engine-args")
    if args.sources:
        data["sources"] = [_source_spec(s) for s in args.sources]
        for spec in data["sources"]:
            unknown_keys(spec, SourceSpec.model_fields, f"source {spec.get('name', '?')}")
        if args.limit is not None:
            data["sources"] = [{**s, "limit": args.limit} for s in data["sources"]]
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as e:
        where = str(args.config) if getattr(args, "config", None) else "command line"
        raise UserError(settings_error(e, where, origins=getattr(args, "origins", None))) from e


def _check_result(summary: BuildSummary) -> None:
    if sum(summary.pairs.values()):
        return
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.counts.items())) or "no question gave a pair"
    outcomes: dict[str, int] = {}
    for stats in summary.sources.values():
        for k, v in stats.outcomes.items():
            outcomes[k] = outcomes.get(k, 0) + v
    detail = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    examples: dict[str, str] = {}
    for problem in summary.skipped.items:  # the first of each kind, with its file and line
        examples.setdefault(problem.code, str(problem))
    first = f"; first: {' | '.join(examples.values())}" if examples else ""
    raise NothingMade(f"0 pairs from {summary.questions} questions ({detail or 'none read'}; skipped: {reasons}"
                      f"{first}); no dataset written; check the sources and --max-tokens")


def _runner_ray_llm(args: argparse.Namespace) -> None:
    """``--runner ray-llm`` is the old spelling of ``--engine ray-llm``: said once, then run as that."""
    if args.runner != "ray-llm":
        return
    print("warning: --runner ray-llm is deprecated; use --engine ray-llm", file=sys.stderr, flush=True)
    if args.engine not in (None, "vllm", "ray-llm"):
        raise UserError(f"--runner ray-llm samples with ray.data.llm's vLLM processor (--engine ray-llm); "
                        f"--engine {args.engine} runs on --runner ray")
    args.engine, args.runner = "ray-llm", "local"


@front_door
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "merge":
        return merge_main(argv[1:])
    args = parse_build_args(argv)
    if args.list_sources:
        for name, description in available_sources().items():
            print(f"{name:<12} {description}")
        return 0
    hub.check_push_arguments(args)
    set_max_pixels(args.max_image_pixels)
    _runner_ray_llm(args)
    cfg = config_from_args(args)
    executor = executor_for(cfg.engine, args.runner, ClusterOptions(
        address=args.ray_address, replicas=args.replicas, cpus_per_replica=args.replica_cpus,
        gpus_per_replica=args.replica_gpus, chunks_per_wave=args.chunks_per_wave))
    if not args.overwrite:  # a refused folder gets no log file; --overwrite empties it in the runner, after its checks
        check_folders(cfg)
    quiet_logs(args.verbose, Path(cfg.out) / WORK_DIR / LOG_FILE)
    summary = run(cfg, executor=executor, overwrite=args.overwrite, check=_check_result)
    print(summary.render())
    if getattr(summary, "failed_chunks", None):
        return 1
    if cfg.shard != "0/1":
        print(f"shard {cfg.shard} done; join the shards with: python -m mmpr.build merge <shard folders> --out DIR")
        return 0
    print(f"dataset written to {cfg.out}")
    if args.push:
        return hub.push_from_args(args, cfg.out)
    return 0


def merge_main(argv: list[str]) -> int:
    p = ArgumentParser(prog="python -m mmpr.build merge", description="Join shard builds into one "
                       "versioned dataset.", epilog=EXIT_CODES)
    p.add_argument("shards", nargs="+", type=Path, help="the --out folders of the shard runs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name")
    p.add_argument("--version")
    add_output_arguments(p)
    hub.add_push_arguments(p)
    args = p.parse_args(argv)
    hub.check_push_arguments(args)
    quiet_logs(args.verbose)
    summary = merge(args.shards, args.out, name=args.name, version=args.version, overwrite=args.overwrite)
    _check_result(summary)
    print(summary.render())
    print(f"dataset written to {args.out}")
    if args.push:
        return hub.push_from_args(args, args.out)
    return 0
