"""Every command's front door, per tool: a missing input, a corrupt input, an occupied --out, a run that makes
nothing, and Ctrl-C each end in a non-zero exit, one line on stderr that names the problem, no traceback, and
nothing touched outside --out (an occupied --out is not touched either)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmpr.dataset_writer import SubsetInput, write_dataset
from mmpr.schemas import PreferencePair
from mmpr.testing import tiny_images, write_release

ROOT = Path(__file__).resolve().parents[1]


def _tree(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        out[str(p.relative_to(root))] = (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
    return out


def _message_lines(err: str) -> list[str]:
    """stderr without progress bars (redrawn in place on a terminal)."""
    return [line for line in err.replace("\r", "\n").splitlines()
            if line.strip() and "%|" not in line and "[00:" not in line]


def _refused(main, argv, capsys, code, *needles, tmp_path=None, out=None):
    """Run ``main(argv)``; check exit ``code``, one stderr line holding ``needles``, no traceback, and that nothing
    under ``tmp_path`` changed except inside ``out`` (which must not have been created if it did not exist)."""
    before = _tree(tmp_path, out) if tmp_path is not None else None
    existed = out is not None and out.exists()
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = _message_lines(err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    if before is not None:
        assert _tree(tmp_path, out) == before
    if out is not None and not existed:
        assert not out.exists(), "a failed run leaves no half-made folder"
    return lines[0]


def _pairs(folder: Path, n: int = 2) -> Path:
    img = tiny_images(1)[0]
    img.save(folder.parent / "img.png")
    pairs = [PreferencePair(id=f"p{i}", subset="toy", question=f"How many shapes ({i})?",
                            images=[str(folder.parent / "img.png")], chosen=f"Final answer: {i}",
                            rejected=f"Final answer: {i + 1}", kind="correctness", source="toy") for i in range(n)]
    write_dataset(folder, [SubsetInput("toy", pairs)], name="toy")
    return folder


def _occupied(tmp_path: Path) -> Path:
    out = tmp_path / "occupied"
    out.mkdir()
    (out / "keep.txt").write_text("another job's file")
    return out


# ---------------------------------------------------------------------------------------------------- mmpr.build

def _build(tmp_path, *extra):
    from mmpr.build.cli import main

    return main, ["--engine", "openai", "--model", "served-model", "--engine-args", "endpoints=http://127.0.0.1:9/v1",
                  *extra]


def test_build_missing_source_file(tmp_path, capsys):
    main, argv = _build(tmp_path, "--sources", f"generic={tmp_path / 'nope.jsonl'}", "--out", str(tmp_path / "o"))
    _refused(main, argv, capsys, 2, "source generic", "nope.jsonl: no such file or folder", tmp_path=tmp_path,
             out=tmp_path / "o")


def test_build_missing_model_folder_is_one_line(tmp_path, capsys):
    from mmpr.build.cli import main

    _refused(main, ["--model", str(tmp_path / "model"), "--sources", "sample", "--out", str(tmp_path / "o")],
             capsys, 2, "--model", "model does not exist", tmp_path=tmp_path, out=tmp_path / "o")


def test_build_corrupt_config_file(tmp_path, capsys):
    (tmp_path / "b.yaml").write_text("model: [unclosed\n")
    main, argv = _build(tmp_path, "--config", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "o"))
    _refused(main, argv, capsys, 2, "b.yaml", "not valid YAML", tmp_path=tmp_path, out=tmp_path / "o")


def test_build_unknown_config_key_lists_the_valid_ones(tmp_path, capsys):
    (tmp_path / "b.yaml").write_text("max_token: 64\n")
    main, argv = _build(tmp_path, "--config", str(tmp_path / "b.yaml"))
    _refused(main, argv, capsys, 2, "unknown key max_token", "max_tokens", "engine_args", tmp_path=tmp_path)


def test_build_occupied_out_needs_overwrite(tmp_path, capsys):
    out = _occupied(tmp_path)
    main, argv = _build(tmp_path, "--sources", "sample", "--out", str(out))
    _refused(main, argv, capsys, 2, str(out), "--overwrite", tmp_path=tmp_path)
    assert (out / "keep.txt").read_text() == "another job's file"


def test_build_with_zero_pairs_fails_with_the_reasons(tmp_path, capsys):
    rows = [{"id": f"q{i}", "image": "missing.png", "question": "How many?", "answer": "1"} for i in range(2)]
    rows_text = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n"
    (tmp_path / "src.jsonl").write_text(rows_text)
    main, argv = _build(tmp_path, "--sources", f"generic={tmp_path / 'src.jsonl'}", "--out", str(tmp_path / "o"))
    line = _refused(main, argv, capsys, 1, "0 pairs", "image_unreadable 2", "malformed_json 1",
                    tmp_path=tmp_path, out=tmp_path / "o")
    assert "dataset written" not in capsys.readouterr().out and line.startswith("error:")


# -------------------------------------------------------------------------------------------------- mmpr.convert

def _release(tmp_path, rows=None):
    rows = rows if rows is not None else [{"question": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}
                                          for i in range(3)]
    return write_release(tmp_path / "release", {"toy_pairs_vqa_correctness_rules": rows})


def test_convert_missing_release(tmp_path, capsys):
    from mmpr.convert import main

    _refused(main, [str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys, 2, "nope", "no such folder",
             tmp_path=tmp_path, out=tmp_path / "o")


def test_convert_corrupt_meta(tmp_path, capsys):
    from mmpr.convert import main

    release = _release(tmp_path)
    (release / "meta.json").write_text("{not json")
    _refused(main, [str(release), "--out", str(tmp_path / "o")], capsys, 2, "meta.json", "not valid JSON",
             tmp_path=tmp_path, out=tmp_path / "o")


def test_convert_into_another_dataset_needs_overwrite(tmp_path, capsys):
    from mmpr.convert import main

    other = _pairs(tmp_path / "other")
    release = _release(tmp_path)
    _refused(main, [str(release), "--out", str(other)], capsys, 2, str(other), "--overwrite", tmp_path=tmp_path)
    assert main([str(release), "--out", str(other), "--overwrite"]) == 0
    assert json.loads((other / "manifest.json").read_text())["num_pairs"] == 3
    assert main([str(release), "--out", str(other)]) == 0, "the same conversion again is this job's folder"


def test_convert_with_zero_pairs_fails_with_the_reasons(tmp_path, capsys):
    from mmpr.convert import main

    release = _release(tmp_path, rows=["{broken", "also broken"])
    _refused(main, [str(release), "--out", str(tmp_path / "o")], capsys, 1, "0 pairs", "malformed_json",
             tmp_path=tmp_path, out=tmp_path / "o")


# --------------------------------------------------------------------------------------------------- mmpr.export

def test_export_missing_dataset(tmp_path, capsys):
    from mmpr.export import main

    _refused(main, [str(tmp_path / "nope"), "--format", "trl", "--out", str(tmp_path / "o")], capsys, 2,
             "nope", "no such file or folder", tmp_path=tmp_path, out=tmp_path / "o")


def test_export_corrupt_dataset_leaves_no_folder(tmp_path, capsys):
    from mmpr.export import main

    data = _pairs(tmp_path / "data")
    for shard in data.rglob("*.parquet"):
        shard.write_bytes(b"not a parquet file")
    _refused(main, [str(data), "--format", "trl", "--out", str(tmp_path / "o")], capsys, 2,
             f"dataset {data}", "cannot be read", tmp_path=tmp_path, out=tmp_path / "o")


def test_export_occupied_out_and_out_inside_the_dataset(tmp_path, capsys):
    from mmpr.export import main

    data = _pairs(tmp_path / "data")
    out = _occupied(tmp_path)
    _refused(main, [str(data), "--format", "swift", "--out", str(out)], capsys, 2, "--overwrite", tmp_path=tmp_path)
    _refused(main, [str(data), "--format", "swift", "--out", str(data / "x")], capsys, 2, "inside the dataset",
             tmp_path=tmp_path)


def test_export_of_zero_pairs_fails(tmp_path, capsys):
    from mmpr.export import main

    data = _pairs(tmp_path / "empty", 1)  # today's writer refuses 0 pairs; an older one wrote such folders
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "num_pairs": 0}))
    _refused(main, [str(data), "--format", "swift", "--out", str(tmp_path / "o")], capsys, 1, "0 pairs",
             tmp_path=tmp_path, out=tmp_path / "o")


# ------------------------------------------------------------------------------------------------------ mpo_train

def test_train_missing_data_folder_is_named_without_the_hub(tmp_path, capsys, tiny_model_dir):
    from mpo_train.__main__ import main

    argv = [f"model={tiny_model_dir('qwen2_vl')}", "data=[runs/no-such-dataset]", f"output_dir={tmp_path / 'o'}"]
    start = time.monotonic()
    _refused(main, argv, capsys, 2, "data runs/no-such-dataset", "no such local folder", tmp_path=tmp_path,
             out=tmp_path / "o")
    assert time.monotonic() - start < 10, "no Hub retries"


def test_train_missing_model_folder(tmp_path, capsys):
    from mpo_train.__main__ import main

    argv = [f"model={tmp_path / 'nope'}", f"data=[{tmp_path}]", f"output_dir={tmp_path / 'o'}"]
    _refused(main, argv, capsys, 2, "model", "nope does not exist", tmp_path=tmp_path, out=tmp_path / "o")


def test_train_corrupt_recipe(tmp_path, capsys):
    from mpo_train.__main__ import main

    (tmp_path / "r.yaml").write_text("learning_rate: [1e-6\n")
    _refused(main, ["--config", str(tmp_path / "r.yaml")], capsys, 2, "r.yaml", "not valid YAML", tmp_path=tmp_path)


def test_train_occupied_output_dir(tmp_path, capsys, tiny_model_dir):
    from mpo_train.__main__ import main

    out = _occupied(tmp_path)
    data = _pairs(tmp_path / "data")
    argv = [f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]", f"output_dir={out}"]
    _refused(main, argv, capsys, 2, "--overwrite", tmp_path=tmp_path)


def test_train_with_zero_usable_pairs_fails(tmp_path, capsys, tiny_model_dir):
    from mpo_train.__main__ import main

    release = _release(tmp_path, rows=["{broken"])
    argv = [f"model={tiny_model_dir('qwen2_vl')}", f"data=[{release}]", f"output_dir={tmp_path / 'o'}"]
    _refused(main, argv, capsys, 1, "0 usable pairs", "mmpr.convert", tmp_path=tmp_path, out=tmp_path / "o")


# ------------------------------------------------------------------------------------------------------ evals.run

def test_eval_typo_in_data_key_lists_the_benchmarks(tmp_path, capsys):
    from evals.run import main

    argv = ["--tasks", "mathvista", "--model", "m", "--data", f"mathvsta={tmp_path}", "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 2, "--data", "unknown key mathvsta", "mathvista", tmp_path=tmp_path,
             out=tmp_path / "o")


def test_eval_missing_model_folder(tmp_path, capsys):
    from evals.run import main

    argv = ["--tasks", "mathvista", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 2, "--model", "nope does not exist", tmp_path=tmp_path, out=tmp_path / "o")


def _model_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return tmp_path / "model"


def test_eval_corrupt_parquet(tmp_path, capsys):
    from evals.run import main

    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    argv = ["--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), "--data",
            f"mathvista={tmp_path / 'bad.parquet'}", "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 2, "bad.parquet cannot be read", "--data", tmp_path=tmp_path, out=tmp_path / "o")


def test_eval_occupied_out(tmp_path, capsys):
    from evals.run import main

    out = _occupied(tmp_path)
    argv = ["--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), "--out", str(out)]
    _refused(main, argv, capsys, 2, str(out), "--overwrite", tmp_path=tmp_path)


def test_eval_with_zero_samples_fails(tmp_path, capsys, mathvista_parquet_empty):
    from evals.run import main

    argv = ["--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), "--data",
            f"mathvista={mathvista_parquet_empty}", "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 1, "0 samples", tmp_path=tmp_path, out=tmp_path / "o")


@pytest.fixture
def mathvista_parquet_empty(tmp_path):
    from datasets import Dataset

    from tests.evals.conftest import MATHVISTA_FEATURES

    path = tmp_path / "empty.parquet"
    Dataset.from_dict({k: [] for k in MATHVISTA_FEATURES}, features=MATHVISTA_FEATURES).to_parquet(str(path))
    return path


def test_eval_unreachable_judge(tmp_path, capsys):
    from evals.run import main

    argv = ["--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), "--judge", "http://127.0.0.1:9/v1",
            "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 3, "--judge http://127.0.0.1:9/v1", "did not answer", tmp_path=tmp_path,
             out=tmp_path / "o")


# ------------------------------------------------------------------------------------- evals.compare, agreement

def _results(folder: Path, total: int = 2) -> Path:
    folder.mkdir(parents=True)
    task = {"benchmark": "mathvista", "task": "t", "accuracy": 50.0, "correct": total // 2, "total": total,
            "unparsable": 0, "unparsable_rate": 0.0, "dataset": "d"}
    (folder / "results.json").write_text(json.dumps({
        "model": "m", "engine": "hf", "prompt": "cot", "prompt_template": "{question}", "generation": {},
        "lmms_eval_version": "0.7.3", "created_at": "2026-01-01T00:00:00Z", "limit": None,
        "tasks": {"mathvista": task} if total else {}}))
    return folder


def test_compare_missing_corrupt_occupied_and_empty(tmp_path, capsys):
    from evals.compare import main

    good = _results(tmp_path / "a")
    _refused(main, [str(tmp_path / "nope"), "--out", str(tmp_path / "o")], capsys, 2, "nope", "no results",
             tmp_path=tmp_path, out=tmp_path / "o")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{oops")
    _refused(main, [str(good), str(tmp_path / "bad"), "--out", str(tmp_path / "o")], capsys, 2, "results.json",
             "not a valid results file", tmp_path=tmp_path, out=tmp_path / "o")
    out = _occupied(tmp_path)
    _refused(main, [str(good), "--out", str(out)], capsys, 2, "--overwrite", tmp_path=tmp_path)
    empty = _results(tmp_path / "empty", total=0)
    _refused(main, [str(good), str(empty), "--out", str(tmp_path / "o")], capsys, 1, "no scored samples",
             tmp_path=tmp_path, out=tmp_path / "o")


def test_agreement_missing_corrupt_and_empty(tmp_path, capsys):
    from evals.agreement import TASK, main

    _refused(main, [str(tmp_path)], capsys, 2, "no MathVista CoT samples", tmp_path=tmp_path)
    samples = tmp_path / f"samples_{TASK}.jsonl"
    samples.write_text('{"reference": {}, "response": "", "correct": true}\n{torn')
    _refused(main, [str(tmp_path)], capsys, 2, f"{samples.name}:2", "not valid JSON", tmp_path=tmp_path)
    samples.write_text("")
    _refused(main, [str(tmp_path)], capsys, 1, "no samples", tmp_path=tmp_path)


def test_agreement_without_a_judge_server_is_one_line_not_a_rate(tmp_path, capsys):
    from evals.agreement import TASK, main

    ref = {"question_type": "free_form", "answer_type": "integer", "choices": None, "query": "How many?",
           "precision": None, "answer": "3"}
    (tmp_path / f"samples_{TASK}.jsonl").write_text(json.dumps(
        {"doc_id": 0, "reference": ref, "response": "I cannot tell.", "correct": False, "parsable": False,
         "extracted": None}) + "\n")
    _refused(main, [str(tmp_path), "--judge-url", "http://127.0.0.1:9/v1"], capsys, 3, "judge server",
             "did not answer", tmp_path=tmp_path)
    assert not (tmp_path / "agreement.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["mmpr.build", "mmpr.convert", "mmpr.export", "experiments.tiny_grid.generate",
                                  "mpo_train", "mpo_train.convert_internvl", "evals.run", "evals.compare",
                                  "evals.agreement", "experiments.tiny_grid.report"])
def test_an_unknown_flag_is_one_line_and_exit_2(tool):
    proc = subprocess.run([sys.executable, "-m", tool, "--no-such-flag"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2
    lines = _message_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"python -m {tool} --help" in lines[0], proc.stderr


# ------------------------------------------------------------------------------------------------------- Ctrl-C

class _Silent:
    """A TCP server that accepts connections and never answers: a tool waiting on it is interrupted there."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(120)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.clients = []  # held open: a dropped connection would reset the client before the SIGINT lands

    def wait_for_a_client(self):
        self.clients.append(self.sock.accept()[0])


