"""``python -m mmpr.build``: questions -> sampled CoT answers -> judged -> preference pairs -> a versioned dataset.

Questions with a ground truth (outside the categories whose rule-based checks are unreliable) get
correctness and format pairs; the others get Dropout next-token-prediction pairs. The run is resumable: kill
it at any point and rerun the same command; it finishes with exactly the pairs an uninterrupted run gives.

Examples::

    # CPU, no hub: the shipped sample and a tiny model built on first use
    python -m mmpr.build --model tiny:qwen2_vl --sources sample --out runs/demo --n 8 --max-tokens 64

    # GPU: Qwen2-VL-2B on ScienceQA and ChartQA, the paper's sampling, published to the Hub
    python -m mmpr.build --model Qwen/Qwen2-VL-2B-Instruct --sources scienceqa chartqa --out runs/qwen2vl-mmpr \\
        --engine-arg tensor_parallel_size=1 --push --repo-id my-org/mmpr-qwen2vl

    # a Ray cluster: 8 engine replicas of one GPU each (--out on storage every node sees)
    python -m mmpr.build --config build.yaml --runner ray --ray-address auto --replicas 8 --replica-gpus 1

    # several machines: one shard each, then merge
    python -m mmpr.build --config build.yaml --shard 0/4 --out runs/shard0
    python -m mmpr.build merge runs/shard0 runs/shard1 runs/shard2 runs/shard3 --out runs/merged
"""


from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mmpr import hub
from mmpr.build.config import BuildConfig
from mmpr.build.runner import merge, run
from mmpr.engines import ENGINES
from mmpr.prompts import DEFAULT_TEMPLATE
from mmpr.sources import available_sources


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _source_spec(text: str) -> dict:
    name, _, path = text.partition("=")
    return {"name": name, **({"path": path} if path else {})}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mmpr.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML file with BuildConfig keys; flags override it")
    p.add_argument("--model", help="model path, Hub id, or tiny:qwen2_vl / tiny:llava / tiny:internvl")
    p.add_argument("--sources", nargs="+", metavar="NAME[=PATH]", help="registered sources, optionally with a "
                   "Hub id / folder / file each (see --list-sources)")
    p.add_argument("--limit", type=int, help="at most this many questions per source")
    p.add_argument("--out", type=Path, help="output folder: the dataset, plus its resumable work in .mmpr-work/")
    p.add_argument("--engine", choices=ENGINES)
    p.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="engine argument, e.g. tensor_parallel_size=2, max_model_len=8192, "
                        "endpoints=http://h1:8000/v1,http://h2:8000/v1 (repeatable)")
    p.add_argument("--prompt", help=f"prompt template (default {DEFAULT_TEMPLATE})")
    for flag, kind, helptext in [("--n", int, "responses per question (default 32)"),
                                 ("--temperature", float, "default 1.0"), ("--top-p", float, "default 1.0"),
                                 ("--top-k", int, "default 50; -1 disables"),
                                 ("--max-tokens", int, "new tokens per response (default 1024)"),
                                 ("--seed", int, "default 0")]:
        p.add_argument(flag, type=kind, help=helptext)
    p.add_argument("--max-pairs", type=int, help="pairs per question and kind (default 15)")
    p.add_argument("--ntp-ratio", type=float, help="DropoutNTP: share of the chosen words kept (default 0.5)")
    p.add_argument("--batch-size", type=int, help="questions per engine call and saved chunk (default 64)")
    p.add_argument("--shard", help="i/N: build the i-th of N disjoint parts (merge them with `merge`)")
    p.add_argument("--runner", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a Ray Data pipeline on a Ray cluster (pip install "
                        "'mmpr[ray]'); both write the same dataset")
    p.add_argument("--ray-address", help="ray runner: the cluster to join (auto, or host:port); default: a Ray "
                   "instance started on this machine")
    p.add_argument("--replicas", type=int, default=1, help="ray runner: engine replicas (default 1)")
    p.add_argument("--replica-cpus", type=float, default=1.0, help="ray runner: CPUs per replica (default 1)")
    p.add_argument("--replica-gpus", type=float, default=0.0,
                   help="ray runner: GPUs per replica, e.g. the engine's tensor_parallel_size (default 0)")
    p.add_argument("--name", help="dataset name")
    p.add_argument("--version", help="dataset version X.Y.Z")
    p.add_argument("--release-out", type=Path, help="also write the MMPR release layout to this folder")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming a different build")
    p.add_argument("--list-sources", action="store_true", help="list the registered sources and exit")
    hub.add_push_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    data: dict[str, Any] = yaml.safe_load(args.config.read_text()) if args.config else {}
    if args.config and not isinstance(data, dict):
        raise ValueError(f"{args.config}: expected a mapping of BuildConfig keys")
    for key in ("model", "out", "engine", "prompt", "name", "version", "shard", "release_out"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.sources:
        data["sources"] = [_source_spec(s) for s in args.sources]
    if args.limit is not None:
        data["sources"] = [{**s, "limit": args.limit} for s in data.get("sources", [])]
    sampling = dict(data.get("sampling") or {})
    for key in ("n", "temperature", "top_p", "top_k", "max_tokens", "seed"):
        if getattr(args, key) is not None:
            sampling[key] = getattr(args, key)
    data["sampling"] = sampling
    engine_args = dict(data.get("engine_args") or {})
    for item in args.engine_arg:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--engine-arg {item!r}: expected KEY=VALUE")
        engine_args[key] = _value(value)
    data["engine_args"] = engine_args
    for flag, key in (("max_pairs", "max_pairs_per_question"), ("ntp_ratio", "dropout_ntp_ratio"),
                      ("batch_size", "batch_size")):
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    return BuildConfig.model_validate(data)


def _format_validation(e: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid settings"]
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "merge":
        return merge_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_sources:
        for name, description in available_sources().items():
            print(f"{name:<12} {description}")
        return 0
    hub.check_push_arguments(args)
    try:
        cfg = config_from_args(args)
        if args.runner == "ray":
            from mmpr.build import ray_runner

            summary = ray_runner.run(cfg, address=args.ray_address, replicas=args.replicas,
                                     cpus_per_replica=args.replica_cpus, gpus_per_replica=args.replica_gpus,
                                     overwrite=args.overwrite)
        else:
            summary = run(cfg, overwrite=args.overwrite)
    except ValidationError as e:
        print(_format_validation(e, str(args.config or "command line")), file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    p = argparse.ArgumentParser(prog="python -m mmpr.build merge", description="Join shard builds into one "
                                "versioned dataset.")
    p.add_argument("shards", nargs="+", type=Path, help="the --out folders of the shard runs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name")
    p.add_argument("--version")
    hub.add_push_arguments(p)
    args = p.parse_args(argv)
    hub.check_push_arguments(args)
    try:
        summary = merge(args.shards, args.out, name=args.name, version=args.version)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary.render())
    print(f"dataset written to {args.out}")
    if args.push:
        return hub.push_from_args(args, args.out)
    return 0


