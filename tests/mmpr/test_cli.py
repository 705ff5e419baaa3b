import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmpr.cli import INTERRUPTED, ArgumentParser, error_line, front_door, quiet_logs
from mmpr.errors import NothingMade, Unreachable, UserError
from mmpr.locations import new_folder, writing_to


@pytest.mark.parametrize("error, code, text", [
    (UserError("--out x: holds something else"), 2, "error: --out x: holds something else"),
    (NothingMade("0 pairs"), 1, "error: 0 pairs"),
    (Unreachable("judge http://h: did not answer"), 3, "error: judge http://h: did not answer"),
    (KeyboardInterrupt(), 130, INTERRUPTED),
    (FileNotFoundError(2, "No such file or directory", "/data/x.jsonl"), 2, "/data/x.jsonl: No such file"),
    (ConnectionRefusedError(111, "Connection refused"), 3, "a server did not answer"),
    (json.JSONDecodeError("Expecting value", "{", 0), 2, "corrupt input"),
])
def test_error_lines_and_exit_codes(error, code, text):
    line, got = error_line(error)
    assert got == code and text in line and "\n" not in line


def test_front_door_prints_one_line_and_keeps_tracebacks_for_bugs(capsys):
    @front_door
    def refuses(argv):
        raise UserError("first line\nsecond line")

    assert refuses([]) == 2
    assert capsys.readouterr().err == "error: first line; second line\n"


@pytest.mark.parametrize("bug", [KeyError("a bug"), ValueError("a bad value inside the tool")])
def test_a_bug_is_one_line_exit_1_with_its_traceback_in_the_log_file(tmp_path, capsys, bug):
    log = tmp_path / "out" / "run.log"

    @front_door
    def buggy(argv):
        quiet_logs(False, log)
        raise bug

    assert buggy([]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "check" not in err, err
    assert "a bug in the tool" in err and str(log) in err and type(bug).__name__ in err
    assert "Traceback" in log.read_text() and "raise bug" in log.read_text()
    quiet_logs(False)


def test_a_bug_before_the_log_file_keeps_its_traceback_in_a_temporary_file(capsys):
    @front_door
    def buggy(argv):
        raise AttributeError("no such thing")

    assert buggy([]) == 1
    line = capsys.readouterr().err.strip()
    kept = Path(line.split("its traceback is in ")[1].split(";")[0])
    try:
        assert "AttributeError: no such thing" in kept.read_text()
    finally:
        kept.unlink()


class SafetensorError(Exception):
    """Named as safetensors' Rust error, which carries no errno."""


@pytest.mark.parametrize("error, text", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on {out}"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/x/shard.parquet"), "no space left on /data/x;"),
    (OSError(errno.EFBIG, "Error writing bytes to file. Detail: [errno 27] File too large"), "file-size limit"),
    (SafetensorError("Error while serializing: I/O error: File too large (os error 27)"), "file-size limit"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"), "cut short"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"), "/mnt/ro is on a read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/out/x"), "/ro/out/x: permission denied"),
])
def test_write_errors_name_the_folder_and_the_cause(tmp_path, error, text):
    writing_to(tmp_path)
    line, code = error_line(error)
    assert code == 2 and text.format(out=tmp_path) in line and "\n" not in line, line
    assert "rerun the same command" in line


class APIStatusError(Exception):
    """Named as openai's error for a server that answered with an HTTP error status."""


def test_a_server_answering_with_an_error_is_exit_3_not_a_bug():
    line, code = error_line(APIStatusError("Error code: 500 - {'error': 'CUDA out of memory'}"))
    assert code == 3 and "a server answered with an error" in line and "CUDA out of memory" in line


def test_sigterm_says_how_to_resume_and_exits_143(tmp_path):
    script = ("import sys, time\nfrom mmpr.cli import front_door\n"
              "@front_door\ndef main(argv):\n    print('ready', flush=True)\n    time.sleep(60)\n"
              "sys.exit(main([]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stdout.readline() == "ready\n"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143 and time.monotonic() - start < 10
    assert err == "terminated (SIGTERM); rerun the same command to resume\n"


def test_ctrl_c_while_an_error_is_being_reported_is_still_interrupted(monkeypatch, capsys):
    def interrupted(e):
        raise KeyboardInterrupt

    monkeypatch.setattr("mmpr.cli.error_line", interrupted)

    @front_door
    def unreachable(argv):
        raise Unreachable("--judge http://x/v1: did not answer")

    assert unreachable([]) == 130
    assert capsys.readouterr().err == INTERRUPTED + "\n"


def test_usage_errors_are_one_line_pointing_to_help(capsys):
    parser = ArgumentParser(prog="python -m tool")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=["a", "b"])
    for argv, needle in ([], "required: out"), (["o", "--bogus"], "unrecognized arguments: --bogus"), (
            ["o", "--mode", "c"], "invalid choice: 'c'"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err and err.endswith("see python -m tool --help\n"), err


def test_new_folder_is_removed_on_failure_unless_it_existed_or_the_error_is_not_its_kind(tmp_path):
    with pytest.raises(UserError), new_folder(tmp_path / "a"):
        (tmp_path / "a").mkdir()
        raise UserError("bad")
    assert not (tmp_path / "a").exists()
    with pytest.raises(KeyboardInterrupt), new_folder(tmp_path / "b", only=UserError):
        (tmp_path / "b").mkdir()
        raise KeyboardInterrupt
    assert (tmp_path / "b").exists(), "the work of an interrupted resumable job stays"
    (tmp_path / "c").mkdir()
    with pytest.raises(UserError), new_folder(tmp_path / "c"):
        raise UserError("bad")
    assert (tmp_path / "c").exists()


def test_quiet_logs_send_library_logs_to_the_file_only(tmp_path, capsys):
    quiet_logs(False, tmp_path / "logs" / "run.log")
    assert not (tmp_path / "logs").exists(), "no log file until something is logged"
    logging.getLogger("vllm.engine").warning("a noisy engine line")
    assert capsys.readouterr() == ("", "")
    assert "a noisy engine line" in (tmp_path / "logs" / "run.log").read_text()
    quiet_logs(True)
    logging.getLogger("mpo_train").info("status")
    assert capsys.readouterr().err.count("status") == 1
    quiet_logs(False)
