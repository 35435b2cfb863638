"""The CUDA paths (run by scripts/gpu_check.sh on a GPU; skipped where torch sees no CUDA device): sampling, the
data prior, the sprite metrics' features and mixed-precision training (bf16, fp16 through accelerate) on the GPU
give what the CPU gives, within float tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import SpritesDDIMPipeline, SpritesSolverPipeline
from pipelines.prior import DataMoments
from pipelines.schedule import make_scheduler

from .train_helpers import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"


def _pair(cls, unet, **kw):
    """The same call on the CPU and on the GPU (x_T from one CPU generator), both as CPU arrays."""
    images = []
    for device in ("cpu", "cuda"):
        pipe = cls(unet=unet, scheduler=make_scheduler()).to(device)
        pipe.set_progress_bar_config(disable=True)
        if kw.get("prior") == "moments":
            pipe.set_data_moments(DataMoments.load(SHIPPED))
        assert pipe._execution_device.type == device
        images.append(pipe(batch_size=4, generator=torch.Generator().manual_seed(0), output_type="np", **kw).images)
    unet.to("cpu")
    return images


def test_ddim_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesDDIMPipeline, unet, num_inference_steps=10)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_the_moments_prior_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesSolverPipeline, unet, sampler="dpmpp_2m", nfe=5, prior="moments")
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_sprite_features_on_the_gpu_equal_the_cpus(sprites_arrays):
    from evaluation.features import extract_sprite_features, load_sprite_feature_net

    images = sprites_arrays[0][:256]
    net = load_sprite_feature_net()
    cpu = extract_sprite_features(images, net)
    gpu = extract_sprite_features(images, net.to("cuda"))
    np.testing.assert_allclose(gpu, cpu, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_the_gpu(tmp_path, precision):
    """The micro run in bf16 / fp16 on the GPU: it finishes, its losses are finite and near the fp32 run's on the
    GPU (the first step, before the weights part, within a few percent)."""
    runs = {}
    for mp in ("no", precision):
        out = tmp_path / mp
        r = train(out, "--mixed_precision", mp)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[mp] = [json.loads(line)["loss"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert np.isfinite(runs[precision]).all()
    assert runs[precision][0] == pytest.approx(runs["no"][0], rel=0.05)
