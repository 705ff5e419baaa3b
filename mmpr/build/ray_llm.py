"""``python -m mmpr.build --engine ray-llm``: the build with its sampling on ``ray.data.llm``'s vLLM processor.

Ray's processor (``vLLMEngineProcessorConfig`` + ``build_processor``, Ray >= 2.59) answers one row with one
completion, so the engine here (:class:`ProcessorEngine`, the project's engine protocol) explodes each request
of ``n`` samples into ``n`` rows whose seeds are the ones vLLM gives the ``n`` children of one seeded request
(``seed + i``, vLLM's ``ParentRequest``), and regroups the answers by request. Everything around the sampling is
the local runner's code (:func:`mmpr.build.step.process_chunks`): the same prompts, request seeds, judging,
pairing and DropoutNTP continuation round, so a vLLM build gives the same pairs on either runner.

The runner skeleton (:func:`mmpr.build.runner.run`) cuts the questions into the local runner's chunks; this
engine's executor (:class:`ProcessorWaves`) takes them in waves of ``chunks_per_wave``:
each wave is two passes through the processor (the answers, then the DropoutNTP continuations, which depend on
the answers) and its chunks are saved atomically as the wave ends. A killed run loses the wave in flight; a
rerun skips the chunks on disk. Each pass starts the processor's engine replicas anew (Ray Data's actor pools
live as long as one dataset), so larger waves amortise the start.

The preprocess (on the cluster) opens a row's images from the build's image store (``--out`` on storage every
node sees) and hands them to the engine stage as ``multimodal_data``; Ray's chat-template stage renders the
prompt with the model's own template. A request the engine cannot serve is an engine error of
that question alone (``should_continue_on_error``). vLLM's finish reason is not among the processor's output
columns: an answer is taken as cut off (``length``) when it used all of ``--max-tokens``.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mmpr.build.config import BuildConfig
from mmpr.build.executor import ChunkDone, ClusterOptions, Pending
from mmpr.build.ray_runner import check_replicas, connect, quiet_ray_data, ray_summary
from mmpr.build.step import process_chunks
from mmpr.chat import conversation
from mmpr.engines import Completion, EngineError, Request, Result, make_engine
from mmpr.engines.base import error_code
from mmpr.errors import EngineDied, UserError
from mmpr.images import open_rgb
from mmpr.schemas import SamplingConfig, SourceItem

if TYPE_CHECKING:
    from mmpr.build.runner import BuildInputs

ERROR_COLUMN = "__inference_error__"  # Ray's column for a row whose inference failed (should_continue_on_error)

Processor = Callable[[Any], Any]  # a Ray Dataset of request rows -> a Dataset of answer rows


def messages_for(request: Request) -> list[dict]:
    """The request as chat messages with ``{"type": "image"}`` parts where its images go (the model's chat
    template renders their placeholders); a ``prefix`` is an assistant turn to continue (Ray's chat-template
    stage continues a final assistant message; transformers' template rendering continues only a string)."""
    messages = conversation(request.question, len(request.images), prefix=request.prefix)
    if request.prefix is not None:
        messages[-1]["content"] = request.prefix
    return messages


def sampling_params(sampling: SamplingConfig, seed: int) -> dict:
    """vLLM ``SamplingParams`` of one sample, as the project's vLLM engine sets them."""
    return {"n": 1, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": sampling.top_k if sampling.top_k > 0 else 0, "max_tokens": sampling.max_tokens, "seed": seed}


def explode(requests: list[Request], sampling: SamplingConfig) -> list[dict]:
    """One row per sample: request ``r`` with ``n`` samples becomes rows ``(r, 0..n-1)`` with seeds
    ``seed + i``, the seeds vLLM gives the children of one seeded request of ``n``. The chat payload is a JSON
    string (the processor's ``preprocess`` opens it), so the rows stay flat Arrow columns."""
    return [{"request": index, "sample": i,
             "payload": json.dumps({"messages": messages_for(r), "images": list(r.images),
                                    "sampling_params": sampling_params(sampling, r.seed + i)})}
            for index, r in enumerate(requests) for i in range(r.n)]


def to_engine_row(row: dict) -> dict:
    """The processor's ``preprocess``: the columns its stages read: ``messages``, ``sampling_params`` and the
    images, opened as the local vLLM engine opens them, as the engine stage's ``multimodal_data``."""
    payload = json.loads(row["payload"])
    images = payload.pop("images")
    return {**payload, "multimodal_data": {"image": [open_rgb(p) for p in images]} if images else None}


def from_engine_row(row: dict) -> dict:
    """The processor's ``postprocess``: the answer, keyed by request and sample."""
    return {"request": int(row["request"]), "sample": int(row["sample"]), "text": str(row["generated_text"]),
            "prompt_tokens": int(row["num_input_tokens"]), "completion_tokens": int(row["num_generated_tokens"]),
            ERROR_COLUMN: ""}


def regroup(requests: list[Request], rows: list[dict], sampling: SamplingConfig) -> list[Result]:
    """The answers of the exploded rows back as one result per request, samples in order. A request with a failed
    or missing sample is an :class:`EngineError` of that request alone."""
    by_request: dict[int, dict[int, dict]] = {}
    for row in rows:
        by_request.setdefault(int(row["request"]), {})[int(row["sample"])] = row
    results: list[Result] = []
    for index, request in enumerate(requests):
        samples = by_request.get(index, {})
        errors = [str(row[ERROR_COLUMN]) for row in samples.values() if row.get(ERROR_COLUMN)]
        if errors:
            results.append(EngineError(error_code(errors[0]), errors[0]))
        elif sorted(samples) != list(range(request.n)):
            results.append(EngineError("engine_error", f"{len(samples)} of {request.n} samples came back"))
        else:
            results.append([Completion(text=row["text"], prompt_tokens=int(row["prompt_tokens"]),
                                       completion_tokens=int(row["completion_tokens"]),
                                       finish_reason="length" if int(row["completion_tokens"]) >= sampling.max_tokens
                                       else "stop")
                            for _, row in sorted(samples.items())])
    return results


class ProcessorEngine:
    """The engine protocol over a ``ray.data.llm`` processor: every :meth:`generate` is one pass of a Ray dataset
    of exploded rows through the processor."""

    name = "ray-llm"

    def __init__(self, model: str, *, processor: Processor, blocks: int = 1):
        self.model = model
        self.processor = processor
        self.blocks = blocks
        self.seconds = 0.0
        self.samples = 0

    def generate(self, requests: list[Request], sampling: SamplingConfig) -> list[Result]:
        import ray

        rows = explode(requests, sampling)
        if not rows:
            return [[] for _ in requests]
        start = time.perf_counter()
        ds = ray.data.from_items(rows, override_num_blocks=min(self.blocks, len(rows)))
        try:
            out = self.processor(ds).take_all()
        except (KeyboardInterrupt, UserError):
            raise
        except Exception as e:  # Ray's wrappers (task, actor, user code) around the engine's own error
            raise EngineDied(f"the ray.data.llm engine failed: {death_cause(e)}; the chunks saved so far stay, "
                             f"rerun the same command to resume (Ray's worker logs: /tmp/ray/session_latest/logs)") \
                from e
        self.seconds += time.perf_counter() - start
        self.samples += len(rows)
        return regroup(requests, out, sampling)

    def close(self) -> None:
        pass


# Ray's own wrappers around a remote error: the cause is the innermost exception that is not one of them
_RAY_WRAPPERS = re.compile(r"^(ray\.\S+\.)?(RayTaskError|RayActorError|ActorDiedError|UserCodeException|"
                           r"RaySystemError|TaskCancelledError|ObjectLostError)\b")
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)|OutOfMemoryError|RuntimeError)(\([^)]*\))?: \S")


