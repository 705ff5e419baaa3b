"""An lmms-eval model backend over mmpr's engines (vLLM on GPU, transformers anywhere), greedy and resumable,
optionally with k sampled answers per item.

Every answered sample is appended to a cache file as soon as its batch is done, keyed by the task, document,
prompt, model and generation settings; a rerun (after a crash or a kill) answers from the cache and only
generates what is missing. A request the engine fails on is counted by cause (:attr:`MmprModel.failures`), scored
as an empty answer for this run, and not cached: a rerun asks again.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from evals.cache import ResponseCache
from evals.thinking import for_scoring
from mmpr.engines import ENGINE_REGISTRY, Engine, EngineError, Request, make_engine
from mmpr.errors import UserError
from mmpr.images import ImageStore
from mmpr.schemas import SamplingConfig

EVAL_ENGINES = ("transformers", "vllm")  # the engines that answer in this process


def eval_engine(name: str) -> str:
    """The registered name of engine ``name`` (``hf`` is ``transformers``); an engine that does not answer in this
    process is refused in one line."""
    engine = ENGINE_REGISTRY.canonical(name)
    if engine not in EVAL_ENGINES:
        raise UserError(f"--engine {name}: evaluations answer with {' or '.join(EVAL_ENGINES)}")
    return engine


class MmprModel(lmms):
    """Answers lmms-eval's ``generate_until`` requests with an mmpr engine; with ``samples`` it also draws that
    many answers per request at ``temperature`` (each cached under its own key, so a rerun resumes), kept in
    :attr:`sampled` for avg@k / pass@k / majority@k beside the greedy answer lmms-eval scores."""

    def __init__(self, model: str, *, engine: str = "transformers", cache_dir: str | Path, batch_size: int = 16,
                 engine_args: dict | None = None, engine_instance: Engine | None = None, samples: int = 0,
                 temperature: float = 1.0, strip_thinking: bool = False, style: str = "cot"):
        super().__init__()
        self.model_name, self.engine_name = model, eval_engine(engine)
        self.batch_size = batch_size
        self.engine_args = engine_args or {}
        self._engine = engine_instance
        self.cache = ResponseCache(Path(cache_dir) / "responses.jsonl")
        self.images = ImageStore(Path(cache_dir) / "images")
        self.generated = 0
        self.failures: Counter[str] = Counter()
        self.samples, self.temperature = samples, temperature
        self.strip_thinking, self.style = strip_thinking, style
        self.raw: dict[tuple[str, int], str] = {}
        self.sampled: dict[tuple[str, int], list[str]] = {}

    @property
    def engine(self) -> Engine:
        if self._engine is None:  # started only when something is not in the cache
            self._engine = make_engine(self.engine_name, self.model_name, **self.engine_args)
        return self._engine

    def _key(self, instance: Instance, context: str, sampling: SamplingConfig) -> str:
        task, doc_id = instance.args[4], instance.args[3]
        body = json.dumps([task, doc_id, context, self.model_name, sampling.model_dump()], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()

    @staticmethod
    def sampling(gen_kwargs: dict) -> SamplingConfig:
        """Greedy unless the task asks for sampling; max_new_tokens from the task."""
        temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0) if gen_kwargs.get("do_sample") else 0.0
        return SamplingConfig(n=1, temperature=temperature, top_p=float(gen_kwargs.get("top_p", 1.0) or 1.0),
                              top_k=-1, max_tokens=int(gen_kwargs.get("max_new_tokens", 1024)), seed=0)

    def sampled_config(self, gen_kwargs: dict) -> SamplingConfig:
        """The settings of the ``samples`` extra answers: the task's budget at ``temperature``."""
        return self.sampling(dict(gen_kwargs)).model_copy(update={"temperature": self.temperature})

    def generate_until(self, requests: list[Instance]) -> list[str]:
        greedy, sampled = [], []
        for instance in requests:
            context, gen_kwargs, *_ = instance.args
            config = self.sampling(dict(gen_kwargs))
            greedy.append((instance, context, config, [self._key(instance, context, config)]))
            if self.samples:
                config = self.sampled_config(gen_kwargs)
                base = self._key(instance, context, config)
                sampled.append((instance, context, config, [f"{base}:{i}" for i in range(self.samples)]))
        self._answer([job for job in greedy if job[3][0] not in self.cache.responses], len(greedy), "answering")
        if sampled:
            todo = [(*job[:3], [k for k in job[3] if k not in self.cache.responses]) for job in sampled]
            self._answer([job for job in todo if job[3]], len(sampled), f"sampling {self.samples} per item")
            for instance, _, _, keys in sampled:
                texts = [self.cache.responses.get(k) for k in keys]
                self.sampled[(instance.args[4], instance.args[3])] = [
                    self._visible(t) for t in texts if t is not None]
        out = []
        for instance, _, _, keys in greedy:
            raw = self.cache.responses.get(keys[0], "")
            self.raw[(instance.args[4], instance.args[3])] = raw
            out.append(self._visible(raw))
        return out

    def _visible(self, response: str) -> str:
        return for_scoring(response, strip=self.strip_thinking, style=self.style)[0]

    def _answer(self, jobs: list[tuple[Instance, str, SamplingConfig, list[str]]], total: int, desc: str) -> None:
        """Generate ``len(keys)`` answers for each job (one request with ``n`` of them) and cache them by key; a
        request the engine fails on is counted and left uncached."""
        bar = tqdm(total=total, initial=total - len(jobs), desc=desc, unit="item")
        for start in range(0, len(jobs), self.batch_size):
            batch = jobs[start:start + self.batch_size]
            by_sampling: dict[str, list] = {}
            for job in batch:
                by_sampling.setdefault(job[2].model_dump_json(), []).append(job)
            for group in by_sampling.values():
                engine_requests = []
                for instance, context, config, keys in group:
                    _, _, doc_to_visual, doc_id, task, split = instance.args
                    visuals = doc_to_visual(self.task_dict[task][split][doc_id]) or []
                    # greedy answers need no seed; each sampled request its own, from its first key
                    seed = int(hashlib.sha256(keys[0].encode()).hexdigest()[:8], 16) if config.temperature else 0
                    engine_requests.append(Request(keys[0], context, tuple(self.images.put(v) for v in visuals),
                                                   n=len(keys), seed=seed))
                results = self.engine.generate(engine_requests, group[0][2])
                answered = []
                for (_, _, _, keys), result in zip(group, results, strict=True):
                    if isinstance(result, EngineError):
                        self.failures[result.code] += 1
                    else:
                        answered.extend(zip(keys, (completion.text for completion in result), strict=True))
                self.cache.add(answered)
                self.generated += len(answered)
            bar.update(len(batch))
        bar.close()

    def loglikelihood(self, requests):
        raise NotImplementedError("mmpr's evaluation tasks are generative; no loglikelihood requests")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("multi-round generation is not used by mmpr's tasks")
