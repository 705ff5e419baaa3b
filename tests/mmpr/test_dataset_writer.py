import json

import pytest
from datasets import load_dataset

from mmpr.dataset_writer import SubsetInput, open_dataset, read_manifest, subsets_of, write_dataset
from mmpr.schemas import PreferencePair
from mmpr.testing import tiny_images


@pytest.fixture
def image_files(tmp_path):
    paths = []
    for i, img in enumerate(tiny_images(4, size=(96, 96))):
        path = tmp_path / "src" / "imgs" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        paths.append(path)
    return paths


def _pair(i, subset, images, kind="correctness", **kw):
    return PreferencePair(id=f"{subset}/{i}", subset=subset, question=f"Question {i}?", images=[str(p) for p in images],
                          chosen=f"Because {i}. Final answer: A", rejected=f"Because not {i}. Final answer: B",
                          kind=kind, source=subset.split("_")[0], category="science", answer_gt="A",
                          metadata={"i": i}, **kw)


def test_load_dataset_reads_rows_images_and_subsets(tmp_path, image_files):
    a = [_pair(i, "ai2d_correct", image_files[i % 2:i % 2 + 1]) for i in range(5)]
    b = [_pair(i, "text_dropout", [], kind="dropout_ntp") for i in range(3)]
    out = tmp_path / "ds"
    manifest = write_dataset(out, [SubsetInput("ai2d_correct", a, tmp_path / "src"),
                                   SubsetInput("text_dropout", b)], name="demo", version="1.2.3")
    assert manifest.num_pairs == 8
    assert manifest.subsets["ai2d_correct"].kinds == {"correctness": 5}
    assert manifest.subsets["text_dropout"].kinds == {"dropout_ntp": 3}
    assert manifest.lengths["question"].max == 2

    everything = load_dataset(str(out), split="train")
    assert len(everything) == 8
    one = load_dataset(str(out), "ai2d_correct", split="train")
    assert one["id"] == [p.id for p in a]
    row = one[1]
    assert row["images"][0].size == (96, 96) and row["images"][0].mode == "RGB"
    assert json.loads(row["metadata"]) == {"i": 1}
    assert row["answer_gt"] == "A" and row["kind"] == "correctness"
    raw = next(iter(open_dataset(out, subset="ai2d_correct", decode_images=False)))
    assert raw["images"][0]["path"] == "imgs/0.png"
    assert raw["images"][0]["bytes"] == image_files[0].read_bytes()
    assert load_dataset(str(out), "text_dropout", split="train")[0]["images"] == []
    assert subsets_of(out) == ["ai2d_correct", "text_dropout"]
    assert read_manifest(out) == manifest


def test_shards_are_bounded(tmp_path, image_files):
    pairs = [_pair(i, "big", image_files) for i in range(40)]
    write_dataset(tmp_path / "ds", [SubsetInput("big", pairs)], name="x", max_shard_bytes=20_000, rows_per_group=4)
    shards = sorted((tmp_path / "ds" / "data" / "big").glob("*.parquet"))
    assert len(shards) > 3
    assert len(load_dataset(str(tmp_path / "ds"), split="train")) == 40


def test_interrupted_write_keeps_the_previous_dataset(tmp_path, image_files):
    out = tmp_path / "ds"
    write_dataset(out, [SubsetInput("s", [_pair(0, "s", [])])], name="x")

    def exploding():
        yield _pair(1, "s", [])
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_dataset(out, [SubsetInput("s", exploding())], name="x")
    assert read_manifest(out).num_pairs == 1
    assert load_dataset(str(out), split="train")["id"] == ["s/0"]
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


def test_pairs_must_match_their_subset(tmp_path):
    with pytest.raises(ValueError, match="belongs to subset 'other'"):
        write_dataset(tmp_path, [SubsetInput("s", [_pair(0, "other", [])])], name="x")


def test_alike_named_folders_do_not_share_a_cache(tmp_path):
    for parent, n in (("a", 2), ("b", 3)):
        write_dataset(tmp_path / parent / "data", [SubsetInput("s", [_pair(i, "s", []) for i in range(n)])], name="x")
    assert [len(open_dataset(tmp_path / p / "data", streaming=False)) for p in ("a", "b")] == [2, 3]
