from mmpr.engines import Completion, EngineError, make_engine
from mmpr.schemas import SamplingConfig


def test_transformers_engine_samples_seeded_continues_and_reports_errors(tiny_model_dir, requests_):
    engine = make_engine("transformers", str(tiny_model_dir("qwen2_vl")))
    sampling = SamplingConfig(max_tokens=8)
    one, two, cont, long = engine.generate(requests_, sampling)
    assert len(one) == 3 and len(two) == 2 and len(cont) == 1
    assert all(isinstance(c, Completion) and c.completion_tokens <= 8 and c.prompt_tokens > 0 for c in one)
    assert two[0].prompt_tokens > one[0].prompt_tokens, "two images take more prompt tokens than one"
    assert [c.text for c in engine.generate(requests_[:1], sampling)[0]] == [c.text for c in one]
    assert isinstance(long, EngineError) and long.code == "prompt_too_long"
