import pytest

from mmpr.problems import ProblemLog
from mmpr.release import (
    SUFFIXES,
    category_of,
    iter_subset,
    kind_and_source,
    read_meta,
    remap,
    selected_lines,
    subset_category,
    suffix_of,
)
from mmpr.testing import tiny_images, write_release
from tests.mmpr.real_meta import META_DIR, load_meta, write_real_release

REAL_NAMES = {name: file.name for file in sorted(META_DIR.glob("*.json")) for name in load_meta(file.name)}
# The real subsets whose names declare no construction (captions, imported preference data): kind "imported".
NO_SUFFIX = {"ai2d_cap_gpt4o_en_20240410", "airplane_app_longcap_gpt4o_zh_20240627",
             "android_ui_longcap_qwen_zh_20240409", "internvl_watermark", "llavar_inhouse_sft_longcap_en_20240521",
             "mmmu_val_all_filter_annotations", "openbmb/RLAIF-V-Dataset", "sam_cap_review_negative_en_20240918",
             "taobao_longcap_gpt4o_zh_20240627", "wechat_longcap_gpt4o_zh_20240627"}

FOREIGN = "/mnt/petrelfs/share_data/wangweiyun/MMPR/"


def _rows(n, image=None, **extra):
    return [{"image": image(i) if image else None, "question": f"Q{i}?", "chosen": f"good {i}",
             "rejected": f"bad {i}", **extra} for i in range(n)]


@pytest.fixture
def images():
    imgs = tiny_images(3)
    return {"s/0.png": imgs[0], "s/1.png": imgs[1], "s/2.jpg": imgs[2]}


def _read(root, **kw):
    problems = ProblemLog()
    pairs = [p for spec in read_meta(root) for p in iter_subset(spec, problems, **kw)]
    return pairs, problems


@pytest.mark.parametrize("subset, kind, source", [
    ("ai2d_train_12k_en_20240410_extracted_pairs_vqa_correctness_rules", "correctness",
     "ai2d_train_12k_en_20240410_extracted"),
    ("chartqa_pairs_vqa_format_rules", "format", "chartqa"),
    ("coco_caption_prefix_pair_sr0.5_wo_image", "dropout_ntp", "coco_caption"),
    ("geoqa_pairs_vqa_direct_rules", "correctness", "geoqa"),
    ("my_custom_pairs", "imported", "my_custom_pairs"),
])
def test_kind_and_source_from_the_subset_suffix(subset, kind, source):
    assert kind_and_source(subset) == (kind, source)


def test_categories_of_known_sources():
    assert category_of("ai2d_train_12k_en") == "science"
    assert category_of("ChartQA") == "chart"
    assert category_of("clevr_math_5k") == "mathematics"
    assert category_of("docvqa_train") == "document"
    assert category_of("unheard_of") == "other"


@pytest.mark.parametrize("subset, kind, source, category", [
    ("inat_train2018_merge_en_20240811_sr0.50_wo_image", "dropout_ntp", "inat_train2018_merge_en_20240811", "other"),
    ("RLAIF-V-Dataset_sr0.5_wo_image", "dropout_ntp", "RLAIF-V-Dataset", "other"),
    ("wildvision_gpt4o_en_20240903.jsonl_extracted_sr0.5_with_image", "dropout_ntp",
     "wildvision_gpt4o_en_20240903.jsonl_extracted", "other"),
    ("ai2d_train_12k_en_20240410_extracted_prefix_pair_sr0.0_with_image", "dropout_ntp",
     "ai2d_train_12k_en_20240410_extracted", "science"),
    ("mavis_function_abs_pairs_vqa_direct_rules", "correctness", "mavis_function_abs", "mathematics"),
    ("IAM_words_20241118check_ocr_correctness_rules", "correctness", "IAM_words_20241118check", "ocr"),
    ("nlvr2_en_20240910_ov_pairs_vqa_correctness_rules", "correctness", "nlvr2_en_20240910_ov", "general_vqa"),
    ("geoqa+_extracted_en_version_pairs_vqa_format_rules", "format", "geoqa+_extracted_en_version", "mathematics"),
    ("super_clevr_en_20240402_yorn_pairs_vqa_correctness_rules", "correctness", "super_clevr_en_20240402_yorn",
     "general_vqa"),
    ("openbmb/RLAIF-V-Dataset", "imported", "openbmb/RLAIF-V-Dataset", "other"),
])
def test_real_subset_names_classify(subset, kind, source, category):
    assert subset in REAL_NAMES
    assert kind_and_source(subset) == (kind, source) and subset_category(subset) == category


