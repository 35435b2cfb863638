#!/usr/bin/env bash
# The first run on a GPU (under 5 minutes on one): the CUDA tests, 500 bf16 training steps of the default config
# against the CPU's images/s, DDIM-50 and the fast preset for 1,000 sprites, one JSON (runs/gpu_check/gpu_check.json).
# Without a GPU: one line, exit 0. SPRITEDIFF_GPU_CHECK_DRY=1: every command on the CPU at tiny sizes.
#     bash scripts/gpu_check.sh [--out runs/gpu_check]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
[ -z "${VIRTUAL_ENV:-}" ] && [ -f "${SPRITEDIFF_VENV:-.venv}/bin/activate" ] && . "${SPRITEDIFF_VENV:-.venv}/bin/activate"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python scripts/gpu_check.py "$@"
