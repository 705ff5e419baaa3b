import json

import pytest
from datasets import load_dataset

from mmpr.chat import with_placeholders
from mmpr.convert import convert
from mmpr.export import export, user_content
from mmpr.problems import ProblemLog
from mmpr.release import iter_subset, read_meta
from mmpr.testing import tiny_images, write_release
from tests.mmpr.real_meta import load_meta, write_real_release


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    imgs = tiny_images(3)
    write_release(root, {
        "geo_pairs_vqa_correctness_rules": [
            {"image": "geo/0.png", "question": "<image>\nFind x.", "chosen": "x = 2. Final answer: 2",
             "rejected": "x = 3. Final answer: 3", "answer_gt": "2", "chosen_meta": {"s": 1}, "image_wh": [[64, 48]]},
            {"image": ["geo/1.png", "geo/2.jpg"], "question": "Compare <image> with <image>.",
             "chosen": "Same. Final answer: yes", "rejected": "Final answer: no"},
        ],
        "misc_prefix_pair_sr0.5_wo_image": [{"image": "geo/1.png", "question": "Describe.", "chosen": "A red box.",
                                             "rejected": "A red car with wheels."},
                                            {"question": "Text only", "chosen": "one", "rejected": "two"}],
    }, images={"geo/0.png": imgs[0], "geo/1.png": imgs[1], "geo/2.jpg": imgs[2]})
    out = tmp_path_factory.mktemp("dataset")
    convert(root, out, progress=False)
    return root, out


def _pairs(root):
    log = ProblemLog()
    return [p for s in read_meta(root) for p in iter_subset(s, log)]


def test_placeholders():
    assert with_placeholders("Q?", 2) == "<image><image>\nQ?"
    assert with_placeholders("A <image> B", 1) == "A <image> B"
    assert user_content("Look: <image>\nWhat?", 1) == [{"type": "text", "text": "Look: "},
                                                        {"type": "image", "text": None},
                                                        {"type": "text", "text": "What?"}]


def test_mmpr_round_trip_is_byte_identical(dataset, tmp_path):
    root, out = dataset
    export(out, "mmpr", tmp_path, progress=False)
    before, after = _pairs(root), _pairs(tmp_path)
    assert len(before) == len(after) == 4
    for a, b in zip(before, after, strict=True):
        assert a.model_dump(exclude={"images"}) == b.model_dump(exclude={"images"})
        assert [open(p, "rb").read() for p in a.images] == [open(p, "rb").read() for p in b.images]
    rows = [json.loads(line) for line in (tmp_path / "annotations" / "geo_pairs_vqa_correctness_rules.jsonl").open()]
    originals = [json.loads(line) for line in (root / "annotations" / "geo_pairs_vqa_correctness_rules.jsonl").open()]
    assert rows == originals


def test_trl_format_renders_through_trl_and_a_processor(dataset, tmp_path, tiny_model_dir):
    from transformers import AutoProcessor
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    _, out = dataset
    export(out, "trl", tmp_path, progress=False)
    ds = load_dataset(str(tmp_path), split="train")
    assert len(ds) == 4 and set(ds.column_names) == {"prompt", "chosen", "rejected", "images"}
    row = ds[1]
    assert len(row["images"]) == 2 and row["images"][0].mode == "RGB"
    assert is_conversational(row)
    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen2_vl"))
    text = maybe_apply_chat_template(row, processor)
    assert text["prompt"].count("<|image_pad|>") == 2
    assert text["prompt"].endswith("<|im_start|>assistant\n")
    assert text["chosen"].startswith("Same. Final answer: yes")


def test_swift_and_llamafactory_shapes(dataset, tmp_path):
    _, out = dataset
    export(out, "swift", tmp_path / "swift", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "swift" / "mmpr.jsonl").open()]
    assert len(rows) == 4
    for row in rows:
        assert set(row) == {"messages", "rejected_response", "images"}
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["messages"][0]["content"].count("<image>") == len(row["images"])
        assert all(open(p, "rb").read()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0") for p in row["images"])

    export(out, "llamafactory", tmp_path / "lf", progress=False)
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())["mmpr"]
    assert info["formatting"] == "sharegpt" and info["ranking"] is True
    ds = load_dataset("json", data_files=str(tmp_path / "lf" / info["file_name"]), split="train")
    row = ds[0]
    assert row[info["columns"]["messages"]] == [{"from": "human", "value": "<image>\nFind x."}]
    assert row["chosen"] == {"from": "gpt", "value": "x = 2. Final answer: 2"}
    assert (tmp_path / "lf" / row["images"][0]).is_file()


def test_mmpr_export_gives_back_the_release_names_of_renamed_subsets(tmp_path):
    release = write_real_release(tmp_path / "MMPR", load_meta("v1.0_meta_entries.json"))
    convert(release, tmp_path / "ds", progress=False)
    export(tmp_path / "ds", "mmpr", tmp_path / "back", progress=False)
    meta = json.loads((tmp_path / "back" / "meta.json").read_text())
    assert set(meta) == {"openbmb/RLAIF-V-Dataset",
                         "scienceqa_multi_choice_en_20240402_extracted_pairs_vqa_format_rules"}
    assert meta["openbmb/RLAIF-V-Dataset"]["annotation"] == "annotations/openbmb__RLAIF-V-Dataset.jsonl"
    before, after = _pairs(release), _pairs(tmp_path / "back")
    assert [(p.id, p.subset, p.question) for p in before] == [(p.id, p.subset, p.question) for p in after]


def test_an_unknown_format_is_one_line_with_the_formats_before_anything_is_written(dataset, tmp_path, capsys):
    from mmpr.export import FORMATS, main
    from mmpr.registry import UnknownName

    assert FORMATS == ("llamafactory", "mmpr", "swift", "trl")
    _, out = dataset
    with pytest.raises(UnknownName, match=r"unknown export format 'tlr' \(did you mean 'trl'\?\); available: "
                                          r"llamafactory, mmpr, swift, trl"):
        export(out, "tlr", tmp_path / "x", progress=False)
    assert main([str(out), "--format", "swfit", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'swift'" in err[0]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
