"""An append-only response cache: what a killed run already paid for is read back on the rerun."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ResponseCache:
    """Append-only jsonl of ``{"key", "response"}``; a torn last line (a kill mid-write) is ignored."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.responses: dict[str, str] = {}
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # a write cut short: drop the torn line before appending
                with open(self.path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.responses[record["key"]] = record["response"]

    def add(self, items: list[tuple[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for key, response in items:
                f.write(json.dumps({"key": key, "response": response}, ensure_ascii=False) + "\n")
                self.responses[key] = response
            f.flush()
            os.fsync(f.fileno())
