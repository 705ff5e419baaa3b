"""A read-only output folder, a full disk and a file-size limit, for every tool that writes: one line naming the
folder and the cause, exit 2, no traceback, nothing changed where it must not, and the same command finishes once
the cause is gone.

A read-only folder is a real ``chmod`` where that stops writes; as root (CI may run so) chmod does not, and the
same refusal is made at Python's write layer instead. A full disk is an ENOSPC raised at that layer after some
writes went through. The file-size limit is real: ``RLIMIT_FSIZE`` in a subprocess, so pyarrow's and safetensors'
own writes fail as they do on a full or capped disk."""

import builtins
import errno
import io
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mmpr.dataset_writer import read_manifest
from tests.test_front_doors import ROOT, _message_lines, _pairs, _refused, _release, _results, _tree


def deny_writes(monkeypatch, root: Path, code: int, *, after: int = 0) -> None:
    """Every write under ``root`` (open for writing, mkdir, rename onto; unlink too unless the disk is only full)
    after the first ``after`` fails with ``OSError(code)`` naming the path, as the kernel would answer."""
    root_text = str(Path(root).absolute())
    seen = [0]

    def hit(path) -> bool:
        if isinstance(path, int):
            return False
        text = os.path.abspath(os.fsdecode(path))
        if text != root_text and not text.startswith(root_text + os.sep):
            return False
        seen[0] += 1
        return seen[0] > after

    def fail(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and hit(file):
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and hit(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real, index=0):
        def wrapped(*args, **kwargs):
            if hit(args[index]):
                fail(args[index])
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    for name in ("mkdir",) if code == errno.ENOSPC else ("mkdir", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), 1))


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)`` makes ``folder`` refuse writes; ``read_only.undo()`` makes it writable again."""
    state = {}

    def make(folder: Path) -> None:
        state["folder"], state["mode"] = folder, folder.stat().st_mode
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
        try:  # root writes through chmod: refuse at the write layer instead
            (folder / ".probe").touch()
            (folder / ".probe").unlink()
            state["patch"] = pytest.MonkeyPatch()
            deny_writes(state["patch"], folder, errno.EACCES)
        except PermissionError:
            pass

    def undo() -> None:
        if "patch" in state:
            state.pop("patch").undo()
        state["folder"].chmod(state["mode"])

    make.undo = undo
    yield make
    if "folder" in state:
        undo()


# ----------------------------------------------------------------------------------------------- the tools' runs

@pytest.fixture
def scripted_build(monkeypatch, tmp_path):
    """``mmpr.build`` on a small local source with a scripted engine: (main, argv without --out)."""
    from mmpr.build import cli, runner
    from tests.mmpr.test_build import ScriptedEngine

    monkeypatch.setattr(runner, "make_engine", lambda name, model, **args: ScriptedEngine())
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    from mmpr.testing import tiny_images

    image = tiny_images(1)[0]
    image.save(tmp_path / "img.png")
    rows = [{"id": f"q{i}", "image": "img.png", "question": f"How many shapes? ({i})", "answer": str(i % 4),
             "answer_type": "integer"} for i in range(8)]
    (tmp_path / "src.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return cli.main, ["--model", str(tmp_path / "model"), "--engine", "transformers", "--sources",
                      f"generic={tmp_path / 'src.jsonl'}", "--n", "4", "--max-tokens", "32", "--batch-size", "2"]


def _tool(name, tmp_path, request):
    """(main, argv without the output folder, how to add it) for each of the seven tools."""
    if name == "mmpr.build":
        main, argv = request.getfixturevalue("scripted_build")
        return main, argv, lambda out: [*argv, "--out", str(out)]
    if name == "mmpr.convert":
        from mmpr.convert import main

        release = _release(tmp_path)
        return main, [str(release)], lambda out: [str(release), "--out", str(out)]
    if name == "mmpr.export":
        from mmpr.export import main

        data = _pairs(tmp_path / "data")
        return main, [], lambda out: [str(data), "--format", "trl", "--out", str(out)]
    if name == "mpo_train":
        from mpo_train.__main__ import main

        model, data = request.getfixturevalue("tiny_model_dir")("qwen2_vl"), _pairs(tmp_path / "data")
        return main, [], lambda out: [f"model={model}", f"data=[{data}]", f"output_dir={out}"]
    if name == "evals.run":
        from evals.run import main
        from tests.test_front_doors import _model_folder

        model = _model_folder(tmp_path)
        return main, [], lambda out: ["--tasks", "mathvista", "--model", str(model), "--out", str(out)]
    if name == "evals.compare":
        from evals.compare import main

        a, b = _results(tmp_path / "a"), _results(tmp_path / "b")
        return main, [], lambda out: [str(a), str(b), "--out", str(out)]
    raise AssertionError(name)


TOOLS = ["mmpr.build", "mmpr.convert", "mmpr.export", "mpo_train", "evals.run", "evals.compare"]


@pytest.mark.parametrize("tool", TOOLS)
def test_a_read_only_out_is_one_line_before_any_work(tool, tmp_path, capsys, read_only, request):
    main, _, with_out = _tool(tool, tmp_path, request)
    out = tmp_path / "out"
    out.mkdir()
    read_only(out)
    what = "output_dir" if tool == "mpo_train" else "--out"
    line = _refused(main, with_out(out), capsys, 2, f"{what} {out}: cannot be written", "permission denied",
                    "rerun the same command", tmp_path=tmp_path)
    assert not any(out.iterdir())
    read_only.undo()
    if tool in ("mmpr.build", "mmpr.convert", "mmpr.export", "evals.compare"):  # the others' runs: slow tests
        assert main(with_out(out)) == 0, capsys.readouterr().err
        assert any(out.iterdir())
    assert "Traceback" not in line


def test_a_new_out_under_a_read_only_folder_is_refused(tmp_path, capsys, read_only, scripted_build):
    main, argv = scripted_build
    parent = tmp_path / "shared"
    parent.mkdir()
    read_only(parent)
    _refused(main, [*argv, "--out", str(parent / "new")], capsys, 2, str(parent / "new"), "cannot be written",
             tmp_path=tmp_path)
    assert not (parent / "new").exists()


def test_agreement_into_a_read_only_run_folder(tmp_path, capsys, read_only):
    from evals.agreement import TASK, main

    ref = {"question_type": "free_form", "answer_type": "integer", "choices": None, "query": "How many?",
           "precision": None, "answer": "3"}
    (tmp_path / f"samples_{TASK}.jsonl").write_text(json.dumps(
        {"doc_id": 0, "reference": ref, "response": "Final answer: 3", "correct": True, "parsable": True,
         "extracted": "3"}) + "\n")
    read_only(tmp_path)
    _refused(main, [str(tmp_path), "--judge-url", "http://127.0.0.1:9/v1"], capsys, 2, "the run folder",
             str(tmp_path), "cannot be written", tmp_path=tmp_path)


def test_a_build_resumes_to_the_same_dataset_after_a_full_disk(tmp_path, capsys, monkeypatch, scripted_build):
    main, argv = scripted_build
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    patch = pytest.MonkeyPatch()
    deny_writes(patch, out, errno.ENOSPC, after=12)
    try:
        line = _refused(main, [*argv, "--out", str(out)], capsys, 2, "no space left on", str(out),
                        "free some space", "rerun the same command to resume")
    finally:
        patch.undo()
    assert (out / ".mmpr-work").is_dir(), f"the work done before the disk filled up is kept ({line})"
    assert main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    assert read_manifest(out).content_hash == read_manifest(tmp_path / "whole").content_hash


def test_a_full_disk_while_comparing_leaves_no_half_made_folder(tmp_path, capsys):
    main, _, with_out = _tool("evals.compare", tmp_path, None)
    out = tmp_path / "cmp"
    patch = pytest.MonkeyPatch()
    deny_writes(patch, out, errno.ENOSPC, after=1)
    try:
        _refused(main, with_out(out), capsys, 2, "no space left on", str(out), tmp_path=tmp_path, out=out)
    finally:
        patch.undo()
    assert main(with_out(out)) == 0


# ------------------------------------------------------------------------------------ a real file-size limit

def _capped(argv: list[str], limit: int) -> subprocess.CompletedProcess:
    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=cap, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = _message_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_convert_past_a_file_size_limit(tmp_path):
    rows = [{"question": f"question {i}", "chosen": os.urandom(300).hex(), "rejected": os.urandom(300).hex()}
            for i in range(400)]  # incompressible: the parquet outgrows the limit
    release = _release(tmp_path, rows=rows)
    out = tmp_path / "o"
    before = _tree(tmp_path)
    proc = _capped(["mmpr.convert", str(release), "--out", str(out)], 64_000)
    _one_line(proc, "file-size limit", "rerun the same command")
    assert _tree(tmp_path) == before and not out.exists(), "a failed conversion leaves nothing behind"
    proc = _capped(["mmpr.convert", str(release), "--out", str(out)], resource.RLIM_INFINITY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_manifest(out).num_pairs == 400


@pytest.mark.slow
def test_training_past_a_file_size_limit_resumes(tmp_path, tiny_model_dir):
    """safetensors' "File too large" (a Rust error with no errno) and torch's short write both become the line."""
    data = _pairs(tmp_path / "data", n=8)
    out = tmp_path / "o"
    argv = ["mpo_train", f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]", f"output_dir={out}",
            "precision=fp32", "gradient_checkpointing=false", "num_workers=0", "per_device_batch_size=2",
            "max_steps=2", "max_length=256", "probe_prompts=0"]
    proc = _capped(argv, 200_000)
    line = _one_line(proc, str(out), "rerun the same command to resume")
    assert "file-size limit" in line or "cut short" in line, line
    assert (out / "train_config.json").is_file(), "the run's folder is kept for the rerun"
    proc = _capped(argv, resource.RLIM_INFINITY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "final" / "config.json").is_file()
