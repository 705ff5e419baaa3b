import json

import httpx2
import pytest
from datasets import load_dataset
from huggingface_hub import constants
from huggingface_hub.utils import _http

from mmpr.convert import main, parse_size
from mmpr.testing import tiny_images, write_release
from tests.mmpr.fake_hub import ENDPOINT, FakeHub


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
