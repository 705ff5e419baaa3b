"""A tiny OpenAI-compatible chat server on 127.0.0.1 that answers like an answer-extraction judge would: the text
after the last "answer is" / "Final answer:", or the last number, or NONE. Deterministic, for tests.

``JudgeServer(fail_on=TEXT)`` answers HTTP 500 to every request whose prompt contains TEXT, and
``JudgeServer(empty_on=TEXT)`` an empty reply: a judge that fails on some items."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "rule-judge"


def extract(text: str) -> str:
    response = text.split("Response:", 1)[-1] if "Response:" in text else text.rsplit("\n\n", 2)[-2] if \
        text.count("\n\n") >= 2 else text
    m = re.findall(r"(?:answer is|Final answer:)\s*\(?(-?\d+(?:\.\d+)?|[^\s.)\"]+)", response, re.I)
    if m:
        return m[-1]
    numbers = re.findall(r"-?\d+(?:\.\d+)?", response)
    return numbers[-1] if numbers else "NONE"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test"}]})

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(payload)
        text = payload["messages"][-1]["content"]
        text = text if isinstance(text, str) else " ".join(p.get("text", "") for p in text)
        if self.server.fail_on and self.server.fail_on in text:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = "" if self.server.empty_on and self.server.empty_on in text else extract(text)
        self._send({"id": "x", "object": "chat.completion", "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


class JudgeServer:
    def __init__(self, fail_on: str | None = None, empty_on: str | None = None):
        self.fail_on, self.empty_on = fail_on, empty_on

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.server.fail_on, self.server.empty_on = self.fail_on, self.empty_on
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        return self

    @property
    def requests(self) -> list[dict]:
        return self.server.requests

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Serve the rule judge until interrupted: ``python -m tests.evals.judge_server --port 8011``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.evals.judge_server", description=__doc__)
    parser.add_argument("--port", type=int, default=8011)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.requests, server.fail_on, server.empty_on = [], None, None
    print(f"rule judge at http://127.0.0.1:{args.port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
