"""An lmms-eval model backend over mmpr's engines (vLLM on GPU, transformers anywhere), greedy and resumable.

Every answered sample is appended to a cache file as soon as its batch is done, keyed by the task, document,
prompt, model and generation settings; a rerun (after a crash or a kill) answers from the cache and only
generates what is missing. A request the engine fails on is counted by cause (:attr:`MmprModel.failures`), scored
as an empty answer for this run, and not cached: a rerun asks again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from mmpr.engines import Engine, EngineError, Request, make_engine
from mmpr.images import ImageStore
from mmpr.schemas import SamplingConfig

ENGINE_NAMES = {"vllm": "vllm", "hf": "transformers"}


class ResponseCache:
    """Append-only jsonl of ``{"key", "response"}``; a torn last line (a kill mid-write) is ignored."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.responses: dict[str, str] = {}
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # a write cut short: drop the torn line before appending
                with open(self.path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.responses[record["key"]] = record["response"]

    def add(self, items: list[tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for key, response in items:
                f.write(json.dumps({"key": key, "response": response}, ensure_ascii=False) + "\n")
                self.responses[key] = response
            f.flush()
            os.fsync(f.fileno())


class MmprModel(lmms):
    """Answers lmms-eval's ``generate_until`` requests with an mmpr engine."""

    def __init__(self, model: str, *, engine: str = "hf", cache_dir: str | Path, batch_size: int = 16,
                 engine_args: dict | None = None, engine_instance: Engine | None = None):
        super().__init__()
        self.model_name, self.engine_name = model, ENGINE_NAMES.get(engine, engine)
        self.batch_size = batch_size
        self.engine_args = engine_args or {}
        self._engine = engine_instance
        self.cache = ResponseCache(Path(cache_dir) / "responses.jsonl")
        self.images = ImageStore(Path(cache_dir) / "images")
        self.generated = 0
        self.failures: Counter[str] = Counter()

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

    def generate_until(self, requests: list[Instance]) -> list[str]:
        keyed = []
        for instance in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = instance.args
            sampling = self.sampling(dict(gen_kwargs))
            keyed.append((instance, context, sampling, self._key(instance, context, sampling)))
        todo = [k for k in keyed if k[3] not in self.cache.responses]
        bar = tqdm(total=len(requests), initial=len(requests) - len(todo), desc="answering", unit="sample")
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            by_sampling: dict[str, list] = {}
            for item in batch:
                by_sampling.setdefault(item[2].model_dump_json(), []).append(item)
            for group in by_sampling.values():
                engine_requests = []
                for instance, context, _, key in group:
                    _, _, doc_to_visual, doc_id, task, split = instance.args
                    visuals = doc_to_visual(self.task_dict[task][split][doc_id]) or []
                    engine_requests.append(Request(key, context, tuple(self.images.put(v) for v in visuals), n=1))
                results = self.engine.generate(engine_requests, group[0][2])
                answered = []
                for item, result in zip(group, results, strict=True):
                    if isinstance(result, EngineError):
                        self.failures[result.code] += 1
                    else:
                        answered.append((item[3], result[0].text))
                self.cache.add(answered)
                self.generated += len(answered)
            bar.update(len(batch))
        bar.close()
        return [self.cache.responses.get(k[3], "") for k in keyed]

    def loglikelihood(self, requests):
        raise NotImplementedError("mmpr's evaluation tasks are generative; no loglikelihood requests")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("multi-round generation is not used by mmpr's tasks")
