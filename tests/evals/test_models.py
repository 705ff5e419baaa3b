import json

from evals.models import MmprModel, ResponseCache


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


def test_the_engine_starts_only_when_something_is_missing(tmp_path):
    model = MmprModel("no/such-model", cache_dir=tmp_path)
    assert model._engine is None and model.generate_until([]) == []
    assert model._engine is None
