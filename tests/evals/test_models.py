import json

import pytest
from lmms_eval.api.instance import Instance

from evals.models import MmprModel, ResponseCache, eval_engine
from mmpr.engines import Completion, EngineError
from mmpr.errors import UserError
from mmpr.registry import UnknownName


def test_cache_survives_a_torn_write_and_reloads(tmp_path):
    cache = ResponseCache(tmp_path / "r.jsonl")
    cache.add([("a", "one"), ("b", "two")])
    with open(tmp_path / "r.jsonl", "a") as f:
        f.write('{"key": "c", "resp')
    reloaded = ResponseCache(tmp_path / "r.jsonl")
    assert reloaded.responses == {"a": "one", "b": "two"}
    reloaded.add([("c", "three")])
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b", "c"]


def test_generation_settings_are_greedy_unless_sampling_is_asked():
    greedy = MmprModel.sampling({"max_new_tokens": 64, "temperature": 0.7, "until": ["\n\n"]})
    assert greedy.temperature == 0.0 and greedy.max_tokens == 64 and greedy.n == 1
    sampled = MmprModel.sampling({"do_sample": True, "temperature": 0.7, "top_p": 0.9})
    assert sampled.temperature == 0.7 and sampled.top_p == 0.9 and sampled.max_tokens == 1024


def test_the_engine_has_its_registered_name_and_hf_is_transformers(tmp_path):
    assert eval_engine("hf") == "transformers" and eval_engine("vllm") == "vllm"
    assert MmprModel("m", engine="hf", cache_dir=tmp_path).engine_name == "transformers"
    with pytest.raises(UnknownName, match="did you mean 'transformers'"):
        eval_engine("transformer")
    with pytest.raises(UserError, match="--engine ray-llm: evaluations answer with transformers or vllm"):
        eval_engine("ray-llm")


def test_the_engine_starts_only_when_something_is_missing(tmp_path):
    model = MmprModel("no/such-model", cache_dir=tmp_path)
    assert model._engine is None and model.generate_until([]) == []
    assert model._engine is None


class _FlakyEngine:
    """Fails the first request of its first call with a timeout; answers everything else."""

    name = "flaky"

    def __init__(self):
        self.calls, self.asked = 0, []

    def generate(self, requests, sampling):
        self.calls += 1
        self.asked += [r.key for r in requests]
        return [EngineError("timeout", "no answer in 60 s") if self.calls == 1 and i == 0 else
                [Completion("Final answer: 1", 3, 3, "stop")] for i, _ in enumerate(requests)]


def test_engine_failures_are_counted_by_cause_not_cached_and_asked_again(tmp_path):
    engine = _FlakyEngine()

    def instances():
        return [Instance("generate_until", (f"question {i}", {"max_new_tokens": 8}, lambda doc: [], i, "t", "test"),
                         idx=0, metadata={"task": "t", "doc_id": i, "repeats": 1}) for i in range(3)]

    model = MmprModel("m", cache_dir=tmp_path, engine_instance=engine)
    model.task_dict = {"t": {"test": {i: {} for i in range(3)}}}
    assert model.generate_until(instances()) == ["", "Final answer: 1", "Final answer: 1"]
    assert dict(model.failures) == {"timeout": 1} and len(model.cache.responses) == 2
    rerun = MmprModel("m", cache_dir=tmp_path, engine_instance=engine)
    rerun.task_dict = model.task_dict
    assert rerun.generate_until(instances()) == ["Final answer: 1"] * 3
    assert len(engine.asked) == 4 and engine.asked[3] == engine.asked[0], "only the failed one is asked again"
    assert not rerun.failures


class _SamplingEngine:
    """Greedy: "Final answer: 0"; sampled: answer i for the i-th of the n samples asked for; records each call."""

    name = "sampling"

    def __init__(self):
        self.calls = []

    def generate(self, requests, sampling):
        self.calls.append((sampling.temperature, [(r.key, r.n, r.seed) for r in requests]))
        return [[Completion(f"<think>hm</think>Final answer: {i if sampling.temperature else 0}", 3, 3, "stop")
                 for i in range(r.n)] for r in requests]


def _instances(n=2):
    return [Instance("generate_until", (f"question {i}", {"max_new_tokens": 8}, lambda doc: [], i, "t", "test"),
                     idx=0, metadata={"task": "t", "doc_id": i, "repeats": 1}) for i in range(n)]


def test_k_samples_per_item_are_cached_each_under_its_own_key_and_a_rerun_resumes(tmp_path):
    engine = _SamplingEngine()
    model = MmprModel("m", cache_dir=tmp_path, engine_instance=engine, samples=3, temperature=0.7,
                      strip_thinking=True, style="direct")
    model.task_dict = {"t": {"test": {i: {} for i in range(2)}}}
    assert model.generate_until(_instances()) == ["Final answer: 0"] * 2, "the think span stripped"
    assert model.raw[("t", 0)] == "<think>hm</think>Final answer: 0"
    assert model.sampled[("t", 1)] == [f"Final answer: {i}" for i in range(3)]
    (greedy_t, greedy), (sampled_t, sampled) = engine.calls
    assert greedy_t == 0 and [n for _, n, _ in greedy] == [1, 1] and {s for _, _, s in greedy} == {0}
    assert sampled_t == 0.7 and [n for _, n, _ in sampled] == [3, 3] and len({s for _, _, s in sampled}) == 2
    assert len(model.cache.responses) == 2 + 6
    # a run killed after the first sample of item 1 was cached: the rerun asks only for the two missing
    lines = (tmp_path / "responses.jsonl").read_text().splitlines()
    (tmp_path / "responses.jsonl").write_text("\n".join(lines[:6]) + "\n")
    rerun = MmprModel("m", cache_dir=tmp_path, engine_instance=engine, samples=3, temperature=0.7)
    rerun.task_dict = model.task_dict
    rerun.generate_until(_instances())
    temperature, [(key, n, _)] = engine.calls[2]
    assert temperature == 0.7 and n == 2 and key == sampled[1][0].removesuffix(":0") + ":1"
    assert len(rerun.sampled[("t", 1)]) == 3
    more = MmprModel("m", cache_dir=tmp_path, engine_instance=engine, samples=3, temperature=0.7)
    more.task_dict = model.task_dict
    more.generate_until(_instances())
    assert len(engine.calls) == 3, "everything cached: the engine is not asked"
