import pytest
import torch

from mpo_train.health import TrendWatch, check_saved_model, check_weights, probe_scores, repetition_score


def test_repetition_score_separates_a_loop_from_prose():
    prose = "The red circle is left of the square, so we count three shapes in all. Final answer: 3"
    loop = "the answer is the answer is the answer is the answer is the answer is"
    assert repetition_score(prose) == 0.0
    assert repetition_score(loop) > 0.6
    assert repetition_score("too short") == 0.0


def test_probe_scores_use_the_judge_for_unparsable_answers():
    responses = ["First I count the red shapes, then the blue ones, and add them. Final answer: 5",
                 "5 5 5 5 5 5 5 5 5 5"]
    scores = probe_scores(responses, [20, 10])
    assert scores["probe_unparsable_rate"] == 0.5
    assert scores["probe_mean_length"] == 15
    assert scores["probe_repetition"] > 0.3


def _feed(watch, chosen_logratios, margins):
    out = []
    for step, (c, m) in enumerate(zip(chosen_logratios, margins, strict=True), 1):
        out += watch.observe(step, {"rewards_chosen": watch.beta * c, "rewards_margin": m})
    return out


def test_trend_watch_flags_a_steady_fall_of_the_chosen_log_prob_once():
    watch = TrendWatch(beta=0.1)
    warnings = _feed(watch, [-1, -3, -5, -8, -12, -15, -20], [1, 2, 3, 3, 4, 4, 5])
    assert len(warnings) == 1 and "chosen responses" in warnings[0]


def test_trend_watch_is_quiet_on_noise_and_flags_an_exploding_margin():
    assert _feed(TrendWatch(beta=0.1), [1, -3, 2, -4, 1, -2, 0], [1, 0.5, 1, 2, 1, 1.5, 1]) == []
    warnings = _feed(TrendWatch(beta=0.1), [1, 2, 1, 2, 1, 2, 1], [5, 10, 18, 25, 40, 60, 90])
    assert len(warnings) == 1 and "margin" in warnings[0]


def test_check_weights_finds_zeroed_and_nan_matrices():
    good = {"w": torch.randn(3, 3), "bias": torch.zeros(3)}
    assert check_weights(good) == []
    problems = check_weights({"w": torch.zeros(3, 3), "v": torch.tensor([[1.0, float("nan")]])})
    assert problems == ["w: all zeros", "v: NaN or inf values"]
    assert check_weights({"vision.cls_token": torch.zeros(1, 1, 4)}, {"model.vision.cls_token"}) == [], \
        "zero before training (frozen) is no finding"
    assert check_weights({}) == ["no tensors"]
    assert check_weights({"w": torch.empty(0)}) == ["w: empty (a sharded parameter saved without gathering)"]


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_check_weights_finds_infinities(value):
    assert check_weights({"w": torch.tensor([[value, 1.0]])}) == ["w: NaN or inf values"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llama4_bf16_pixels_probe_and_reload_in_the_runs_dtype(tiny_model_dir, dtype):
    """Llama 4's image processor returns bf16 pixels: the probe casts them to the model's dtype, and the saved
    model is reloaded in the dtype the run trained in."""
    from mmpr.loading import load_processor
    from mmpr.testing import tiny_images

    path = tiny_model_dir("llama4")
    processor = load_processor(path)
    image = tiny_images(1, size=(90, 70))[0]
    assert processor(text=["<|image|>"], images=[image], return_tensors="pt")["pixel_values"].dtype == torch.bfloat16
    assert check_saved_model(path, processor, ("How many?", [image]), dtype=dtype) == []


def test_probe_prompt_uses_the_runs_chat_template_options(tiny_model_dir):
    """A run trained with enable_thinking=false is probed with the same generation prompt (Qwen3.5)."""
    from transformers import AutoProcessor

    from mpo_train.health import _probe_inputs

    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen3_5"))
    ends = {}
    for thinking in (True, False):
        _, inputs = _probe_inputs(processor, "What is 2 + 2?", [], {"enable_thinking": thinking})
        ends[thinking] = processor.tokenizer.decode(inputs["input_ids"][0])
    assert ends[True].endswith("<think>\n") and ends[False].endswith("<think>\n\n</think>\n\n")
