"""Settings the trainer must honour: hflip, the image shape of the UNet config, the loss weighting and
EMA options, checkpoint export, and launch errors that stay one line under accelerate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pipelines import SpritesDDIMPipeline
from pipelines.prior import MOMENTS_FILE, DataMoments
from training.config import load_config
from training.loss import DiffusionLoss
from training.train import make_batch, make_optimization, step_randomness

from .test_train_faults import ROOT, ema_weights, train, weights


@pytest.fixture
def micro_run(micro_reference) -> Path:
    return micro_reference


@pytest.mark.parametrize("hflip", [True, False])
def test_hflip_is_honoured(hflip):
    """hflip false: every training image is the data image; true: about half are its mirror image."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["--hflip", str(hflip).lower(), "--train_batch_size", "256"])
    g = torch.Generator().manual_seed(0)
    images = torch.rand(512, 3, 16, 16, generator=g) * 2 - 1  # no image is its own mirror
    labels = torch.zeros(512, dtype=torch.long)
    flipped = 0
    for step in range(4):
        _, (x0, _, _, _) = make_batch(cfg, step, images, labels, slice(0, 256), "cpu")
        _, idx, *_ = step_randomness(cfg, step, len(images))
        same = (x0 == images[idx]).flatten(1).all(1)
        mirrored = (x0 == images[idx].flip(-1)).flatten(1).all(1)
        assert bool((same | mirrored).all())
        flipped += int(mirrored.sum())
    if hflip:
        assert 0.4 < flipped / (4 * 256) < 0.6
    else:
        assert flipped == 0


@pytest.mark.parametrize("extra, shape", [
    (["--unet.sample_size", "32"], (3, 32, 32)),
    (["--unet.in_channels", "1", "--unet.out_channels", "1"], (1, 16, 16)),
])
def test_unet_shape_comes_from_the_config(tmp_path, extra, shape):
    """A 32x32 or a grey UNet trains, saves its data moments and samples at its own shape."""
    out = tmp_path / "run"
    r = train(out, *extra, "--max_train_steps", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    assert DataMoments.load(out / "pipeline" / MOMENTS_FILE).shape == shape
    pipe = SpritesDDIMPipeline.from_pretrained(out / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    for prior in ("standard", "moments"):
        images = pipe(batch_size=2, num_inference_steps=3, output_type="np", prior=prior).images
        assert images.shape == (2, shape[1], shape[2], shape[0])
    grid = tmp_path / "grid.png"
    r = subprocess.run([sys.executable, "-m", "training.sample", "--pipeline", str(out / "pipeline"), "--sampler",
                        "ddim", "--steps", "2", "--num_images", "3", "--out", str(grid)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and grid.is_file(), r.stderr[-1000:]


def test_min_snr_weighting_is_the_weighted_mean():
    """min-SNR-gamma: each sample's squared error times min(SNR_t, gamma) / SNR_t (Hang et al. 2023)."""
    ab = torch.linspace(0.999, 0.01, 50, dtype=torch.float64).float()

    class Echo(torch.nn.Module):  # eps_theta = 0: the per-sample error is mean(noise^2)
        def forward(self, x, t, class_labels=None):
            return type("Out", (), {"sample": torch.zeros_like(x)})()

    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 3, 4, 4, generator=g)
    t = torch.tensor([0, 5, 10, 20, 40, 49])
    plain = DiffusionLoss(ab)(Echo(), x0, t, noise)
    weighted = DiffusionLoss(ab, "min_snr", gamma=5.0)(Echo(), x0, t, noise)
    snr = ab.double() / (1 - ab.double())
    w = (snr.clamp(max=5.0) / snr)[t]
    per = noise.double().pow(2).flatten(1).mean(1)
    torch.testing.assert_close(plain.double(), per.mean(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(weighted.double(), (w * per).mean(), rtol=1e-6, atol=1e-7)


def test_power_ema_decay_is_t_over_t_plus_gamma_plus_one(unet):
    """ema_power gamma: decay t / (t + gamma + 1) at optimisation step t (EDM2's power EMA), capped."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["--ema_power", "7", "--ema_decay", "0.9999"])
    _, _, ema = make_optimization(cfg, unet)
    for t in (1, 10, 100, 1000):
        assert ema.get_decay(t + 1) == pytest.approx(t / (t + 8), rel=1e-12)
    assert ema.get_decay(10**7) == pytest.approx(0.9999)


def test_export_checkpoint_gives_the_runs_pipeline(micro_run, tmp_path):
    """The last checkpoint exported with EMA weights is the pipeline the run saved; --raw gives the raw
    weights; the folder has the run's scheduler settings and data moments, and samples."""
    ckpt = micro_run / "checkpoints" / "checkpoint-0000012"
    for extra, want in (([], ema_weights(micro_run)), (["--raw"], weights(micro_run))):
        out = tmp_path / f"export{len(extra)}"
        r = subprocess.run([sys.executable, "-m", "training.export_checkpoint", str(ckpt), str(out), *extra],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-1000:]
        got = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
        assert json.loads((out / "scheduler" / "scheduler_config.json").read_text()) == json.loads(
            (micro_run / "pipeline" / "scheduler" / "scheduler_config.json").read_text())
        a = DataMoments.load(out / MOMENTS_FILE)
        b = DataMoments.load(micro_run / "pipeline" / MOMENTS_FILE)
        assert torch.equal(a.mean, b.mean) and torch.equal(a.cov, b.cov)
    r = subprocess.run([sys.executable, "-m", "training.export_checkpoint", str(micro_run), str(tmp_path / "x")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_export_ddim_without_steps(micro_run, tmp_path):
    """`python -m evaluation.export --sampler ddim` without --steps samples with the default 50 steps."""
    r = subprocess.run([sys.executable, "-m", "evaluation.export", "--generated", str(tmp_path / "gen"),
                        "--generated_from", str(micro_run / "pipeline"), "--num_images", "2", "--sampler", "ddim"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]
    assert len(list((tmp_path / "gen").glob("*.png"))) == 2


def test_refused_launch_is_one_line_under_accelerate_launch_quiet(micro_run):
    """The design card's command, with --quiet as the README writes it, into a used folder: our line only."""
    r = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--config_file",
                        "accelerate_config.yaml", "training/train.py", "--config", "configs/tiny.yaml",
                        "--output_dir", str(micro_run)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [line for line in r.stderr.strip().splitlines() if line.startswith(
        "error: output_dir")] and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.slow
def test_refused_two_process_launch_stops_every_process_with_one_message(micro_run):
    """Two processes: both stop at once (no process left at a barrier to die with a traceback of its own), our
    line comes first; the launcher's own failure summary follows and cannot be silenced from the script."""
    from .test_train_faults import LAUNCH_2

    r = subprocess.run([*LAUNCH_2[:3], "--quiet", *LAUNCH_2[3:], "--config", "configs/tiny.yaml", "--output_dir",
                        str(micro_run)], cwd=ROOT, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"})
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: output_dir") and "already holds a run" in lines[0]
    assert "[rank" not in r.stderr and sum(line.startswith("error:") for line in lines) == 1
