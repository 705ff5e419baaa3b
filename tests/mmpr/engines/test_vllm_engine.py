import pytest

from mmpr.engines import Completion, EngineError, make_engine
from mmpr.schemas import SamplingConfig


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = make_engine("vllm", str(tiny_model_dir("qwen2_vl")), max_model_len=1024, seed=0)
    yield engine
    engine.close()


def test_vllm_engine_batches_seeds_and_continues(engine, requests_):
    sampling = SamplingConfig(max_tokens=8, top_k=-1)
    one, two, cont, long = engine.generate(requests_, sampling)
    assert len(one) == 3 and len(two) == 2 and len(cont) == 1
    assert all(isinstance(c, Completion) and 0 < c.completion_tokens <= 8 for c in one + two + cont)
    assert two[0].prompt_tokens > one[0].prompt_tokens
    assert isinstance(long, EngineError) and long.code == "prompt_too_long"
    alone = engine.generate([requests_[1]], sampling)[0]
    assert [c.text for c in alone] == [c.text for c in two], "a request's samples do not depend on its batch"


def test_vllm_engine_recovers_from_a_failing_batch(engine, requests_, monkeypatch):
    calls = []
    real = engine._chat

    def flaky(requests, sampling):
        calls.append(len(requests))
        if len(requests) > 1:
            raise RuntimeError("CPU Generator does not use offset")
        return real(requests, sampling)

    monkeypatch.setattr(engine, "_chat", flaky)
    results = engine.generate(requests_[:2], SamplingConfig(max_tokens=4))
    assert calls == [2, 1, 1]
    assert all(isinstance(r, list) for r in results)
