"""Nothing a user owns is lost, and bad data is skipped and counted: each case through the tool's public ``main``,
checking the exit code, the one line on stderr, and that nothing changed on disk where it must not."""

import json
import os
import re
import struct
import zlib
from pathlib import Path

import pytest
from datasets import Dataset

from mmpr.testing import tiny_images, write_release
from tests.mpo_train.conftest import fresh_accelerate_state  # noqa: F401 - autouse: each training as its own process
from tests.test_front_doors import _message_lines, _occupied, _refused, _tree


def bomb_png(path: Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of ``side`` x ``side`` pixels: ~50 kB on disk, 400 M pixels once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * ((side + 7) // 8 + 1) * side, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)) +
                     chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


@pytest.fixture(autouse=True)
def _own_pixel_limit():
    """--max-image-pixels sets the process-wide limit; each test starts from the default and leaves it so."""
    from mmpr.images import MAX_PIXELS_ENV, image_problem, set_max_pixels

    yield
    os.environ.pop(MAX_PIXELS_ENV, None)
    set_max_pixels(None)
    image_problem.cache_clear()


@pytest.fixture(autouse=True)
def _library_warnings_off():
    """transformers' own log handler keeps the stderr of the test that first logged; a command run on its own
    silences it at import (TRANSFORMERS_VERBOSITY, set by quiet_logs), which an earlier import here prevents."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()


# ------------------------------------------------------------------------------------- mpo_train.convert_internvl

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from mmpr.testing import tiny_original_internvl

    return tiny_original_internvl(tmp_path_factory.mktemp("models") / "InternVL2-tiny", "qwen2", layers=1)


def test_convert_internvl_never_writes_over_its_source(tmp_path, capsys, checkpoint):
    from mpo_train.convert_internvl.__main__ import main

    models = checkpoint.parent
    for out, needle in ((checkpoint, "is the checkpoint SRC itself"), (checkpoint / "hf", "inside the checkpoint"),
                        (models, "holds the checkpoint")):
        for extra in ([], ["--overwrite"]):  # --overwrite never reaches the checkpoint either
            _refused(main, [str(checkpoint), str(out), *extra], capsys, 2, needle, tmp_path=models)
    occupied = _occupied(tmp_path)
    _refused(main, [str(checkpoint), str(occupied)], capsys, 2, str(occupied), "--overwrite", tmp_path=tmp_path)


def test_convert_internvl_keeps_the_original_config_and_reruns(tmp_path, capsys, checkpoint):
    from mpo_train.convert_internvl.__main__ import main

    original = (checkpoint / "config.json").read_text()
    out = tmp_path / "hf"
    assert main([str(checkpoint), str(out)]) == 0
    assert (out / "original_layout" / "config.json").read_text() == original
    assert not (out / "original_layout" / ".convert_internvl.json").exists()
    assert main([str(checkpoint), str(out)]) == 0, "a rerun of the same conversion (a resume) needs no flag"
    # another job's OUT: the round trip refuses to write over the first conversion without --overwrite
    _refused(main, [str(out), str(out / "back"), "--to", "original"], capsys, 2, "inside the checkpoint",
             tmp_path=tmp_path)
    assert main([str(out), str(tmp_path / "back"), "--to", "original"]) == 0
    assert json.loads((tmp_path / "back" / "config.json").read_text()) == json.loads(original)
    _refused(main, [str(checkpoint), str(tmp_path / "back")], capsys, 2, "--overwrite", tmp_path=tmp_path)
    assert main([str(checkpoint), str(tmp_path / "back"), "--overwrite"]) == 0
    assert (checkpoint / "config.json").read_text() == original


# ------------------------------------------------------------------------------ experiments.tiny_grid.generate

def test_synthetic_grid_refuses_occupied_folders(tmp_path, capsys):
    from experiments.tiny_grid.generate import main

    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "config.json").write_text("{}")
    (trained / "model.safetensors").write_bytes(b"trained weights")
    (trained / "README.md").write_text("a trained model")
    small = ["--train", "2", "--test", "2", "--sft", "2"]
    for argv in (["model", str(trained)], ["data", str(trained), *small]):
        _refused(main, argv, capsys, 2, str(trained), "--overwrite", tmp_path=tmp_path)
    data = tmp_path / "data"
    assert main(["data", str(data), *small]) == 0
    assert main(["data", str(data), *small]) == 0, "the same command again (a resume) needs no flag"
    _refused(main, ["data", str(data), *small, "--seed", "1"], capsys, 2, "--overwrite", tmp_path=tmp_path)
    _refused(main, ["model", str(data)], capsys, 2, "--overwrite", tmp_path=tmp_path)
    assert main(["data", str(trained), *small, "--overwrite"]) == 0
    assert not (trained / "model.safetensors").exists() and (trained / "task.json").exists()


# -------------------------------------------------------------------------------------------------- mmpr.convert

def _release(tmp_path, rows, repeat=None, name="toy_pairs_vqa_correctness_rules"):
    return write_release(tmp_path / "release", {name: rows}, repeat_time={name: repeat} if repeat else None)


def _rows(n):
    return [{"question": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(n)]


@pytest.mark.parametrize("value,shown", [("Infinity", "inf"), ("NaN", "nan"), ("-1", "-1"), ('"2"', "'2'")])
def test_convert_refuses_a_repeat_time_that_is_not_a_finite_positive_number(tmp_path, capsys, value, shown):
    from mmpr.convert import main

    release = _release(tmp_path, _rows(2))
    meta = release / "meta.json"
    meta.write_text(re.sub(r'"repeat_time": [^,}]+', f'"repeat_time": {value}', meta.read_text()))
    _refused(main, [str(release), "--out", str(tmp_path / "o")], capsys, 2, "toy_pairs_vqa_correctness_rules",
             "'repeat_time'", f"got {shown}", tmp_path=tmp_path, out=tmp_path / "o")


def test_convert_warns_with_the_total_before_multiplying_rows_by_more_than_100(tmp_path, capsys):
    from mmpr.convert import main
    from mmpr.release import read_meta, repeat_warning

    release = _release(tmp_path, _rows(2), repeat=150)
    assert main([str(release), "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    warning = [line for line in _message_lines(err) if line.startswith("warning:")]
    assert len(warning) == 1 and "repeat_time 150 x 2 lines = 300 rows" in warning[0] and "300 rows in all" in \
        warning[0] and "--no-repeat" in warning[0]
    assert err.index("warning:") < err.index("converting"), "the warning comes before the conversion starts"
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["num_pairs"] == 300
    meta = json.loads((release / "meta.json").read_text())
    meta["toy_pairs_vqa_correctness_rules"]["repeat_time"] = 1e7
    (release / "meta.json").write_text(json.dumps(meta))
    assert "20,000,000 rows in all" in repeat_warning(read_meta(release))
    assert main([str(release), "--out", str(tmp_path / "once"), "--no-repeat"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_train_on_a_release_checks_repeat_time_the_same_way(tmp_path, capsys, tiny_model_dir):
    from mpo_train.__main__ import main

    release = _release(tmp_path, _rows(2))
    meta = json.loads((release / "meta.json").read_text())
    model = tiny_model_dir("qwen2_vl")
    for value in (float("nan"), float("inf")):
        meta["toy_pairs_vqa_correctness_rules"]["repeat_time"] = value
        (release / "meta.json").write_text(json.dumps(meta))
        _refused(main, [f"model={model}", f"data=[{release}]", f"output_dir={tmp_path / 'o'}"], capsys, 2,
                 "'repeat_time'", "toy_pairs_vqa_correctness_rules", tmp_path=tmp_path, out=tmp_path / "o")
    meta["toy_pairs_vqa_correctness_rules"]["repeat_time"] = 150
    (release / "meta.json").write_text(json.dumps(meta))
    occupied = _occupied(tmp_path)  # refused after the warning: nothing is trained here
    assert main([f"model={model}", f"data=[{release}]", f"output_dir={occupied}"]) == 2
    lines = _message_lines(capsys.readouterr().err)
    assert len(lines) == 2 and "300 rows in all" in lines[0] and "mmpr.convert --no-repeat" in lines[0]
    assert lines[0].startswith("warning: data") and lines[1].startswith("error: output_dir")


def test_convert_skips_an_oversized_image_like_a_broken_one(tmp_path, capsys):
    from mmpr.convert import main

    rows = _rows(3)
    rows[0]["image"] = "bomb.png"
    rows[1]["image"] = "broken.png"
    release = _release(tmp_path, rows)
    root = release / json.loads((release / "meta.json").read_text())["toy_pairs_vqa_correctness_rules"]["root"]
    root.mkdir(parents=True, exist_ok=True)
    bomb_png(root / "bomb.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main([str(release), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "skipped: 2 skipped (image_too_large: 1, image_unreadable: 1)" in out
    assert "bomb.png" in out and "more pixels than the limit" in out
    # a limit of the tool's own: a 32 x 32 image is then too large as well
    tiny_images(1, size=(32, 32))[0].save(root / "small.png")
    rows[2]["image"] = "small.png"
    (release / "annotations" / "toy_pairs_vqa_correctness_rules.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    _refused(main, [str(release), "--out", str(tmp_path / "limited"), "--max-image-pixels", "1000"], capsys, 1,
             "0 pairs", "image_too_large: 2", tmp_path=tmp_path, out=tmp_path / "limited")


def test_a_killed_conversion_leaves_no_staging_behind_on_rerun(tmp_path, capsys):
    from mmpr.convert import main

    release = _release(tmp_path, _rows(3))
    out = tmp_path / "o"
    out.mkdir()
    for stale in (".staging-0badc0de", ".staging-12345678"):  # what two SIGKILLed runs leave
        (out / stale / "data" / "toy").mkdir(parents=True)
        (out / stale / "data" / "toy" / "part.parquet").write_bytes(b"half")
    assert main([str(release), "--out", str(out)]) == 0
    assert not list(out.glob(".staging-*"))
    (out / ".staging-deadbeef").mkdir()  # killed again, now over a finished conversion: still this job's folder
    assert main([str(release), "--out", str(out)]) == 0
    assert not list(out.glob(".staging-*"))


def test_card_and_manifest_name_no_local_folder_and_the_snippet_loads(tmp_path, capsys, monkeypatch):
    from datasets import load_dataset

    from mmpr.convert import main

    release = _release(tmp_path, _rows(3))
    out = tmp_path / "published"
    assert main([str(release), "--out", str(out), "--name", "demo"]) == 0
    for name in ("manifest.json", "README.md"):
        text = (out / name).read_text()
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["converted_from"] == "release"
    assert manifest["sources"][0]["location"].startswith("release/")
    snippet = re.search(r'load_dataset\("([^"]+)", split="train"\)', (out / "README.md").read_text()).group(1)
    assert snippet == "./published"
    monkeypatch.chdir(tmp_path)
    assert len(load_dataset(snippet, split="train")) == 3
    # a rerun still knows its own folder (the release's path is kept in a hidden file that is never pushed)
    assert main([str(release), "--out", str(out)]) == 0


# ---------------------------------------------------------------------------------------------------- mmpr.build

def _build_source(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_images(1)[0].save(folder / "ok.png")
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _question(i, image="ok.png"):
    return {"id": f"q{i}", "image": image, "question": f"How many shapes? ({i})", "answer": str(i % 4),
            "answer_type": "integer"}


@pytest.fixture
def build_main(tmp_path, monkeypatch):
    from mmpr.build import runner
    from mmpr.build.cli import main
    from tests.mmpr.test_build import ScriptedEngine

    monkeypatch.setattr(runner, "make_engine", lambda *a, **k: ScriptedEngine())
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return lambda argv: main(["--engine", "transformers", "--model", str(tmp_path / "model"), "--n", "6",
                              "--max-tokens", "32", "--batch-size", "4", *argv])


def test_build_skips_an_oversized_image_and_its_bar_counts_what_the_summary_counts(tmp_path, capsys, build_main):
    rows = [_question(i) for i in range(6)] + [_question(6, "bomb.png"), _question(7, "missing.png")]
    source = _build_source(tmp_path / "src", rows)
    bomb_png(tmp_path / "src" / "bomb.png")
    assert build_main(["--sources", f"generic={source}", "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert re.search(r"skipped: 2 \(image_too_large: 1, image_unreadable: 1\)", captured.out)
    bars = re.findall(r"skipped=(\d+)", captured.err)
    assert bars and bars[-1] == "2", "the progress bar ends on the summary's count"
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["extra"]["build"]["skipped"]["counts"] == {"image_too_large": 1, "image_unreadable": 1}
    for name in ("manifest.json", "README.md"):
        assert str(tmp_path) not in (tmp_path / "o" / name).read_text(), name


def test_build_keeps_two_sources_with_the_same_file_name_apart(tmp_path, capsys, build_main):
    a = _build_source(tmp_path / "a", [_question(i) for i in range(4)])
    b = _build_source(tmp_path / "b", [_question(i) for i in range(4)])  # the same ids, another file
    assert build_main(["--sources", f"generic={a}", f"generic={b}", "--out", str(tmp_path / "o")]) == 0
    ds = Dataset.from_parquet([str(p) for p in (tmp_path / "o" / "data").rglob("*.parquet")])
    assert set(ds["source"]) == {"a_train", "b_train"}
    assert len(set(ds["id"])) == len(ds), "no pair id twice"
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [(s["name"], s["location"]) for s in manifest["sources"]] == [("a_train", "train.jsonl"),
                                                                        ("b_train", "train.jsonl")]
    _refused(build_main, ["--sources", f"generic={a}", f"generic={a}", "--out", str(tmp_path / "twice")], capsys, 2,
             "given twice", tmp_path=tmp_path, out=tmp_path / "twice")


# ----------------------------------------------------------------------------------------------------- evals.run

class AnswersOne:
    name = "scripted"

    def __init__(self):
        self.images = []

    def generate(self, requests, sampling):
        from mmpr.engines import Completion

        self.images += [len(r.images) for r in requests]
        return [[Completion("Final answer: 1", 3, 3, "stop")] for _ in requests]

    def close(self):
        pass


def test_eval_skips_bad_images_and_counts_a_null_ground_truth_as_unscorable(tmp_path, capsys, monkeypatch):
    from evals import models
    from evals.run import main
    from tests.evals.conftest import MATHVISTA_FEATURES, mathvista_rows

    engine = AnswersOne()
    monkeypatch.setattr(models, "make_engine", lambda *a, **k: engine)
    rows = mathvista_rows(8)
    rows[0]["decoded_image"] = {"bytes": bomb_png(tmp_path / "bomb.png").read_bytes()}
    rows[1]["decoded_image"] = None
    rows[2]["decoded_image"] = {"bytes": b"\x89PNG\r\n\x1a\n truncated"}
    rows[3]["answer"] = None
    rows[4]["question"] = None
    rows[6]["choices"] = None  # a multiple-choice item without its options
    data = tmp_path / "mathvista.parquet"
    Dataset.from_list(rows, features=MATHVISTA_FEATURES).to_parquet(str(data))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    out = tmp_path / "run"
    argv = ["--tasks", "mathvista", "--model", str(model), "--data", f"mathvista={data}", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    task = json.loads((out / "results.json").read_text())["tasks"]["mathvista"]
    skipped = task["skipped_items"]
    assert {k: skipped[k] for k in "123"} == {
        "1": "image has more pixels than the limit (--max-image-pixels) (image_too_large)",
        "2": "image not found (image_missing)", "3": "image cannot be decoded (image_unreadable)"}
    assert "question" in skipped["5"] and "choices" in skipped["7"] and set(skipped) == set("12357")
    assert task["total"] == 3 and engine.images == [1, 1, 1], "only the usable items reach the model"
    assert task["unscorable"] == 1 and task["unscorable_items"] == {"4": "the ground truth is null"}
    lines = _message_lines(captured.err)
    assert any(line.startswith("mathvista: 5 items skipped") and "image_too_large" in line for line in lines)
    assert any(line.startswith("mathvista: 1 unscorable") for line in lines)
    samples = {s["doc_id"]: s for s in map(json.loads, (out / "samples_mmpr_mathvista_testmini_cot.jsonl").read_text()
                                           .splitlines())}
    assert samples["4"]["target"] is None and not samples["4"]["correct"] and not samples["4"]["scorable"]


# ------------------------------------------------------------------------------------------------------ mpo_train

def _train_rows(tmp_path: Path, n: int, identical: int) -> Path:
    image = tmp_path / "img.png"
    tiny_images(1)[0].save(image)
    rows = [{"id": f"p{i}", "question": f"How many shapes ({i})?", "images": [str(image)],
             "chosen": f"Final answer: {i}", "rejected": f"Final answer: {i}" if i < identical else
             f"Final answer: {i + 1}"} for i in range(n)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_keeps_its_folder_when_the_saved_model_fails_its_check(tmp_path, capsys, monkeypatch, tiny_model_dir):
    from mpo_train import trainer
    from mpo_train.__main__ import main

    def reload_fails(folder, *args, **kwargs):
        return [f"{folder}: does not load and generate (RuntimeError: expected dtype BFloat16 but got Float)"]

    monkeypatch.setattr(trainer, "check_saved_model", reload_fails)
    out = tmp_path / "o"
    argv = [f"model={tiny_model_dir('qwen2_vl')}", f"data=[{_train_rows(tmp_path, 8, identical=2)}]",
            f"output_dir={out}", "precision=fp32", "gradient_checkpointing=false", "num_workers=0",
            "per_device_batch_size=2", "max_steps=6", "max_length=256", "learning_rate=1e-12", "eval_fraction=0",
            "probe_prompts=0", "reference=online"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = _message_lines(captured.err)
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert "does not load and generate" in lines[0] and "from_pretrained" in lines[0]
    assert "learning rate" not in lines[0], "the advice fits the cause"
    assert list((out / "final").glob("*.safetensors")) and (out / "metrics.jsonl").is_file()
    assert (out / "train_config.json").is_file()
    # pairs whose chosen equals rejected are skipped and reported; a margin that stays at 0 is warned about
    assert "identical_responses: 2" in captured.out and "rejected is identical to chosen" in captured.out
    assert "WARNING: step 5: the reward margin has stayed at 0" in captured.out


def test_train_on_nothing_but_identical_pairs_says_so(tmp_path, capsys, tiny_model_dir):
    from mpo_train.__main__ import main

    argv = [f"model={tiny_model_dir('qwen2_vl')}", f"data=[{_train_rows(tmp_path, 3, identical=3)}]",
            f"output_dir={tmp_path / 'o'}", "precision=fp32", "num_workers=0", "max_length=256"]
    _refused(main, argv, capsys, 1, "identical_responses: 3", tmp_path=tmp_path, out=tmp_path / "o")


# ------------------------------------------------------------------------------ every tool: inputs are not outputs

def test_no_tool_writes_over_or_empties_its_own_input(tmp_path, capsys, tiny_model_dir, monkeypatch):
    """--overwrite empties the output folder: never when that folder is an input or holds one."""
    from evals.run import main as evaluate
    from mmpr.build import runner
    from mmpr.build.cli import main as build
    from mmpr.convert import main as convert
    from mmpr.export import main as export
    from mpo_train.__main__ import main as train
    from tests.mmpr.test_build import ScriptedEngine
    from tests.test_front_doors import _pairs

    monkeypatch.setattr(runner, "make_engine", lambda *a, **k: ScriptedEngine())
    release = _release(tmp_path / "inputs", _rows(2))
    data = _pairs(tmp_path / "inputs" / "data")
    source = _build_source(tmp_path / "inputs" / "src", [_question(i) for i in range(2)])
    model = tiny_model_dir("qwen2_vl")
    inputs = tmp_path / "inputs"
    cases = [
        (convert, [str(release), "--out", str(release)], "is the release itself"),
        (convert, [str(release), "--out", str(inputs)], "holds the release"),
        (export, [str(data), "--format", "trl", "--out", str(inputs)], "holds the dataset"),
        (build, ["--engine", "transformers", "--model", str(model), "--sources", f"generic={source}", "--out",
                 str(source.parent)], "holds source generic"),
        (build, ["--engine", "transformers", "--model", str(model), "--sources", f"generic={source}", "--out",
                 str(tmp_path / "o"), "--release-out", str(source.parent)], "--release-out"),
        (train, [f"model={model}", f"data=[{data}]", f"output_dir={inputs}"], "holds data"),
        (evaluate, ["--tasks", "mathvista", "--model", str(model), "--out", str(model)], "is --model"),
    ]
    model_before = _tree(model)
    for main, argv, needle in cases:
        for extra in ([], ["--overwrite"]):
            _refused(main, argv + extra, capsys, 2, needle, tmp_path=tmp_path, out=tmp_path / "o")
    assert _tree(model) == model_before
    # a --release-out that holds something else is another output folder: refused, as --out is, without --overwrite
    argv = ["--engine", "transformers", "--model", str(model), "--sources", f"generic={source}", "--out",
            str(tmp_path / "o"), "--release-out", str(release)]
    _refused(build, argv, capsys, 2, "--release-out", "--overwrite", tmp_path=tmp_path, out=tmp_path / "o")


# ---------------------------------------------------------------------------------------------- killed mid-run

def _kill_when(argv: list[str], ready) -> None:
    """Start ``python argv`` and SIGKILL it once ``ready(proc)`` returns (no cleanup can run)."""
    import subprocess
    import sys

    from tests.test_front_doors import ROOT

    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ready(proc)
    finally:
        proc.kill()
        proc.wait()


def _when_exists(path: Path):
    def ready(proc):
        import time

        deadline = time.monotonic() + 120
        while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
    return ready


@pytest.mark.slow
def test_killed_runs_are_rerun_by_the_same_command_without_debris(tmp_path, capsys):
    from experiments.tiny_grid.generate import main as grid
    from mmpr.convert import main as convert
    from tests.test_front_doors import _when_stderr_shows

    rows = [{"question": f"question {i}", "chosen": f"good {i} " * 10, "rejected": f"bad {i} " * 10}
            for i in range(20_000)]
    release = _release(tmp_path, rows)
    out = tmp_path / "o"
    for _ in range(2):
        _kill_when(["-m", "mmpr.convert", str(release), "--out", str(out)], _when_stderr_shows("converting"))
    assert convert([str(release), "--out", str(out)]) == 0
    assert not list(out.glob(".staging-*")), "the killed runs' staging is gone"
    assert convert([str(release), "--out", str(tmp_path / "whole")]) == 0
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (out, tmp_path / "whole")]
    assert manifests[0]["content_hash"] == manifests[1]["content_hash"]
    data = tmp_path / "grid"
    _kill_when(["-m", "experiments.tiny_grid.generate", "data", str(data), "--train", "3000"],
               _when_exists(data / "images"))
    assert data.is_dir() and not (data / "task.json").exists(), "killed mid-write"
    assert grid(["data", str(data), "--train", "3000"]) == 0, "a killed run's folder is this command's own"
    assert (data / "task.json").is_file()
