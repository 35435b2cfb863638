#!/usr/bin/env bash
# Set up (or reuse) the environment, lint, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SPRITEDIFF_VENV:-.venv}/bin/activate"
ruff check .
python -m pytest "$@"
