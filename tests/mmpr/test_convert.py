import json

import httpx2
import pytest
from datasets import load_dataset
from huggingface_hub import constants
from huggingface_hub.utils import _http

from mmpr.convert import convert, main, parse_size
from mmpr.testing import tiny_images, write_release
from tests.mmpr.fake_hub import ENDPOINT, FakeHub
from tests.mmpr.real_meta import MAX_ROWS, expected_pairs, load_meta, write_real_release


@pytest.fixture
def release(tmp_path):
    rows = [{"image": "a.png", "question": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(5)]
    rows.insert(2, "{broken")
    return write_release(tmp_path / "rel", {"ai2d_pairs_vqa_correctness_rules": rows},
                         images={"a.png": tiny_images(1)[0]})


def test_convert_cli_writes_the_dataset_and_the_skip_report(release, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(release), "--out", str(out), "--version", "0.3.0", "--max-shard-size", "1MB"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 5 pairs in 1 subset(s)" in printed and "version 0.3.0" in printed
    assert "skipped: 1 skipped (malformed_json: 1)" in printed and ":3: not valid JSON" in printed
    report = json.loads((out / "skipped.json").read_text())
    assert report["counts"] == {"malformed_json": 1} and report["problems"][0]["line"] == 3
    assert report["problems"][0]["file"] == "annotations/ai2d_pairs_vqa_correctness_rules.jsonl", "inside the release"
    extra = json.loads((out / "manifest.json").read_text())["extra"]
    assert extra["skipped"] == {"malformed_json": 1} and extra["summary"] == "1 skipped (malformed_json: 1)"
    assert "Build summary: 1 skipped (malformed_json: 1)" in (out / "README.md").read_text()
    assert len(load_dataset(str(out), "ai2d_pairs_vqa_correctness_rules", split="train")) == 5


def test_convert_cli_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no meta.json" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path / "o"), "--push"]) == 2
    assert capsys.readouterr().err == "error: --push needs --repo-id ORG/NAME\n"


def test_convert_and_push(release, tmp_path, monkeypatch, capsys):
    fake = FakeHub()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", ENDPOINT)
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    try:
        assert main([str(release), "--out", str(tmp_path / "o"), "--push", "--repo-id", "org/mmpr", "--dry-run"]) == 0
        assert "dry run, nothing uploaded" in capsys.readouterr().out and not fake.repos
        assert main([str(release), "--out", str(tmp_path / "o"), "--push", "--repo-id", "org/mmpr"]) == 0
        assert "published org/mmpr@v1.0.0" in capsys.readouterr().out
        assert list(fake.repos["org/mmpr"].tags) == ["v1.0.0"]
    finally:
        _http.set_client_factory(_http.default_client_factory)


def test_sizes():
    assert parse_size("500MB") == 500 << 20 and parse_size("1.5GB") == int(1.5 * (1 << 30))
    assert parse_size("1024") == 1024


# Real meta entries of each release (tests/mmpr/data/mmpr_meta/README.md says where each comes from); the rows
# and images are made up. Each selection covers that release's path forms, repeat times and subset names.
REAL = {
    "v1.0": ("MMPR", "v1.0_meta_entries.json", None),
    "v1.1": ("MMPR-v1.1", "v1.1_internvl_dev_mpo_meta.json", [
        "openbmb/RLAIF-V-Dataset", "RLAIF-V-Dataset_sr0.5_wo_image", "internvl_watermark",
        "nlvr2_en_20240910_ov_pairs_vqa_correctness_rules", "nlvr2_en_20240910_ov_pairs_vqa_format_rules",
        "inat_train2018_merge_en_20240811_sr0.50_wo_image", "mavis_function_abs_pairs_vqa_direct_rules",
        "private_schedual_extract_zh_20241102_sr0.50_wo_image", "IAM_words_20241118check_ocr_correctness_rules",
        "geoqa+_extracted_en_version_pairs_vqa_correctness_rules",
        "wildvision_gpt4o_en_20240903.jsonl_extracted_sr0.5_with_image",
        "CLEVR_math_en_20240402_extracted_prefix_pair_sr0.0_with_image"]),
    "v1.2": ("MMPR-v1.2", "v1.2_meta.json", [
        "openbmb/RLAIF-V-Dataset", "CLEVR_math_en_20240402_extracted_pairs_vqa_format_rules",
        "geoqa+_extracted_en_version_pairs_vqa_correctness_rules", "nlvr2_en_20240910_ov_pairs_vqa_correctness_rules",
        "wildvision_gpt4o_en_20240903.jsonl_extracted_sr0.5_with_image",
        "gaokao_math_ocr_zh_20240623_sr0.50_wo_image", "m3cot_train_extracted_pairs_vqa_direct_rules",
        "ai2d_train_12k_en_20240410_extracted_prefix_pair_sr0.0_with_image",
        "cocorem_exist_yorn_en_20241016_pairs_vqa_format_rules"]),
    "v1.2 (MMPR-v1.2/ paths)": ("MMPR-v1.2", "v1.2_internvl_debug_mpo.json", None),
}


# v1.1: nlvr2 format rules at repeat_time 0.005; v1.2: CLEVR-Math format rules with length 0 in the real meta
EMPTY = {"v1.0": 0, "v1.1": 1, "v1.2": 1, "v1.2 (MMPR-v1.2/ paths)": 0}


def _card_configs(out):
    from huggingface_hub import DatasetCard

    return [c["config_name"] for c in DatasetCard.load(out / "README.md").data.configs]


@pytest.mark.parametrize("version", list(REAL))
def test_every_real_release_converts_and_every_listed_config_loads(version, tmp_path, capsys):
    folder, file, names = REAL[version]
    meta = load_meta(file, names)
    assert names is None or len(meta) == len(names)
    release = write_real_release(tmp_path / folder, meta)
    out = tmp_path / "out"
    assert main([str(release), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    configs = _card_configs(out)
    assert configs == ["all", *manifest["subsets"]]
    assert not json.loads((out / "skipped.json").read_text())["total"]

    expected = {name: expected_pairs(entry) for name, entry in meta.items()}
    published = {info.get("release_name") or config: (config, info) for config, info in manifest["subsets"].items()}
    assert set(published) == {name for name, n in expected.items() if n}
    assert set(manifest["extra"].get("empty_subsets", {})) == {name for name, n in expected.items() if not n}
    assert len(manifest["extra"].get("empty_subsets", {})) == EMPTY[version]
    for name, reason in manifest["extra"].get("empty_subsets", {}).items():
        assert f"{name}: {reason}" in printed
        assert "keeps int(" in reason or "has no rows" in reason
    for name, (config, info) in published.items():
        rows = load_dataset(str(out), config, split="train")
        assert len(rows) == info["num_pairs"] == expected[name], name
        assert set(rows["subset"]) == {name}
    assert len(load_dataset(str(out), "all", split="train")) == manifest["num_pairs"] == sum(expected.values())


def test_the_slash_named_subset_keeps_every_row_under_a_valid_config(tmp_path):
    meta = load_meta("v1.0_meta_entries.json")
    release = write_real_release(tmp_path / "MMPR", meta)
    manifest, problems = convert(release, tmp_path / "out", progress=False)
    info = manifest.subsets["openbmb__RLAIF-V-Dataset"]
    assert info.release_name == "openbmb/RLAIF-V-Dataset" and info.kinds == {"imported": MAX_ROWS}
    rows = load_dataset(str(tmp_path / "out"), "openbmb__RLAIF-V-Dataset", split="train")
    assert len(rows) == MAX_ROWS and set(rows["subset"]) == {"openbmb/RLAIF-V-Dataset"}
    assert sorted(rows["id"]) == sorted(f"openbmb/RLAIF-V-Dataset/{k}" for k in range(1, MAX_ROWS + 1))
    card = (tmp_path / "out" / "README.md").read_text()
    assert "openbmb__RLAIF-V-Dataset (release name `openbmb/RLAIF-V-Dataset`)" in card
    assert problems.total == 0


def test_a_conversion_without_any_pair_fails_and_says_why(tmp_path, capsys):
    meta = load_meta("v1.2_meta.json", ["CLEVR_math_en_20240402_extracted_pairs_vqa_format_rules",
                                        "nlvr2_en_20240910_ov_pairs_vqa_format_rules"])
    release = write_real_release(tmp_path / "MMPR-v1.2", meta)
    assert main([str(release), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "no pairs to write" in err
    assert "CLEVR_math_en_20240402_extracted_pairs_vqa_format_rules: its annotation" in err
    assert "repeat_time 0.005 keeps int(40 x 0.005) = 0 of its 40 lines" in err
    assert not (tmp_path / "out").exists(), "a failed conversion leaves no half-made folder"


def test_a_subset_whose_rows_are_all_bad_is_reported_not_published(tmp_path, capsys):
    rows = ['{"question": "q"', {"question": "q", "chosen": "c"}]
    good = [{"question": f"q{i}", "chosen": "c", "rejected": "r"} for i in range(3)]
    release = write_release(tmp_path / "rel", {"bad_pairs_vqa_correctness_rules": rows,
                                               "good_pairs_vqa_correctness_rules": good})
    out = tmp_path / "out"
    assert main([str(release), "--out", str(out)]) == 0
    assert "bad_pairs_vqa_correctness_rules: all 2 rows repeat_time selected were skipped as bad" in \
        capsys.readouterr().out
    assert _card_configs(out) == ["all", "good_pairs_vqa_correctness_rules"]
    assert len(load_dataset(str(out), split="train")) == 3
