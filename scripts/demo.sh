#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, train the tiny config on the default sprites, sample 50 DDPM
# and 50 DDIM sprites, and print the course's timing comparison (sample_ddpm(50) against sample_ddim(50)).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SPRITEDIFF_VENV:-.venv}/bin/activate"
RUN="${RUN:-runs/tiny}"
# --resume latest: a second demo reuses the finished run instead of refusing or overwriting it.
accelerate launch --config_file accelerate_config.yaml training/train.py --config configs/tiny.yaml \
  --output_dir "$RUN" --resume latest
python -m training.sample --pipeline "$RUN/pipeline" --sampler ddpm --num_images 50 --out "$RUN/ddpm_50.png"
python -m training.sample --pipeline "$RUN/pipeline" --sampler ddim --steps 50 --num_images 50 --out "$RUN/ddim_50.png"
python bench/sampling_time.py --pipeline "$RUN/pipeline" --num_images 50 --repeats 1 --json "$RUN/sampling_time.json"
echo "Loss curve: $RUN/loss.png   grids: $RUN/ddpm_50.png $RUN/ddim_50.png"
