#!/usr/bin/env bash
# Set up (or reuse) the environment, lint, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SPRITEDIFF_VENV:-.venv}/bin/activate"
ruff check .
# Two workers (pytest-xdist), one per core, whole files to a worker (their module fixtures are made once); each
# in-process test uses one torch thread (tests/conftest.py). SPRITEDIFF_TEST_WORKERS=0 runs in one process.
python -m pytest -n "${SPRITEDIFF_TEST_WORKERS:-2}" --dist loadfile "$@"
