"""Training runs for the tests: a micro UNet of configs/tiny.yaml for 12 steps, as a real subprocess of the
trainer (or of tests/fault_injection.py, the trainer with a fault injected)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

MICRO = ["--config", "configs/tiny.yaml", "--unet.block_out_channels", "[8,16,16]", "--train_batch_size", "16",
         "--max_train_steps", "12", "--checkpoint_every", "4", "--log_every", "2", "--lr_warmup_steps", "2",
         "--num_sample_images", "4", "--sample_inference_steps", "2", "--checkpoints_total_limit", "2",
         "--num_threads", "1"]
ROOT = Path(__file__).resolve().parents[1]


def train(out: Path, *extra: str, fault: str | None = None, launcher: list[str] | None = None,
          env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Train the micro run into ``out`` (``extra``: more overrides); ``fault``: see tests/fault_injection.py."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    if fault:
        launcher = [sys.executable, "-m", "tests.fault_injection", fault]
    cmd = [*(launcher or [sys.executable, "-m", "training.train"]), *MICRO, "--output_dir", str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def weights(run: Path, step: int = 12) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"checkpoint-{step:07d}" / "model.safetensors")


def ema_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")


def assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"max weight difference {worst}"
