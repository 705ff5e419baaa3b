import pytest

from mmpr.chat import conversation
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


def test_greedy_requests_run_batched_and_answer_as_one_at_a_time(tiny_model_dir, tmp_path):
    from mmpr.engines import Request
    from mmpr.testing import tiny_images

    paths = []
    for i, image in enumerate(tiny_images(3, size=(56, 56))):
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    requests = [Request("a", "How many circles?", (paths[0],)), Request("b", "What colour is the big square?",
                                                                           (paths[1],)),
                Request("c", "Is it red?", (paths[2],))]
    greedy = SamplingConfig(temperature=0.0, max_tokens=6)
    batched = make_engine("transformers", str(tiny_model_dir("qwen2_vl")), batch_size=3)
    single = make_engine("transformers", str(tiny_model_dir("qwen2_vl")), batch_size=1)
    together = batched.generate(requests, greedy)
    alone = single.generate(requests, greedy)
    assert [r[0].text for r in together] == [r[0].text for r in alone]
    assert [r[0].prompt_tokens for r in together] == [r[0].prompt_tokens for r in alone]
    # a tokenizer without a padding token (InternVL2's, converted) cannot pad a batch: one at a time instead
    batched.processor.tokenizer.pad_token = None
    assert batched.processor.tokenizer.pad_token_id is None
    assert [r[0].text for r in batched.generate(requests, greedy)] == [r[0].text for r in alone]


def test_a_multi_image_question_is_encoded_as_in_training(tiny_model_dir, tmp_path):
    """LLaVA-OneVision tiles a lone image (anyres) but not the images of a multi-image sample: the engine passes
    one list of images per question, as the training encoder does, so both see the same image tokens."""
    from mmpr.engines import Request
    from mmpr.loading import load_processor
    from mmpr.testing import tiny_images
    from mpo_train.data import PairEncoder

    path = tiny_model_dir("llava_onevision")
    images = tiny_images(2, size=(90, 70))
    paths = [str(tmp_path / f"{i}.png") for i in range(2)]
    for image, p in zip(images, paths, strict=True):
        image.save(p)
    engine = make_engine("transformers", str(path))
    (completion,) = engine.generate([Request("a", "Compare them.", tuple(paths))], SamplingConfig(max_tokens=2, n=1))
    pair = PairEncoder(load_processor(path), max_length=1024).encode(0, {"question": "Compare them.", "images": images,
                                                                        "chosen": "yes", "rejected": "no"})
    assert completion[0].prompt_tokens == len(pair.prompt)


@pytest.mark.parametrize("family", ["gemma3", "llava", "internvl"])
def test_greedy_batches_give_one_image_list_per_text(tiny_model_dir, tmp_path, family):
    """Gemma 3's processor refuses a flat image list for a batch of texts; a text-only request in the batch gets an
    empty list; and the <bos> its template renders is not doubled."""
    from mmpr.engines import Request
    from mmpr.testing import tiny_images

    paths = []
    for i, image in enumerate(tiny_images(2, size=(64, 48))):
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    requests = [Request("a", "How many circles?", (paths[0],)), Request("b", "What is 2 + 2?", ()),
                Request("c", "Compare <image> and <image>.", (paths[0], paths[1]))]
    greedy = SamplingConfig(temperature=0.0, max_tokens=4)
    batched = make_engine("transformers", str(tiny_model_dir(family)), batch_size=3)
    assert batched._batched(requests, greedy) is not None, "the batch ran as one generate"
    together = batched.generate(requests, greedy)
    batched.batch_size = 1
    alone = batched.generate(requests, greedy)
    assert [r[0].prompt_tokens for r in together] == [r[0].prompt_tokens for r in alone]
    assert [r[0].text for r in together] == [r[0].text for r in alone]
    bos = batched.processor.tokenizer.bos_token_id
    if bos is not None:
        prompt = batched.processor.apply_chat_template(conversation("hi", 0), add_generation_prompt=True,
                                                       tokenize=False)
        assert prompt.startswith(batched.processor.tokenizer.bos_token)
        assert together[1][0].prompt_tokens == len(batched.processor.tokenizer(
            batched.processor.apply_chat_template(conversation("What is 2 + 2?", 0), add_generation_prompt=True,
                                                  tokenize=False), add_special_tokens=False)["input_ids"])
