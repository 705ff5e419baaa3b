import pytest

from mmpr.engines import ENGINE_REGISTRY, make_engine, request_seed
from mmpr.engines.base import error_code
from mmpr.registry import UnknownName


def test_request_seed_depends_on_seed_and_key_only():
    assert request_seed(0, "a/1") == request_seed(0, "a/1")
    assert len({request_seed(0, "a/1"), request_seed(1, "a/1"), request_seed(0, "a/2")}) == 3
    assert 0 <= request_seed(123, "x") < 2**31


@pytest.mark.parametrize("message, code", [
    ("This model's maximum context length is 1024 tokens.", "prompt_too_long"),
    ("prompt is longer than the maximum model length", "prompt_too_long"),
    ("CUDA out of memory", "engine_error"),
])
def test_error_codes(message, code):
    assert error_code(message) == code


def test_unknown_engine():
    with pytest.raises(UnknownName, match=r"unknown engine 'tgi'; available: openai, ray-llm, transformers, vllm"):
        make_engine("tgi", "m")
    with pytest.raises(UnknownName, match=r"did you mean 'vllm'"):
        make_engine("vlm", "m")


def test_one_name_per_engine_and_the_old_names_resolve():
    from mmpr.build.ray_llm import ProcessorEngine
    from mmpr.engines.hf_engine import TransformersEngine

    with pytest.warns(DeprecationWarning, match="use transformers"):
        assert ENGINE_REGISTRY.canonical("hf") == "transformers"
    assert ENGINE_REGISTRY.get("transformers") is TransformersEngine
    assert ENGINE_REGISTRY.get("ray-llm") is ProcessorEngine
    engine = make_engine("ray-llm", "m", processor=lambda ds: ds, blocks=2)
    assert (engine.name, engine.model, engine.blocks) == ("ray-llm", "m", 2)
