#!/usr/bin/env bash
# Create (or reuse) .venv and install spritediff with its pinned dependencies.
# torch==2.13.0 is installed first, pinned: here pip takes the CPU wheel on local disk (from PyPI on Linux it is a
# CUDA build); an unpinned torch, asked for by another package, may pull a multi-GB CUDA build of another version.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SPRITEDIFF_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
stamp="$VENV/.spritediff-installed"
want="$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing dependencies (torch==${TORCH_VERSION:-2.13.0} first)"
  python -m pip install -q --upgrade pip 2>/dev/null || true
  python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
  python -m pip install -q -c scripts/constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
else
  echo "[setup] $VENV is up to date"
fi