def _interrupt(argv, tmp_path, *, ready, out=None, signum=signal.SIGINT):
    """Start ``argv``, wait for ``ready()`` to say it is at work, send SIGINT (or ``signum``: SIGTERM); check the
    one-line message, exit 130 (143), nothing touched outside ``out``."""
    before = _tree(tmp_path, out)
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ready(proc)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = _message_lines(err)
    term = signum == signal.SIGTERM
    assert proc.returncode == (143 if term else 130), err[-2000:]
    assert "Traceback" not in err
    expected = "terminated (SIGTERM)" if term else "interrupted"
    assert lines == [f"{expected}; rerun the same command to resume"], err[-2000:]
    assert _tree(tmp_path, out) == before


def _when_stderr_shows(text):
    def ready(proc):
        seen = ""
        deadline = time.monotonic() + 120
        while text not in seen and time.monotonic() < deadline:
            seen += proc.stderr.read(1)
    return ready


SIGNALS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])


@pytest.mark.slow
@SIGNALS
def test_ctrl_c_build_while_waiting_for_the_engine(tmp_path, signum):
    server = _Silent()
    out = tmp_path / "o"
    argv = ["-m", "mmpr.build", "--engine", "openai", "--model", "served", "--engine-args", f"endpoints={server.url}",
            "max_retries=0", "--sources", "sample", "--limit", "2", "--n", "1", "--out", str(out)]
    _interrupt(argv, tmp_path, ready=lambda proc: server.wait_for_a_client(), out=out, signum=signum)
    assert (out / ".mmpr-work" / "config.json").is_file(), "a stopped build keeps its work for the rerun"