def test_the_suffix_table_covers_every_real_subset_name_and_invents_none():
    assert len(REAL_NAMES) > 200
    assert {n for n in REAL_NAMES if kind_and_source(n)[0] == "imported"} == NO_SUFFIX
    used = {suffix_of(n).pattern for n in REAL_NAMES if suffix_of(n)}
    assert used == {s.pattern for s in SUFFIXES}
    assert all(s.seen_in and s.meaning for s in SUFFIXES)


def test_remap_foreign_absolute_paths_into_the_release(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.jsonl").touch()
    assert remap(FOREIGN + "annotations/a.jsonl", tmp_path) == tmp_path / "annotations" / "a.jsonl"
    assert remap("annotations/a.jsonl", tmp_path) == tmp_path / "annotations" / "a.jsonl"


def test_v1_layout_with_foreign_paths_single_list_and_absent_images(tmp_path, images):
    root = write_release(tmp_path, {
        "ai2d_pairs_vqa_correctness_rules": [
            {"image": "s/0.png", "question": "<image>\nWhich one?", "chosen": "c", "rejected": "r", "answer_gt": "B",
             "chosen_meta": {"score": 1}},
            {"image": ["s/1.png", "s/2.jpg"], "question": "Compare <image> and <image>.", "chosen": "c",
             "rejected": "r"},
            {"image": "s/1.png", "question": "No placeholder here?", "chosen": "c", "rejected": "r"},
        ],
        "textqa_prefix_pair_sr0.5_wo_image": [{"question": "Text only", "chosen": "c", "rejected": "r"},
                                              {"image": "", "question": "Empty image", "chosen": "c",
                                               "rejected": "r"}],
    }, images=images, annotation_prefix=FOREIGN)
    pairs, problems = _read(root)
    assert problems.total == 0
    assert [len(p.images) for p in pairs] == [1, 2, 1, 0, 0]
    assert pairs[0].images[0] == str(root / "images" / "s/0.png")
    assert pairs[0].kind == "correctness" and pairs[0].source == "ai2d" and pairs[0].category == "science"
    assert pairs[0].answer_gt == "B" and pairs[0].metadata == {"chosen_meta": {"score": 1}}
    assert pairs[3].kind == "dropout_ntp" and pairs[3].answer_gt is None
    assert pairs[0].id == "ai2d_pairs_vqa_correctness_rules/1"


def test_repeat_time_fraction_is_a_seeded_subsample(tmp_path):
    root = write_release(tmp_path, {"x_pairs_vqa_correctness_rules": _rows(20)},
                         repeat_time={"x_pairs_vqa_correctness_rules": 0.25})
    a, _ = _read(root, seed=0)
    b, _ = _read(root, seed=0)
    c, _ = _read(root, seed=1)
    assert len(a) == 5
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.id for p in a] != [p.id for p in c]
    everything, _ = _read(root, apply_repeat=False)
    assert len(everything) == 20


def test_repeat_time_above_one_repeats_int_of_it_as_the_reference_trainer(tmp_path):
    # internvl_chat_mpo.py: raw_data * int(repeat_time): 2 -> twice, 2.7 -> twice, 1.5 -> once
    root = write_release(tmp_path, {"a_pairs_vqa_correctness_rules": _rows(4),
                                    "b_pairs_vqa_correctness_rules": _rows(10),
                                    "c_pairs_vqa_correctness_rules": _rows(3)},
                         repeat_time={"a_pairs_vqa_correctness_rules": 2, "b_pairs_vqa_correctness_rules": 1.5,
                                      "c_pairs_vqa_correctness_rules": 2.7})
    pairs, _ = _read(root)
    by = {k: [p.id.split("/")[1] for p in pairs if p.subset.startswith(k)] for k in "abc"}
    assert by["a"] == ["1", "1#r1", "2", "2#r1", "3", "3#r1", "4", "4#r1"]
    assert by["b"] == [str(i) for i in range(1, 11)]
    assert by["c"] == ["1", "1#r1", "2", "2#r1", "3", "3#r1"]


@pytest.mark.parametrize("n, repeat_time, kept", [(20, 0.25, 5), (100, 0.07, 7), (100, 0.29, 28), (3, 0.2, 0),
                                                  (32798, 0.005, 163), (1, 1, 1)])
def test_repeat_time_below_one_keeps_int_of_n_times_it(n, repeat_time, kept):
    # random.sample(raw_data, k=int(len(raw_data) * repeat_time)): int truncates 100 * 0.29 = 28.999... to 28
    import random

    lines, copies = selected_lines(n, repeat_time, random.Random(0))
    assert copies == 1 and (len(lines) if lines is not None else n) == kept
    assert lines is None or lines <= set(range(1, n + 1))
    assert lines == selected_lines(n, repeat_time, random.Random(0))[0]


