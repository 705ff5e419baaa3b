import json

import pytest
from datasets import load_dataset

from mmpr.dataset_writer import (
    EmptyDatasetError,
    SubsetInput,
    config_name,
    open_dataset,
    read_manifest,
    subsets_of,
    write_dataset,
)
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


@pytest.mark.parametrize("subset, config", [
    ("openbmb/RLAIF-V-Dataset", "openbmb__RLAIF-V-Dataset"),
    ("geoqa+_extracted_en_version_pairs_vqa_format_rules", "geoqa+_extracted_en_version_pairs_vqa_format_rules"),
    ("wildvision_gpt4o_en_20240903.jsonl_extracted_sr0.5_with_image",
     "wildvision_gpt4o_en_20240903.jsonl_extracted_sr0.5_with_image"),
    ("a:b|c?*", "a_b_c__"),
])
def test_config_names_are_valid_for_datasets(subset, config):
    from datasets import BuilderConfig

    assert config_name(subset) == config
    BuilderConfig(name=config)  # raises on the characters datasets refuses


def test_odd_names_collisions_and_empty_subsets(tmp_path):
    out = tmp_path / "ds"
    manifest = write_dataset(out, [
        SubsetInput("openbmb/RLAIF-V-Dataset", [_pair(i, "openbmb/RLAIF-V-Dataset", []) for i in range(3)]),
        SubsetInput("openbmb__RLAIF-V-Dataset", [_pair(0, "openbmb__RLAIF-V-Dataset", [])]),
        SubsetInput("all", [_pair(0, "all", [])]),
        SubsetInput("nothing_left", [], why_empty=lambda: "every row was bad"),
        SubsetInput("never_had_rows", []),
        SubsetInput("1_0", [_pair(0, "1_0", [])]),  # YAML 1.1 reads a bare 1_0 as the number 10
    ], name="x")
    assert list(manifest.subsets) == ["openbmb__RLAIF-V-Dataset", "openbmb__RLAIF-V-Dataset-2", "all-2", "1_0"]
    assert [i.release_name for i in manifest.subsets.values()] == ["openbmb/RLAIF-V-Dataset",
                                                                   "openbmb__RLAIF-V-Dataset", "all", None]
    assert manifest.extra["empty_subsets"] == {"nothing_left": "every row was bad", "never_had_rows": "no pairs"}
    assert subsets_of(out) == list(manifest.subsets)
    for config, n in (("openbmb__RLAIF-V-Dataset", 3), ("openbmb__RLAIF-V-Dataset-2", 1), ("all-2", 1), ("1_0", 1),
                      ("all", 6)):
        assert len(load_dataset(str(out), config, split="train")) == n
    slash = load_dataset(str(out), "openbmb__RLAIF-V-Dataset", split="train")
    assert slash["subset"] == ["openbmb/RLAIF-V-Dataset"] * 3
    card = (out / "README.md").read_text()
    assert "- `nothing_left`: every row was bad" in card and '"nothing_left"' not in card


def test_nothing_to_write_raises_and_keeps_the_previous_dataset(tmp_path):
    out = tmp_path / "ds"
    write_dataset(out, [SubsetInput("s", [_pair(0, "s", [])])], name="x")
    with pytest.raises(EmptyDatasetError, match=r"no pairs to write \(a: no pairs; b: why\)"):
        write_dataset(out, [SubsetInput("a", []), SubsetInput("b", [], why_empty=lambda: "why")], name="x")
    assert read_manifest(out).num_pairs == 1 and len(load_dataset(str(out), split="train")) == 1


def test_the_row_schema_is_the_pair_record():
    from mmpr.dataset_writer import ROW_COLUMNS, TRAINING_COLUMNS, features
    from mmpr.schemas import PreferencePair

    assert list(ROW_COLUMNS) == list(PreferencePair.model_fields)
    assert set(TRAINING_COLUMNS) <= set(ROW_COLUMNS)
    assert list(features(TRAINING_COLUMNS)) == list(TRAINING_COLUMNS)
    from datasets import Image, List, Value

    assert features()["images"] == List(Image()) and features()["metadata"] == Value("string")
