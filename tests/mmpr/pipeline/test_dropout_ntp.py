import pytest

from mmpr.pipeline.dropout_ntp import continuation_prefix, dropout_ntp_pair, truncate_words, without_images
from mmpr.schemas import SourceItem

ITEM = SourceItem(id="c/7", source="coco", category="general_vqa", question="Describe.", images=["/a.png"],
                  answer=None, answer_type=None)


def test_truncate_keeps_the_first_half_of_the_words_with_their_spacing():
    assert truncate_words("one two  three\nfour five six", 0.5) == "one two  three"
    assert truncate_words("a b c d e", 0.5) == "a b"
    assert truncate_words("a b c d", 0.25) == "a"
    assert truncate_words("single", 0.5) == ""
    with pytest.raises(ValueError):
        truncate_words("a b", 1.0)


def test_prefix_needs_something_left_to_continue():
    assert continuation_prefix("A red car.") == "A"
    assert continuation_prefix("Car.") is None


def test_pair_is_chosen_vs_prefix_plus_continuation():
    pair = dropout_ntp_pair(ITEM, "Describe.", "A red car on a road.", "A red car", " with four wheels.")
    assert pair.chosen == "A red car on a road." and pair.rejected == "A red car with four wheels."
    assert pair.kind == "dropout_ntp" and pair.subset == "coco_prefix_pair_sr0.5_wo_image"
    assert pair.images == ["/a.png"] and pair.metadata["prefix_words"] == 3
    assert dropout_ntp_pair(ITEM, "q", "A red car on a road.", "A red car", " on a road.") is None
    assert dropout_ntp_pair(ITEM, "q", "A red car on a road.", "A red car", "  ") is None


def test_questions_lose_their_image_placeholders():
    assert without_images("<image>\nWhat is shown?") == "What is shown?"
    assert without_images("Compare <image> and <image>.") == "Compare and ."