def death_cause(e: BaseException) -> str:
    """The engine's own error inside Ray's wrappers, in one line: the last ``SomeError: message`` line of the
    remote traceback that is not a Ray wrapper, else the first line Ray gave."""
    chain: list[BaseException] = []
    while e is not None and e not in chain:
        chain.append(e)
        e = getattr(e, "cause", None) or e.__cause__
    text = "\n".join(str(x) for x in chain)
    causes = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())
              and not _RAY_WRAPPERS.match(line.strip())]
    if causes:
        return causes[-1][:300]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(chain[0]).__name__)[:300]


def vllm_processor(cfg: BuildConfig, model: str, *, replicas: int, batch_size: int = 64,
                   accelerator_type: str | None = None, cpu_only: bool = False) -> Processor:
    """``ray.data.llm``'s vLLM processor on ``model``: ``replicas`` engines (``concurrency``), the build's engine
    arguments as vLLM's ``engine_kwargs`` (tensor_parallel_size, pipeline_parallel_size, max_model_len, ...).

    The images reach the engine stage as ``multimodal_data`` from :func:`to_engine_row`, not through Ray's
    multimodal stage (Ray 2.60's imports ``vllm.entrypoints.chat_utils``, which vLLM 0.32 moved). ``cpu_only``
    asks each replica for a CPU instead of Ray's default of one GPU per tensor/pipeline rank (vLLM's CPU
    build)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    engine_kwargs = {"limit_mm_per_prompt": {"image": 4, "video": 0}, **cfg.engine_args}
    extra: dict[str, Any] = {}
    if cpu_only:
        # the local vLLM engine's CPU settings (mmpr.engines.vllm_engine): without them a seeded request's
        # chunked prefill rewinds its generator and the samples differ from the local runner's
        engine_kwargs.setdefault("enforce_eager", True)
        engine_kwargs.setdefault("enable_chunked_prefill", False)
        extra = {"placement_group_config": {"bundles": [{"CPU": 1}]}}
    config = vLLMEngineProcessorConfig(
        model_source=model, engine_kwargs=engine_kwargs, concurrency=replicas, batch_size=batch_size,
        accelerator_type=accelerator_type, should_continue_on_error=True,
        # vLLM 0.32's Ray metrics wrapper fails to import ray.util.metrics inside the engine actor
        log_engine_metrics=False,
        # vLLM tokenizes the templated prompt and detokenizes the answer itself, as in the local vLLM engine
        tokenize_stage=False, detokenize_stage=False, **extra)
    return build_processor(config, preprocess=to_engine_row, postprocess=from_engine_row)


def _waves(pending: Pending, size: int) -> Iterator[list[tuple[int, list[SourceItem]]]]:
    wave: list[tuple[int, list[SourceItem]]] = []
    for index_chunk in pending:
        wave.append(index_chunk)
        if len(wave) == size:
            yield wave
            wave = []
    if wave:
        yield wave


class ProcessorWaves:
    """The ``ray-llm`` engine's executor: the pending chunks in waves of ``chunks_per_wave``, each wave's answers
    and continuations one pass each through the processor (``replicas`` engines). ``processor`` makes the
    processor of a build (default :func:`vllm_processor`); ``cpu_only`` (default: when the cluster has no GPU)
    places each replica on a CPU, for vLLM's CPU build."""

    label = "building on ray.data.llm"

    def __init__(self, options: ClusterOptions | None = None, *,
                 processor: Callable[[BuildInputs], Processor] | None = None, accelerator_type: str | None = None,
                 cpu_only: bool | None = None):
        self.options = options or ClusterOptions()
        self.processor, self.accelerator_type, self.cpu_only = processor, accelerator_type, cpu_only

    def check(self, cfg: BuildConfig) -> None:
        check_replicas(self.options)
        if self.options.chunks_per_wave < 1:
            raise UserError(f"--chunks-per-wave {self.options.chunks_per_wave}: need at least one chunk per wave")
        if cfg.engine != "ray-llm":
            raise UserError(f"this runner samples with ray.data.llm's vLLM processor (--engine ray-llm); "
                            f"--engine {cfg.engine} runs on --runner ray")
        try:
            with warnings.catch_warnings():  # Ray's import-time deprecation notices say nothing about this build
                warnings.simplefilter("ignore", DeprecationWarning)
                import ray  # noqa: F401
                import ray.data.llm  # noqa: F401
        except ImportError as e:
            raise UserError(f"--engine ray-llm needs Ray Data LLM ({e}): pip install 'mmpr[ray]'") from e

    def run(self, build: BuildInputs, pending: Pending) -> Iterator[ChunkDone]:
        import ray

        opts = self.options
        with warnings.catch_warnings():
            # Ray Data's deprecation notices on its own settings say nothing about this build (nor belong in its log)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
            connect(opts.address)
            quiet_ray_data()
            cpu_only = not ray.cluster_resources().get("GPU", 0) if self.cpu_only is None else self.cpu_only
            processor = (self.processor(build) if self.processor else
                         vllm_processor(build.cfg, build.model, replicas=opts.replicas,
                                        accelerator_type=self.accelerator_type, cpu_only=cpu_only))
            engine = make_engine("ray-llm", build.model, processor=processor, blocks=opts.replicas)
            for wave in _waves(pending, opts.chunks_per_wave):
                before = engine.seconds
                made = process_chunks([chunk for _, chunk in wave], engine, build.cfg)
                for n, ((index, _), records) in enumerate(zip(wave, made, strict=True)):
                    # the wave's engine time goes to its first chunk: the replicas' total is the engine's
                    yield ChunkDone(index, records, worker="ray.data.llm",
                                    seconds=engine.seconds - before if n == 0 else 0.0)

    summary = staticmethod(ray_summary)
