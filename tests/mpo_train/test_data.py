import pytest
from transformers import AutoProcessor

from mmpr.problems import Problem
from mmpr.testing import tiny_images, write_release
from mpo_train.data import PairDataset, PairEncoder, open_pairs, prepare
from tests.mpo_train.conftest import write_pairs


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return AutoProcessor.from_pretrained(tiny_model_dir("qwen2_vl"))


def test_prompt_and_responses_split_where_the_template_does(processor, pair_rows):
    encoder = PairEncoder(processor, max_length=1024)
    pair = encoder.encode(0, pair_rows[0])
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    prompt_text = processor.tokenizer.decode(pair.prompt)
    assert prompt_text.endswith("<|im_start|>assistant\n")
    assert pair.prompt.count(image_pad) == int(pair.mm["image_grid_thw"].prod() // 4)
    # the newline the template renders after <|im_end|> is not trained
    assert processor.tokenizer.decode(pair.chosen) == "I count three shapes. Final answer: 3<|im_end|>"
    assert image_pad not in pair.chosen + pair.rejected
    assert set(pair.mm) == {"pixel_values", "image_grid_thw"}, "every processor output reaches the model"
    two = encoder.encode(1, pair_rows[1])
    assert two.mm["image_grid_thw"].shape[0] == 2
    text_only = encoder.encode(2, pair_rows[2])
    assert text_only.mm == {} and image_pad not in text_only.prompt


def test_truncation_cuts_responses_never_image_tokens(processor, pair_rows):
    full = PairEncoder(processor, max_length=1024).encode(0, pair_rows[0])
    room = len(full.prompt) + 10
    cut = PairEncoder(processor, max_length=room).encode(0, pair_rows[0])
    assert cut.truncated and cut.prompt == full.prompt
    assert cut.chosen == full.chosen[:10] and len(cut.rejected) == 10
    skipped = PairEncoder(processor, max_length=room, truncate_responses=False).encode(0, pair_rows[0])
    assert isinstance(skipped, Problem) and skipped.code == "response_too_long"
    too_small = PairEncoder(processor, max_length=len(full.prompt) + 2).encode(0, pair_rows[0])
    assert isinstance(too_small, Problem) and too_small.code == "prompt_too_long"
    assert f"the prompt takes {len(full.prompt)} tokens" in too_small.message


def test_prepare_skips_counts_and_caches(processor, pair_dataset, tmp_path):
    encoder = PairEncoder(processor, max_length=42)
    prepared = prepare(pair_dataset, encoder, tmp_path, progress=False)
    assert prepared.kept == [0, 2] and prepared.skipped == {"prompt_too_long": 1}
    assert "pair b" in prepared.examples[0]
    assert "2 pairs ready, 1 skipped (prompt_too_long: 1)" in prepared.describe()
    assert len(list(tmp_path.glob("prepared-*.json"))) == 1
    again = prepare(pair_dataset, encoder, tmp_path, progress=False)
    assert again == prepared
    dataset = PairDataset(pair_dataset, encoder, prepared.kept)
    assert len(dataset) == 2 and dataset[1].index == 2


def test_open_pairs_reads_dataset_folders_and_release_layouts(tmp_path):
    folder = write_pairs(tmp_path / "a", 10)
    data = open_pairs([str(folder)])
    assert len(data) == 10 and data.column_names == ["id", "question", "images", "chosen", "rejected"]
    assert data[0]["images"][0].mode == "RGB" and data[4]["images"] == []
    release = write_release(tmp_path / "rel", {"x_pairs_vqa_correctness_rules": [
        {"image": "i.png", "question": "q?", "chosen": "yes", "rejected": "no"}]}, images={"i.png": tiny_images(1)[0]})
    both = open_pairs([str(folder), str(release)], limit=11)
    assert len(both) == 11 and both[10]["id"] == "x_pairs_vqa_correctness_rules/1"
    assert len(open_pairs([str(folder)], subsets=["toy"])) == 10


def _release_with_bad_rows(folder):
    rows = [{"image": "i.png", "question": f"q{i}?", "chosen": "yes", "rejected": "no"} for i in range(6)]
    rows[1] = '{"question": "cut off'
    rows[4] = {"image": "gone.png", "question": "q?", "chosen": "yes", "rejected": "no"}
    return write_release(folder, {"x_pairs_vqa_correctness_rules": rows}, images={"i.png": tiny_images(1)[0]})


def test_a_release_folders_bad_rows_reach_the_caller_also_from_the_cache(tmp_path, processor):
    from mmpr.problems import ProblemLog

    release = _release_with_bad_rows(tmp_path / "rel")
    for _ in range(2):  # the second time the rows come from datasets' cache
        problems = ProblemLog()
        data = open_pairs([str(release)], problems=problems)
        assert len(data) == 4
        assert problems.counts == {"malformed_json": 1, "image_missing": 1}
        assert [p.line for p in problems.items] == [2, 5]
    prepared = prepare(data, PairEncoder(processor, max_length=1024), tmp_path / "cache", progress=False,
                       problems=problems)
    assert prepared.describe() == "4 pairs ready, 2 skipped (image_missing: 1, malformed_json: 1)"
    assert prepared.examples[0].startswith(f"{release / 'annotations' / 'x_pairs_vqa_correctness_rules.jsonl'}:2")


def test_supervised_rows_become_pairs_for_the_sft_term_alone(tmp_path):
    import json
    import re

    from mmpr.errors import UserError

    image = tmp_path / "a.png"
    tiny_images(1)[0].save(image)
    rows = tmp_path / "sft.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "question": f"q{i}", "images": [str(image)],
                                        "response": f"answer {i}"}) + "\n" for i in range(3)))
    with pytest.raises(UserError, match=rf"^{re.escape(str(rows))}: supervised rows .* no rejected answer .*"
                                        r"loss_weights=\[0,0,1\]\)$") as refused:
        open_pairs([str(rows)])
    assert "\n" not in str(refused.value)
    data = open_pairs([str(rows)], allow_sft=True)
    assert data["chosen"] == ["answer 0", "answer 1", "answer 2"] and data["rejected"] == ["", "", ""]
    assert data[0]["images"][0].size == tiny_images(1)[0].size
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "images": [str(image)]}) + "\n")
    with pytest.raises(UserError, match=rf"^{re.escape(str(bad))}: the rows have no column response"):
        open_pairs([str(bad)], allow_sft=True)


