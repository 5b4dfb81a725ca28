#!/usr/bin/env bash
# The GPU checks in one run, for a session that has a CUDA GPU: the GPU tests, then `python -m bench --gpu`
# (QLoRA and LoRA on a 1B and a 7B-class model, ours against Trainer + peft, tokens/s, peak GPU memory, MFU).
# About 6-8 minutes on one H100/H200; the table goes to $OUT (or bench/) as results-gpu.json and gpu_check.log.
#
#   bench/gpu_check.sh            (from the repository root, with the studio's Python on PATH as python3,
#                                  or PY=/path/to/python)
#
# A machine without internet (the lent GPU machines) lacks some packages; carry them as wheels in .whl/ (see
# /work/.library/device/README.md), made here first with, for Python 3.12 on x86-64:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl bitsandbytes==0.50.2 datasets dill multiprocess
# and run with carry [".whl"]. The models: when the hub cache there holds Qwen2.5-1.5B/7B-Instruct they are used,
# else the same architectures with random weights (same speed and memory; the table says which).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-bench}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  $PY -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'peft', peft.__version__)"
  $PY -c "import bitsandbytes; print('bitsandbytes', bitsandbytes.__version__)" || echo "bitsandbytes missing: QLoRA rows fail"
  # 1. the GPU branches' tests (they run on the CPU in CI; here they meet CUDA), the fused loss and the packing
  timeout 240 $PY -m pytest -q -x -p no:cacheprovider tests/test_gpu_choices.py tests/test_speed_fused.py \
    tests/test_chat_tokens.py || echo "GPU tests failed (exit $?)"
  # 2. the GPU bench: one process per section, the JSON beside this log
  timeout 480 $PY -m bench --gpu --json "$OUT/results-gpu.json" || echo "bench --gpu failed (exit $?)"
} 2>&1 | tee "$OUT/gpu_check.log"
