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
import hashlib
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from mmpr import hub
from mmpr.builder import SubsetInput, write_dataset
from mmpr.engines import ENGINES, Engine, EngineError, Request, make_engine, request_seed
from mmpr.io import atomic_path
from mmpr.pipeline.correctness import correctness_pairs
from mmpr.pipeline.dropout_ntp import DEFAULT_RATIO, continuation_prefix, dropout_ntp_pair, without_images
from mmpr.problems import Problem, ProblemLog
from mmpr.prompts import DEFAULT_TEMPLATE, get_template, strip_direct_instructions
from mmpr.schemas import (
    Category,
    GeneratorInfo,
    PreferencePair,
    PromptInfo,
    Response,
    SamplingConfig,
    SourceInfo,
    SourceItem,
)
from mmpr.sources import SourceSpec, available_sources, make_source
from mmpr.store import ItemRecord, WorkStore
from mmpr.testing import resolve_model


class BuildConfig(BaseModel):
    """Every setting of a build, with its default; a YAML ``--config`` file holds the same keys."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model path, Hub id, or tiny:<family> for a tiny offline model.")
    sources: list[SourceSpec] = Field(min_length=1)
    out: Path
    engine: Literal["vllm", "openai", "transformers"] = "vllm"
    engine_args: dict[str, Any] = Field(default_factory=dict, description="Passed to the engine (vllm.LLM args; "
                                        "openai: endpoints, api_key, concurrency, max_retries).")
    name: str | None = Field(default=None, description="Dataset name (default: the output folder's name).")
    version: str | None = Field(default=None, description="X.Y.Z (default 1.0.0, or next on the Hub with --push).")
    prompt: str = DEFAULT_TEMPLATE
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    max_pairs_per_question: int = Field(default=15, ge=1)
    dropout_ntp_ratio: float = Field(default=DEFAULT_RATIO, gt=0, lt=1)
    correctness_skip_categories: list[Category] = Field(
        default_factory=lambda: ["general_vqa", "document"],
        description="Categories whose rule-based judging is unreliable: they get DropoutNTP pairs instead.")
    batch_size: int = Field(default=64, ge=1, description="Questions per engine call and per saved chunk.")
    shard: str = Field(default="0/1", pattern=r"^\d+/\d+$")
    release_out: Path | None = Field(default=None, description="Also write the MMPR release layout here.")

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, name: str) -> str:
        get_template(name)
        return name

    @field_validator("shard")
    @classmethod
    def _valid_shard(cls, shard: str) -> str:
        i, n = map(int, shard.split("/"))
        if not 0 <= i < n:
            raise ValueError(f"shard {shard}: need 0 <= i < N")
        return shard

    def fingerprint(self) -> dict:
        """The settings that decide which pairs come out (not where they go or how the engine is run)."""
        return self.model_dump(mode="json", include={"model", "sources", "prompt", "sampling", "engine",
                                                     "max_pairs_per_question", "dropout_ntp_ratio",
                                                     "correctness_skip_categories", "batch_size", "shard"})


# --------------------------------------------------------------------------------------------------- processing

def in_shard(item_id: str, shard: str) -> bool:
    i, n = map(int, shard.split("/"))
    return n == 1 or int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") % n == i


def route_of(item: SourceItem, cfg: BuildConfig) -> Literal["correctness", "dropout_ntp"]:
    has_truth = item.answer is not None
    return "correctness" if has_truth and item.category not in cfg.correctness_skip_categories else "dropout_ntp"


def prompt_for(item: SourceItem, cfg: BuildConfig) -> str:
    """Questions with an answer get the CoT template (direct-answer instructions stripped); open questions
    (captions, descriptions) are asked as they are."""
    if item.answer is None:
        return item.question
    return get_template(cfg.prompt).render(strip_direct_instructions(item.question), item.choices)


def _skipped(record: ItemRecord, code: str, message: str) -> ItemRecord:
    record.outcome = "skipped"
    record.problem = Problem(code=code, file=record.item.source, field=None,
                             message=f"{record.item.id}: {message}")
    return record


def _responses(item: SourceItem, completions) -> list[Response]:
    return [Response(item_id=item.id, sample_index=i, text=c.text, prompt_tokens=c.prompt_tokens,
                     completion_tokens=c.completion_tokens, finish_reason=c.finish_reason)
            for i, c in enumerate(completions)]


def process_chunk(items: list[SourceItem], engine: Engine, cfg: BuildConfig) -> list[ItemRecord]:
    """Sample, judge and pair one chunk of questions (two engine calls: answers, then DropoutNTP continuations)."""
    seed = cfg.sampling.seed
    records, requests = [], []
    for item in items:
        route = route_of(item, cfg)
        records.append(ItemRecord(item=item, route=route, prompt=prompt_for(item, cfg), outcome="pending"))
        requests.append(Request(item.id, records[-1].prompt, tuple(item.images),
                                n=cfg.sampling.n if route == "correctness" else 1, seed=request_seed(seed, item.id)))
    continuations: list[tuple[ItemRecord, str, Request]] = []
    for record, result in zip(records, engine.generate(requests, cfg.sampling), strict=True):
        item = record.item
        if isinstance(result, EngineError):
            _skipped(record, result.code, result.message)
            continue
        record.responses = _responses(item, result)
        if record.route == "correctness":
            res = correctness_pairs(item, record.prompt, record.responses, max_pairs=cfg.max_pairs_per_question,
                                    seed=seed)
            record.judgements, record.pairs, record.outcome = res.judgements, res.pairs, res.outcome
            continue
        chosen = record.responses[0]
        if chosen.finish_reason == "length":
            _skipped(record, "chosen_truncated", "the answer with the image hit max_tokens; raise --max-tokens")
            continue
        prefix = continuation_prefix(chosen.text, cfg.dropout_ntp_ratio)
        if prefix is None:
            _skipped(record, "chosen_too_short", "the answer with the image is too short to truncate")
            continue
        key = item.id + "#ntp"
        continuations.append((record, prefix, Request(key, without_images(record.prompt), (), n=1,
                                                      seed=request_seed(seed, key), prefix=prefix)))
    if continuations:
        results = engine.generate([r for _, _, r in continuations], cfg.sampling)
        for (record, prefix, _), result in zip(continuations, results, strict=True):
            if isinstance(result, EngineError):
                _skipped(record, result.code, result.message)
                continue
            record.continuation = result[0].text
            pair = dropout_ntp_pair(record.item, record.prompt, record.responses[0].text, prefix, result[0].text,
                                    ratio=cfg.dropout_ntp_ratio)
            record.pairs = [pair] if pair else []
            record.outcome = "paired" if pair else "no_pairs"
    return records


# ------------------------------------------------------------------------------------------------------ summary

class SourceStats(BaseModel):
    questions: int = 0
    responses: int = 0
    judged: int = 0
    correct: int = 0
    unparsable: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None


class BuildSummary(BaseModel):
    questions: int = 0
    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    pairs: dict[str, int] = Field(default_factory=dict)
    sources: dict[str, SourceStats] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)
    skipped_examples: list[str] = Field(default_factory=list)

    def add(self, record: ItemRecord) -> None:
        s = self.sources.setdefault(record.item.source, SourceStats())
        s.questions += 1
        self.questions += 1
        s.responses += len(record.responses)
        self.responses += len(record.responses)
        self.prompt_tokens += sum(r.prompt_tokens for r in record.responses[:1])
        self.completion_tokens += sum(r.completion_tokens for r in record.responses)
        s.judged += len(record.judgements)
        s.correct += sum(j.correct for j in record.judgements)
        s.unparsable += sum(not j.parsable for j in record.judgements)
        s.outcomes[record.outcome] = s.outcomes.get(record.outcome, 0) + 1
        for p in record.pairs:
            self.pairs[p.kind] = self.pairs.get(p.kind, 0) + 1
        if record.problem is not None:
            self.skip(record.problem)

    def skip(self, problem: Problem) -> None:
        self.skipped[problem.code] = self.skipped.get(problem.code, 0) + 1
        self._example(problem)

    def _example(self, problem: Problem) -> None:
        if len(self.skipped_examples) < 20:
            self.skipped_examples.append(str(problem))

    def add_source_problems(self, problems: ProblemLog) -> None:
        """Rows the sources could not turn into questions (counted in full, the first few listed)."""
        for problem in problems.items:
            self._example(problem)
        for code, n in problems.counts.items():
            self.skipped[code] = self.skipped.get(code, 0) + n

    def render(self) -> str:
        lines = [f"questions: {self.questions}   responses: {self.responses}   "
                 f"pairs: {sum(self.pairs.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.pairs.items()))})"]
        lines.append(f"{'source':<24}{'questions':>10}{'responses':>10}{'accuracy':>10}{'unparsable':>11}  outcomes")
        for name, s in sorted(self.sources.items()):
            acc = f"{s.accuracy:.1%}" if s.accuracy is not None else "-"
            unp = f"{s.unparsable / s.judged:.1%}" if s.judged else "-"
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items()))
            lines.append(f"{name:<24}{s.questions:>10}{s.responses:>10}{acc:>10}{unp:>11}  {outcomes}")
        total = sum(self.skipped.values())
        lines.append(f"skipped: {total}" + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(self.skipped.items()))})"
                                            if total else ""))
        lines += [f"  {e}" for e in self.skipped_examples[:10]]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- the build

def _chunks(items: Iterable[SourceItem], size: int) -> Iterator[tuple[int, list[SourceItem]]]:
    it = iter(items)
    for index in itertools.count():
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield index, chunk


def _check_model(cfg: BuildConfig) -> str:
    model = resolve_model(cfg.model)
    if cfg.engine == "openai":
        return model  # a name the server knows
    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"--model {cfg.model}: {path} is not a model folder (no config.json)")
        return str(path)
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model)
    except OSError as e:
        raise FileNotFoundError(f"--model {cfg.model}: not a local folder, and the Hub/cache has no such model "
                                f"({e})") from e
    return model


@dataclass
class BuildInputs:
    """An opened build: its sources, its work store, and the questions of its shard in their fixed order."""

    cfg: BuildConfig
    model: str
    sources: list
    store: WorkStore
    problems: ProblemLog = field(default_factory=ProblemLog)
    counts: Counter = field(default_factory=Counter)

    @property
    def shard_name(self) -> str:
        return self.cfg.shard.replace("/", "of")

    @property
    def total(self) -> int | None:
        """Questions expected in this shard (an estimate for N > 1), for progress bars."""
        return sum(len(s) for s in self.sources) // int(self.cfg.shard.split("/")[1]) or None

    def items(self) -> Iterator[SourceItem]:
        for source in self.sources:
            for item in source.items(self.store.images, self.problems):
                if in_shard(item.id, self.cfg.shard):
                    self.counts[source.name] += 1
                    yield item

    def chunks(self) -> Iterator[tuple[int, list[SourceItem]]]:
        """``(index, questions)`` for every chunk of the shard, done or not (chunk boundaries never move)."""
        return _chunks(self.items(), self.cfg.batch_size)


def open_build(cfg: BuildConfig, *, overwrite: bool = False) -> BuildInputs:
    """Check the model, open the sources and the work store (refusing to resume a build with other settings)."""
    model = _check_model(cfg)
    sources = [make_source(spec).open() for spec in cfg.sources]
    store = WorkStore(cfg.out)
    store.check_config(cfg.fingerprint(), overwrite=overwrite)
    return BuildInputs(cfg, model, sources, store)


def finish(build: BuildInputs, *, assemble_dataset: bool = True) -> BuildSummary:
    """Summarise the chunks on disk; assemble the dataset unless this is one shard of several (or told not to)."""
    summary = BuildSummary()
    for record in build.store.records():
        summary.add(record)
    summary.add_source_problems(build.problems)
    if assemble_dataset and int(build.cfg.shard.split("/")[1]) == 1:
        source_infos = [s.info(build.counts[s.name]) for s in build.sources]
        assemble(build.cfg, [build.store], source_infos, summary)
    return summary


def run(cfg: BuildConfig, *, progress: bool = True, overwrite: bool = False) -> BuildSummary:
    """Run (or resume) a build in this process; assemble the dataset unless this is one shard of several."""
    build = open_build(cfg, overwrite=overwrite)
    store = build.store
    engine: Engine | None = None
    bar = tqdm(total=build.total, unit="q", desc="building", disable=not progress, dynamic_ncols=True)
    pairs = samples = 0
    started = time.monotonic()
    try:
        for index, chunk in build.chunks():
            if not store.has_chunk(build.shard_name, index):
                if engine is None:
                    engine = make_engine(cfg.engine, build.model, **cfg.engine_args)
                    started = time.monotonic()
                records = process_chunk(chunk, engine, cfg)
                store.write_chunk(build.shard_name, index, records)
                samples += sum(len(r.responses) for r in records)
                pairs += sum(len(r.pairs) for r in records)
                bar.set_postfix(samples_per_s=f"{samples / max(time.monotonic() - started, 1e-9):.1f}", pairs=pairs,
                                skipped=build.problems.total, refresh=False)
            bar.update(len(chunk))
    finally:
        bar.close()
        if engine is not None:
            engine.close()
    return finish(build)


def _pairs_by_subset(stores: list[WorkStore], scratch: Path) -> dict[str, Path]:
    """Spill the pairs of all records into one jsonl per subset, so each subset can be streamed."""
    files: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    try:
        for store in stores:
            for record in store.records():
                for pair in record.pairs:
                    if pair.subset not in files:
                        paths[pair.subset] = scratch / f"{len(paths):05d}.jsonl"
                        files[pair.subset] = open(paths[pair.subset], "w", encoding="utf-8")
                    files[pair.subset].write(pair.model_dump_json() + "\n")
    finally:
        for f in files.values():
            f.close()
    return dict(sorted(paths.items()))


def _read_pairs(path: Path) -> Iterator[PreferencePair]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield PreferencePair.model_validate_json(line)


def assemble(cfg: BuildConfig, stores: list[WorkStore], sources: list[SourceInfo], summary: BuildSummary):
    """Write the dataset folder (parquet + card + manifest) from the records of ``stores``."""
    out = Path(cfg.out)
    scratch = stores[0].root / "assemble"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        by_subset = _pairs_by_subset(stores, scratch)
        template = get_template(cfg.prompt)
        manifest = write_dataset(
            out, [SubsetInput(name, _read_pairs(path)) for name, path in by_subset.items()],
            name=cfg.name or out.resolve().name, version=cfg.version or "1.0.0",
            manifest_fields={
                "generator": GeneratorInfo(model=cfg.model, engine=cfg.engine, sampling=cfg.sampling),
                "prompt": PromptInfo(name=template.name, template=template.template),
                "sources": sources,
                "extra": {"summary": summary.render().splitlines()[0], "build": summary.model_dump(),
                          "pipeline": cfg.model_dump(mode="json", include={
                              "max_pairs_per_question", "dropout_ntp_ratio", "correctness_skip_categories"})}})
    finally:
        for f in scratch.glob("*.jsonl"):
            f.unlink()
    if cfg.release_out is not None:
        from mmpr.export import export

        export(out, "mmpr", cfg.release_out, progress=False)
    return manifest


def merge(shard_dirs: list[Path], cfg_out: Path, *, name: str | None = None, version: str | None = None):
    """Join the work of several ``--shard i/N`` runs into one dataset at ``cfg_out``."""
    stores = [WorkStore(d) for d in shard_dirs]
    configs = []
    for store in stores:
        path = store.root / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: not a build folder (no {path.name})")
        configs.append(json.loads(path.read_text()))
    shards = sorted(c.pop("shard") for c in configs)
    if any(c != configs[0] for c in configs):
        raise ValueError("the shards were built with different settings; only --shard may differ")
    n = int(shards[0].split("/")[1])
    expected = [f"{i}/{n}" for i in range(n)]
    if shards != expected:
        raise ValueError(f"shards {', '.join(shards)} given; a full set is {', '.join(expected)}")
    cfg = BuildConfig.model_validate({**configs[0], "shard": "0/1", "out": cfg_out, "name": name,
                                      "version": version})
    summary = BuildSummary()
    for store in stores:
        for record in store.records():
            summary.add(record)
    sources = [SourceInfo(name=name, location="(merged shards)", num_items=s.questions)
               for name, s in sorted(summary.sources.items())]
    merged = WorkStore(cfg_out)
    merged.root.mkdir(parents=True, exist_ok=True)
    with atomic_path(merged.root / "merged_from.json") as tmp:
        tmp.write_text(json.dumps([str(d) for d in shard_dirs]))
    assemble(cfg, [merged, *stores], sources, summary)
    return summary


# ---------------------------------------------------------------------------------------------------------- CLI

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
    p.add_argument("--ray-address", help="ray runner: the cluster to join (auto, or ray://host:10001); default: "
                   "a Ray instance started on this machine")
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
            from mmpr import build_ray

            summary = build_ray.run(cfg, address=args.ray_address, replicas=args.replicas,
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


if __name__ == "__main__":
    sys.exit(main())

