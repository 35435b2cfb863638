"""The CUDA paths (run by scripts/gpu_check.sh on a GPU; skipped where torch sees no CUDA device): sampling (DDPM,
DDIM, an assigned diffusers scheduler, the solvers), the data prior, inversion, slerp, inpainting, image-to-image,
the sprite metrics and mixed-precision training (bf16, fp16 through accelerate, with the saved weights float32) on
the GPU give what the CPU gives, within float tolerance. TF32 is off here, so the tolerances are float32's."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from safetensors.torch import load_file

from pipelines import (
    SpritesDDIMPipeline,
    SpritesDDPMPipeline,
    SpritesImg2ImgPipeline,
    SpritesInpaintPipeline,
    SpritesSolverPipeline,
    slerp,
)
from pipelines.prior import DataMoments
from pipelines.schedule import make_scheduler

from .train_helpers import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained" / "sprites_ddpm"
torch.backends.cuda.matmul.allow_tf32 = False  # float32 on the GPU, as on the CPU
torch.backends.cudnn.allow_tf32 = False
SPRITES = np.linspace(0, 1, 4 * 16 * 16 * 3, dtype=np.float32).reshape(4, 16, 16, 3)


def _pair(cls, unet, scheduler=None, call=None, **kw):
    """The same call on the CPU and on the GPU (every draw from one CPU generator), both as CPU arrays."""
    images = []
    for device in ("cpu", "cuda"):
        pipe = cls(unet=unet, scheduler=make_scheduler()).to(device)
        if scheduler is not None:
            pipe.scheduler = scheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        if str(kw.get("prior", "")).startswith("moments"):
            pipe.set_data_moments(DataMoments.load(SHIPPED))
        assert pipe._execution_device.type == device
        generator = torch.Generator().manual_seed(0)
        out = call(pipe, generator) if call else pipe(batch_size=4, generator=generator, output_type="np", **kw).images
        images.append(out)
    unet.to("cpu")
    return images


def test_ddim_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesDDIMPipeline, unet, num_inference_steps=10)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_the_moments_prior_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesSolverPipeline, unet, sampler="dpmpp_2m", nfe=5, prior="moments")
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_ddpm_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesDDPMPipeline, unet, num_inference_steps=10)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_an_assigned_scheduler_on_the_gpu_gives_the_cpus_sprites(unet):
    cpu, gpu = _pair(SpritesDDIMPipeline, unet, scheduler=DPMSolverMultistepScheduler, num_inference_steps=8)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


@pytest.mark.parametrize("prior", ["moments-diagonal", "moments-lowrank"])
def test_the_other_data_priors_on_the_gpu(unet, prior):
    cpu, gpu = _pair(SpritesSolverPipeline, unet, sampler="dpmpp_2m", nfe=5, prior=prior)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_inversion_and_slerp_on_the_gpu(unet):
    def call(pipe, generator):
        latents = pipe.invert(SPRITES, num_inference_steps=5)
        assert latents.device.type == pipe._execution_device.type
        middle = slerp(latents[:2], latents[2:], [0.0, 0.5, 1.0])
        assert middle.device == latents.device
        return latents.cpu().numpy()

    cpu, gpu = _pair(SpritesDDIMPipeline, unet, call=call)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_inpainting_and_image_to_image_on_the_gpu(unet):
    mask = np.ones((16, 16), np.float32)
    mask[4:12, 4:12] = 0
    cpu, gpu = _pair(SpritesInpaintPipeline, unet, call=lambda pipe, g: pipe(
        SPRITES, mask, num_inference_steps=6, jump_length=2, jump_n_sample=2, generator=g, output_type="np").images)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)
    np.testing.assert_array_equal(gpu[:, :4], SPRITES[:, :4])  # the kept region comes back unchanged
    cpu, gpu = _pair(SpritesImg2ImgPipeline, unet, call=lambda pipe, g: pipe(
        SPRITES, strength=0.6, num_inference_steps=10, generator=g, output_type="np").images)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3, rtol=0)


def test_sprite_features_and_scores_on_the_gpu_equal_the_cpus(sprites_arrays):
    from evaluation.features import extract_sprite_features, load_sprite_feature_net
    from evaluation.quality import SpriteScorer

    images = sprites_arrays[0][:256]
    net = load_sprite_feature_net()
    cpu = extract_sprite_features(images, net)
    gpu = extract_sprite_features(images, copy.deepcopy(net).to("cuda"))
    np.testing.assert_allclose(gpu, cpu, atol=1e-3, rtol=1e-3)
    on_cpu, on_gpu = SpriteScorer().score(images), SpriteScorer(device="cuda").score(images)
    assert next(load_sprite_feature_net().parameters()).device.type == "cpu"  # the cached network stays put
    assert on_gpu["sprite_fid"] == pytest.approx(on_cpu["sprite_fid"], rel=1e-3, abs=1e-4)
    assert on_gpu["class_shares"] == on_cpu["class_shares"]


def test_the_sampling_command_inverts_on_the_gpu(tmp_path):
    from PIL import Image

    Image.fromarray((SPRITES[0] * 255).astype(np.uint8)).save(tmp_path / "sprite.png")
    r = subprocess.run([sys.executable, "-m", "training.sample", "--pipeline", str(SHIPPED), "--device", "cuda",
                        "--invert", str(tmp_path / "sprite.png"), "--nfe", "10", "--out", str(tmp_path / "rt.png")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "rt.png").stat().st_size > 0


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
    assert runs[precision] != runs["no"]  # the low precision took part in the forward pass
    log = (tmp_path / precision / "log.txt").read_text()
    assert re.search(rf"device cuda(:\d+)?, mixed precision {precision}", log)  # it trained on the GPU
    saved = load_file(tmp_path / precision / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    assert {v.dtype for v in saved.values()} == {torch.float32}  # the EMA pipeline is saved in float32


def test_evaluation_during_training_and_after_it_on_the_gpu(tmp_path):
    """eval_every on the GPU (sampling and the feature network there), then training.evaluate_run --device cuda
    on the same checkpoints: finite rows, the same steps."""
    from training.evaluate_run import evaluate_run

    out = tmp_path / "run"
    r = train(out, "--eval_every", "6", "--eval_samples", "8", "--eval_batch_size", "8")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [6, 12] and all(np.isfinite(row["fid_ddim50_moments"]) for row in rows)
    (out / "eval.jsonl").write_text(json.dumps(rows[0]) + "\n")  # step 12 to evaluate again, after the run
    new = evaluate_run(out, [], log=lambda *_: None, device="cuda")
    assert [row["step"] for row in new] == [8, 12]  # the kept checkpoints without a row
    assert new[1]["fid_ddim50_moments"] == pytest.approx(rows[1]["fid_ddim50_moments"], rel=0.05)
