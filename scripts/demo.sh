#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then, with the shipped model (no training), make the whole report:
# 50-sample DDPM and DDIM grids, the sampling-time comparison, the sprite-FID table of DDPM against DDIM, the
# training curve and the score_toy experiments -> outputs/report/report.html and report.md.
#   bash scripts/demo.sh             # the goal is under 15 minutes on 2 CPU cores (measured: docs/report/run.md)
#   bash scripts/demo.sh --quick     # a check of the machinery in a few minutes (numbers not meaningful)
#   bash scripts/demo.sh --retrain   # train configs/sprites_ddpm.yaml from scratch first (about 1.5 hours)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SPRITEDIFF_VENV:-.venv}/bin/activate"
python -m report "$@"   # its last line names the student number Q2 used and how to use yours
echo "Open outputs/report/report.html (or report.pdf with --pdf, or report.md)."