@pytest.mark.slow
@SIGNALS
def test_ctrl_c_eval_while_waiting_for_the_judge(tmp_path, signum):
    server = _Silent()
    argv = ["-m", "evals.run", "--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), "--judge", server.url,
            "--out", str(tmp_path / "o")]
    _interrupt(argv, tmp_path, ready=lambda proc: server.wait_for_a_client(), out=tmp_path / "o", signum=signum)


@pytest.mark.slow
def test_ctrl_c_agreement_while_waiting_for_the_judge(tmp_path):
    from evals.agreement import TASK

    server = _Silent()
    ref = {"question_type": "free_form", "answer_type": "integer", "choices": None, "query": "How many?",
           "precision": None, "answer": "3"}
    (tmp_path / f"samples_{TASK}.jsonl").write_text(json.dumps(
        {"doc_id": 0, "reference": ref, "response": "I cannot tell.", "correct": False, "parsable": False,
         "extracted": None}) + "\n")
    _interrupt(["-m", "evals.agreement", str(tmp_path), "--judge-url", server.url], tmp_path,
               ready=lambda proc: server.wait_for_a_client())


@pytest.mark.slow
def test_ctrl_c_convert_mid_conversion(tmp_path):
    rows = [{"question": f"question {i}", "chosen": f"good {i} " * 10, "rejected": f"bad {i} " * 10}
            for i in range(20_000)]
    release = _release(tmp_path, rows=rows)
    out = tmp_path / "o"
    _interrupt(["-m", "mmpr.convert", str(release), "--out", str(out)], tmp_path,
               ready=_when_stderr_shows("converting"), out=out)
    assert not out.exists(), "an interrupted conversion leaves no half-made folder"


