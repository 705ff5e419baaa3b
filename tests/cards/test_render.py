import re

import yaml

from cards import render_dataset_card
from mmpr.schemas import GeneratorInfo, Manifest, PromptInfo, SamplingConfig, SourceInfo, SubsetInfo, VersionEntry


def _manifest(**kw):
    fields = dict(
        name="mmpr-demo", dataset_version="1.2.0", content_hash="ab" * 32, num_pairs=1500,
        subsets={"scienceqa_pairs_vqa_correctness_rules": SubsetInfo(num_pairs=1000, kinds={"correctness": 1000},
                                                                      categories={"science": 1000},
                                                                      sources={"scienceqa": 1000}),
                 "coco_prefix_pair_sr0.5_wo_image": SubsetInfo(num_pairs=500, kinds={"dropout_ntp": 500},
                                                               categories={"general_vqa": 500}, sources={"coco": 500})},
        generator=GeneratorInfo(model="OpenGVLab/InternVL2-8B", engine="vllm", sampling=SamplingConfig()),
        prompt=PromptInfo(name="mpo_cot", template="Q: {question}"),
        sources=[SourceInfo(name="scienceqa", location="derek-thomas/ScienceQA", split="train", num_items=400)],
        history=[VersionEntry(version="1.1.0", created_at="2026-01-02T00:00:00Z", content_hash="cd" * 32,
                              num_pairs=900, note="first")])
    return Manifest(**{**fields, **kw})


def test_card_front_matter_lists_one_config_per_subset_and_a_default():
    card = render_dataset_card(_manifest(), repo_id="org/mmpr")
    meta = yaml.safe_load(re.match(r"^---\n(.*?)\n---\n", card, re.S)[1])
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["all"]["default"] is True
    assert configs["scienceqa_pairs_vqa_correctness_rules"]["data_files"] == [
        {"split": "train", "path": "data/scienceqa_pairs_vqa_correctness_rules/*.parquet"}]
    assert meta["size_categories"] == ["1K<n<10K"]


def test_card_body_reports_the_real_numbers():
    card = render_dataset_card(_manifest(), repo_id="org/mmpr")
    assert 'load_dataset("org/mmpr", split="train")' in card
    assert "| scienceqa_pairs_vqa_correctness_rules | 1,000 | 1,000 | 0 |" in card
    assert "| **total** | **1,500** | **1,000** | **500** |" in card
    assert "| general_vqa | 500 |" in card
    assert "`OpenGVLab/InternVL2-8B`" in card and "32 samples per question" in card
    assert "| scienceqa | CC BY-NC-SA 4.0 |" in card and "| coco | see the source's own terms |" in card
    assert "| 1.1.0 | 2026-01-02 | 900 |" in card and "| 1.2.0 |" in card
    assert "arXiv:2411.10442" in card


def test_converted_release_card_says_so():
    card = render_dataset_card(_manifest(generator=None, prompt=None))
    assert "Converted from an existing MMPR release" in card
