"""scripts/gpu_check.sh: one line and exit 0 without a GPU; its CPU dry run (SPRITEDIFF_GPU_CHECK_DRY=1, tiny
sizes) runs every command it uses on a GPU and writes the results JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ["bash", "scripts/gpu_check.sh"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the machine without a GPU")
def test_without_a_gpu_it_prints_one_line_and_exits_0(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SPRITEDIFF_GPU_CHECK_DRY"}
    r = subprocess.run([*SCRIPT, "--out", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip().splitlines() == [
        "gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check, exit 0"]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_dry_run_runs_every_command_on_the_cpu_and_writes_the_json(tmp_path):
    r = subprocess.run([*SCRIPT, "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                       timeout=1200, env={**os.environ, "SPRITEDIFF_GPU_CHECK_DRY": "1", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert result["dry_run"] is True and result["device"] == "cpu"
    for key in ("cuda_tests_s", "train_s", "ddim50_s", "fast_preset_s", "train_images_per_s", "cpu_images_per_s"):
        assert result[key] > 0, key
    assert result["speed_up"] == result["train_images_per_s"] / result["cpu_images_per_s"]
    commands = [line for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert len(commands) == 4 and "--mixed_precision bf16" in commands[1] and "--preset fast" in commands[3]
    assert "passed" in r.stdout or "skipped" in r.stdout  # the CUDA tests ran (skipped without CUDA)