@pytest.mark.slow
def test_ctrl_c_export_mid_export(tmp_path):
    data = _pairs(tmp_path / "data", n=5_000)
    out = tmp_path / "o"
    _interrupt(["-m", "mmpr.export", str(data), "--format", "swift", "--out", str(out)], tmp_path,
               ready=_when_stderr_shows("export swift"), out=out)
    assert not out.exists(), "an interrupted export leaves no half-made folder"


@pytest.mark.slow
def test_ctrl_c_training(tmp_path, tiny_model_dir):
    data = _pairs(tmp_path / "data", n=8)
    out = tmp_path / "o"
    argv = ["-m", "mpo_train", f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]", f"output_dir={out}",
            "precision=fp32", "gradient_checkpointing=false", "num_workers=0", "per_device_batch_size=2",
            "max_steps=500", "max_length=256"]
    _interrupt(argv, tmp_path, ready=_when_stderr_shows("training"), out=out)


@pytest.mark.slow
def test_ctrl_c_compare(tmp_path):
    """compare is quick; the interrupt lands while it reads a results file that is a pipe no one writes to."""
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "results.json")
    holder = {}

    def ready(proc):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:  # opening the write end succeeds once the tool has opened the read end, and it is blocked there
                holder["fd"] = os.open(run / "results.json", os.O_WRONLY | os.O_NONBLOCK)
                return
            except OSError:
                time.sleep(0.05)

    try:
        _interrupt(["-m", "evals.compare", str(run), "--out", str(tmp_path / "o")], tmp_path, ready=ready,
                   out=tmp_path / "o")
    finally:
        if "fd" in holder:
            os.close(holder["fd"])
