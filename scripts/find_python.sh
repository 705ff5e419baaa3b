# Sourced by the scripts: sets PYTHON to the project's environment, so that they run as the README prints them,
# without an activated environment: $PYTHON if set, else ROOT/.venv (made by scripts/setup.sh), else a `python` on
# PATH that has mmpr installed; otherwise one line saying what to do.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then
    PYTHON="$ROOT/.venv/bin/python"
  elif command -v python >/dev/null 2>&1 && python -c "import mmpr, PIL" >/dev/null 2>&1; then
    PYTHON=python
  else
    echo "error: no environment with mmpr: run 'bash scripts/setup.sh' in $ROOT first (it makes .venv), or set" \
         "PYTHON=/path/to/python of an environment where mmpr is installed" >&2
    exit 2
  fi
fi