def test_bad_rows_are_skipped_counted_and_reported_exactly(tmp_path, images):
    (tmp_path / "images" / "s").mkdir(parents=True)
    (tmp_path / "images" / "s" / "broken.png").write_bytes(b"not an image at all")
    rows = [
        {"image": "s/0.png", "question": "fine", "chosen": "c", "rejected": "r"},
        '{"image": "s/0.png", "question": "oops"',
        {"image": "s/0.png", "question": "no rejected", "chosen": "c"},
        {"image": "s/missing.png", "question": "q", "chosen": "c", "rejected": "r"},
        {"image": "s/broken.png", "question": "q", "chosen": "c", "rejected": "r"},
        '["a", "list"]',
        {"image": "s/0.png", "question": "<image> and <image>", "chosen": "c", "rejected": "r"},
        {"image": "s/0.png", "question": "q", "chosen": "same", "rejected": "same"},
        {"image": 7, "question": "q", "chosen": "c", "rejected": "r"},
        "",
        {"image": "s/1.png", "question": "also fine", "chosen": "c", "rejected": "r"},
    ]
    root = write_release(tmp_path, {"s_pairs_vqa_correctness_rules": rows}, images=images)
    pairs, problems = _read(root)
    assert [p.question for p in pairs] == ["fine", "also fine"]
    file = str(root / "annotations" / "s_pairs_vqa_correctness_rules.jsonl")
    assert [(p.code, p.file, p.line, p.field) for p in problems.items] == [
        ("malformed_json", file, 2, None),
        ("missing_field", file, 3, "rejected"),
        ("image_missing", file, 4, "image"),
        ("image_unreadable", file, 5, "image"),
        ("malformed_json", file, 6, None),
        ("placeholder_mismatch", file, 7, "question"),
        ("invalid_value", file, 8, "rejected"),
        ("invalid_value", file, 9, "image"),
    ]
    assert problems.counts == {"malformed_json": 2, "missing_field": 1, "image_missing": 1, "image_unreadable": 1,
                               "placeholder_mismatch": 1, "invalid_value": 2}
    assert "s/missing.png" in problems.items[2].message
    assert str(problems.items[1]) == f"{file}:3 [rejected]: 'rejected' is missing, empty or not a string " \
                                     "(missing_field)"


def test_meta_errors_name_the_file_and_subset(tmp_path):
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        read_meta(tmp_path)
    root = write_release(tmp_path, {"a_pairs_vqa_correctness_rules": _rows(1)})
    with pytest.raises(ValueError, match="no subset named nope; it has: a_pairs_vqa_correctness_rules"):
        read_meta(root, subsets=["nope"])
    (root / "meta.json").write_text('{"a": {"root": "images"}}')
    with pytest.raises(ValueError, match=r"meta.json: subset 'a': field 'annotation' is missing"):
        read_meta(root)
    (root / "meta.json").write_text('{"a": {"root": "images", "annotation": "annotations/gone.jsonl"}}')
    with pytest.raises(FileNotFoundError, match="subset 'a': annotation 'annotations/gone.jsonl' not found"):
        read_meta(root)


def test_real_v1_1_paths_resolve_null_roots_cluster_roots_and_absolute_annotations(tmp_path):
    names = ["internvl_watermark", "inat_train2018_merge_en_20240811_sr0.50_wo_image",
             "mavis_function_abs_pairs_vqa_direct_rules"]
    meta = load_meta("v1.1_internvl_dev_mpo_meta.json", names)
    assert meta["internvl_watermark"]["root"] is None
    assert meta["inat_train2018_merge_en_20240811_sr0.50_wo_image"]["root"].startswith("vc-reader:s3://")
    root = write_real_release(tmp_path / "MMPR-v1.1", meta)
    specs = {s.name: s for s in read_meta(root)}
    assert specs["internvl_watermark"].root == root
    assert specs["inat_train2018_merge_en_20240811_sr0.50_wo_image"].root == root / "datasets" / "inat2018"
    assert specs["mavis_function_abs_pairs_vqa_direct_rules"].root == root / "CaraJ" / "MAVIS-Function"
    assert specs["mavis_function_abs_pairs_vqa_direct_rules"].annotation == root / "clean" / \
        "mavis_function_abs_pairs_vqa_direct_rules.jsonl"
    problems = ProblemLog()
    pairs = [p for spec in specs.values() for p in iter_subset(spec, problems, apply_repeat=False)]
    assert problems.total == 0 and len(pairs) == 120
    assert pairs[0].images == [] and pairs[40].images == [str(root / "datasets" / "inat2018" / "0.png")]
