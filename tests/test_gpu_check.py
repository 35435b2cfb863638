"""scripts/gpu_check.sh: one line and exit 0 without a GPU; its CPU dry run (SPRITEDIFF_GPU_CHECK_DRY=1, tiny
sizes) runs every command it uses on a GPU and writes the results JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ["bash", "scripts/gpu_check.sh"]


def gpu_check_module():
    return load_script("gpu_check")


def test_without_a_gpu_it_prints_one_line_and_exits_0(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SPRITEDIFF_GPU_CHECK_DRY", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the machine without a GPU, on any machine
    gpu_check = gpu_check_module()
    monkeypatch.setattr(gpu_check.shutil, "which", lambda name: None)
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [
        "gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check, exit 0"]
    assert not (tmp_path / "out").exists()


def test_a_cpu_build_of_torch_on_a_machine_with_nvidia_smi_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    """The GPU is there but this torch cannot use it (a CPU build, as made here): one line that says what to
    install, and a failing exit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho GPU 0\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("SPRITEDIFF_GPU_CHECK_DRY", raising=False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check_module().main(["--out", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "CPU build" in lines[0] and "CUDA build" in lines[0]
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
    assert result["cuda_tests_exit"] == 0 and result["precision"] == "bf16"
    commands = [line for line in r.stdout.splitlines() if line.startswith("+ ")]
    assert len(commands) == 4 and "--mixed_precision bf16" in commands[1] and "--preset fast" in commands[3]
    assert "passed" in r.stdout or "skipped" in r.stdout  # the CUDA tests ran (skipped without CUDA)
