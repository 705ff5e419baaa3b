"""A correct Hub id while the Hub is switched off (``HF_HUB_OFFLINE=1``, as in these tests) or cannot be reached:
every tool fails at once with one line that says so and how to use a local copy, never "no such model"."""

import time

import pytest

from tests.test_front_doors import _pairs, _refused


def _tools(tmp_path):
    from evals.run import main as evaluate
    from mmpr.build.cli import main as build
    from mmpr.export import main as export
    from mpo_train.__main__ import main as train

    data = _pairs(tmp_path / "data")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return [
        (build, ["--model", "Qwen/Qwen2-VL-2B-Instruct", "--sources", "sample", "--out", str(tmp_path / "o")],
         "--model Qwen/Qwen2-VL-2B-Instruct"),
        (train, ["model=OpenGVLab/InternVL2-8B", f"data=[{data}]", f"output_dir={tmp_path / 'o'}"],
         "model OpenGVLab/InternVL2-8B"),
        (evaluate, ["--tasks", "mathvista", "--model", "OpenGVLab/InternVL2-8B-MPO", "--out", str(tmp_path / "o")],
         "--model OpenGVLab/InternVL2-8B-MPO"),
        (build, ["--model", str(tmp_path / "model"), "--engine", "transformers", "--sources", "scienceqa", "--out",
                 str(tmp_path / "o")], "source scienceqa: derek-thomas/ScienceQA"),
        (export, ["my-org/MMPR", "--format", "trl", "--out", str(tmp_path / "o")], "dataset my-org/MMPR"),
    ]


@pytest.mark.parametrize("how", ["offline", "unreachable"])
def test_a_hub_id_without_the_hub_is_one_fast_line_saying_how_to_use_a_local_copy(tmp_path, capsys, monkeypatch,
                                                                                   how):
    if how == "unreachable":  # online as far as the settings go, but nothing answers at the endpoint
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    for main, argv, named in _tools(tmp_path):
        start = time.monotonic()
        line = _refused(main, argv, capsys, 2, named, "huggingface-cli download", "--local-dir", tmp_path=tmp_path,
                        out=tmp_path / "o")
        assert time.monotonic() - start < 10, f"no retries: {line}"
        assert "no such model" not in line and "check the name" not in line, line
        if how == "offline":
            assert "HF_HUB_OFFLINE=1" in line, line
        else:
            assert "cannot be reached" in line and "127.0.0.1:9" in line, line