@pytest.fixture
def pixel_limit(monkeypatch):
    """Sets this process's image pixel limit; the default comes back after the test, whatever happens in it."""
    from mmpr.images import MAX_PIXELS_ENV, set_max_pixels

    def use(limit: int) -> None:
        monkeypatch.setenv(MAX_PIXELS_ENV, str(limit))
        set_max_pixels(None)

    yield use
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    set_max_pixels(None)


def test_pairs_whose_images_are_missing_unreadable_or_too_large_are_skipped_and_counted(tmp_path, processor,
                                                                                       pixel_limit):
    import json

    from PIL import Image

    good, garbled, big = tmp_path / "good.png", tmp_path / "garbled.png", tmp_path / "big.png"
    tiny_images(1)[0].save(good)
    garbled.write_bytes(b"\x89PNG but not an image")
    Image.new("RGB", (80, 50)).save(big)  # over the limit, under twice it (where PIL refuses to decode)
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (200, 100)).save(bomb)
    images = [good, garbled, tmp_path / "missing.png", big, good, bomb]
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "question": "How many?", "images": [str(p)],
                                        "chosen": "Three. Final answer: 3", "rejected": "Two. Final answer: 2"}) + "\n"
                            for i, p in enumerate(images)))
    pixel_limit(64 * 48)
    encoder = PairEncoder(processor, max_length=1024)
    prepared = prepare(open_pairs([str(rows)]), encoder, tmp_path / "cache", progress=False)
    assert prepared.kept == [0, 4]
    assert prepared.skipped == {"image_unreadable": 1, "image_missing": 1, "image_too_large": 2}
    assert any("pair r1" in e and "cannot be decoded" in e for e in prepared.examples)
    assert any("pair r2" in e and "missing.png" in e for e in prepared.examples)
    assert any("pair r3" in e and "80 x 50 px, the limit is 3,072 pixels" in e for e in prepared.examples)
    assert any("pair r5" in e and "the limit is 3,072 pixels" in e for e in prepared.examples)
    # a higher limit admits the large images: the limit is part of the prepared cache's key
    pixel_limit(200 * 100)
    assert prepare(open_pairs([str(rows)]), encoder, tmp_path / "cache", progress=False).kept == [0, 3, 4, 5]
