"""Settings and situations each tool must answer in one line, through its public command: counts of 0 or -1,
an empty --tasks, an unknown attention backend, a jsonl source mixing types in a field, a build that makes 0 pairs
from malformed lines and an endpoint answering HTTP 500 (SIGTERM: tests/test_front_doors.py, beside Ctrl-C)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_front_doors import _model_folder, _pairs, _refused


@pytest.mark.parametrize("limit", ["0", "-1", "all"])
def test_eval_limit_below_one_is_refused(tmp_path, capsys, limit):
    from evals.run import main

    argv = ["--tasks", "mathvista", "--model", str(_model_folder(tmp_path)), f"--limit={limit}", "--out",
            str(tmp_path / "o")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --limit" in err and "python -m evals.run --help" in err, err
    assert ("must be 1 or more" if limit != "all" else "expected a whole number") in err
    assert not (tmp_path / "o").exists()


def test_eval_limit_zero_in_a_config_file_is_refused(tmp_path, capsys):
    from evals.run import main

    (tmp_path / "run.yaml").write_text("limit: 0\n")
    argv = ["--config", str(tmp_path / "run.yaml"), "--tasks", "mathvista", "--model", str(_model_folder(tmp_path)),
            "--out", str(tmp_path / "o")]
    _refused(main, argv, capsys, 2, "limit", "must be 1 or more", tmp_path=tmp_path, out=tmp_path / "o")


def test_build_n_zero_is_refused(tmp_path, capsys):
    from mmpr.build.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--model", "m", "--sources", "sample", "--n", "0", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "argument --n: must be 1 or more" in capsys.readouterr().err


@pytest.mark.parametrize("tasks", ["", " , "])
def test_eval_empty_tasks_blames_tasks(tmp_path, capsys, tasks):
    from evals.run import main

    argv = ["--tasks", tasks, "--model", str(_model_folder(tmp_path)), "--out", str(tmp_path / "o")]
    line = _refused(main, argv, capsys, 2, "--tasks", "names no benchmark", "mathvista", tmp_path=tmp_path,
                    out=tmp_path / "o")
    assert "--data" not in line


@pytest.mark.parametrize("backend, needles", [
    ("spda", ("attn_implementation", "unknown attention backend 'spda'", "sdpa", "flex_attention")),
    ("flash_attention_2", ("attn_implementation=flash_attention_2", "not installed", "sdpa")),
    ("flex_attention", ("attn_implementation=flex_attention", "Qwen2VLForConditionalGeneration does not support",
                        "sdpa")),
])
def test_train_bad_attention_backend_fails_before_anything_is_made(tmp_path, capsys, tiny_model_dir, backend,
                                                                   needles):
    from mpo_train.__main__ import main

    data = _pairs(tmp_path / "data")
    argv = [f"model={tiny_model_dir('qwen2_vl')}", f"data=[{data}]", f"output_dir={tmp_path / 'o'}",
            f"attn_implementation={backend}"]
    _refused(main, argv, capsys, 2, *needles, tmp_path=tmp_path, out=tmp_path / "o")


def _build(tmp_path, rows_text):
    from mmpr.build.cli import main

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "src.jsonl").write_text(rows_text)
    return main, ["--model", str(tmp_path / "model"), "--engine", "transformers", "--sources",
                  f"generic={tmp_path / 'src.jsonl'}", "--out", str(tmp_path / "o")]


def test_build_mixed_answer_types_name_the_file_line_and_field(tmp_path, capsys):
    rows = [{"id": "q0", "image": None, "question": "How many?", "answer": 3},
            {"id": "q1", "image": None, "question": "Which colour?", "answer": "red"}]
    main, argv = _build(tmp_path, "".join(json.dumps(r) + "\n" for r in rows))
    _refused(main, argv, capsys, 2, f"{tmp_path / 'src.jsonl'}:2", "'answer'", "text", "a number", "line 1",
             tmp_path=tmp_path, out=tmp_path / "o")


def test_build_with_zero_pairs_names_the_malformed_lines(tmp_path, capsys):
    rows = [{"id": "q0", "image": "missing.png", "question": "How many?", "answer": "1"}]
    main, argv = _build(tmp_path, json.dumps(rows[0]) + "\n{broken\n")
    _refused(main, argv, capsys, 1, "0 pairs", "malformed_json 1", f"{tmp_path / 'src.jsonl'}:2",
             "missing.png", tmp_path=tmp_path, out=tmp_path / "o")


class _Failing(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that is up and answers every request with HTTP 500."""

    def log_message(self, *args):
        pass

    def _fail(self):
        body = json.dumps({"error": {"message": "CUDA out of memory", "type": "InternalServerError"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._fail()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._fail()


@pytest.fixture
def failing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_build_against_an_endpoint_answering_500_says_server_error_not_unreachable(tmp_path, capsys,
                                                                                   failing_server):
    from mmpr.build.cli import main

    argv = ["--engine", "openai", "--model", "served", "--engine-args", f"endpoints={failing_server}",
            "max_retries=0", "--sources", "sample", "--limit", "2", "--n", "1", "--out", str(tmp_path / "o")]
    line = _refused(main, argv, capsys, 1, "0 pairs", "server_error 2", "HTTP 500", "CUDA out of memory",
                    tmp_path=tmp_path, out=tmp_path / "o")
    assert "unreachable" not in line
