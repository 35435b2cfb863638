"""Speed options do not change the samples: the same seed with the option on and off gives the same
images within float tolerance.

Our update rule with precomputed coefficients against ``scheduler.step`` is tested in test_pipeline_ddim.py
and test_pipeline_ddpm.py (against the stock pipelines and the schedulers' step)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline
from pipelines.schedule import make_scheduler
from pipelines.unet_runtime import prepare_unet
from training.config import load_config
from training.model import build_unet

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-4  # images in [0, 1]; float32 reassociation across layouts / thread counts stays far below this


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build_unet(load_config(ROOT / "configs" / "tiny.yaml").unet).eval()


def _sample(unet, sampler: str, seed: int = 0, **kw) -> torch.Tensor:
    cls = SpritesDDPMPipeline if sampler == "ddpm" else SpritesDDIMPipeline
    pipe = cls(unet=unet, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    kw = {"batch_size": 4, "num_inference_steps": 10, "output_type": "pt", **kw}
    if "latents" not in kw:
        kw["generator"] = torch.Generator().manual_seed(seed)
    return pipe(**kw).images


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_channels_last_gives_the_same_samples(unet, sampler):
    plain = _sample(unet, sampler)
    fast = prepare_unet(copy.deepcopy(unet), channels_last=True)
    assert fast.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(_sample(fast, sampler), plain, atol=ATOL, rtol=0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_two_threads_give_the_same_samples(unet, sampler):
    plain = _sample(unet, sampler, num_inference_steps=4)
    torch.set_num_threads(2)
    try:
        two = _sample(unet, sampler, num_inference_steps=4)
    finally:
        torch.set_num_threads(1)
    torch.testing.assert_close(two, plain, atol=ATOL, rtol=0)


def test_batch_size_split_gives_the_same_samples(unet):
    """One call of 8 images or two calls of 4 from the same x_T (deterministic DDIM): the same images."""
    latents = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    whole = _sample(unet, "ddim", batch_size=8, latents=latents)
    halves = torch.cat([_sample(unet, "ddim", batch_size=4, latents=part) for part in latents.chunk(2)])
    torch.testing.assert_close(halves, whole, atol=ATOL, rtol=0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_the_pipelines_run_in_inference_mode_and_no_grad_gives_the_same_samples(unet, sampler):
    """The pipelines' ``__call__`` runs under ``torch.inference_mode`` (its outputs are inference tensors); the
    same ``__call__`` undecorated, under ``torch.no_grad``, gives the same sprites."""
    cls = SpritesDDPMPipeline if sampler == "ddpm" else SpritesDDIMPipeline
    images = _sample(unet, sampler, num_inference_steps=4)
    assert images.is_inference()
    pipe = cls(unet=unet, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        plain = cls.__call__.__wrapped__(pipe, batch_size=4, num_inference_steps=4, output_type="pt",
                                          generator=torch.Generator().manual_seed(0)).images
    assert not plain.is_inference() and not plain.requires_grad
    torch.testing.assert_close(plain, images, atol=0, rtol=0)


@pytest.mark.slow
def test_torch_compile_gives_the_same_samples(unet):
    plain = _sample(unet, "ddim", num_inference_steps=3)
    fast = prepare_unet(copy.deepcopy(unet), compile=True)
    torch.testing.assert_close(_sample(fast, "ddim", num_inference_steps=3), plain, atol=ATOL, rtol=0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_onnxruntime_gives_the_same_samples(unet, sampler, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from pipelines.unet_runtime import OnnxUNet

    fast = OnnxUNet(unet, threads=1, path=tmp_path / "unet.onnx")
    torch.testing.assert_close(_sample(fast, sampler), _sample(unet, sampler), atol=ATOL, rtol=0)
    x = torch.randn(3, 3, 16, 16)  # another batch size than the export's, and a per-sample timestep
    with torch.inference_mode():
        torch.testing.assert_close(fast(x, torch.tensor([3, 200, 499])).sample,
                                   unet(x, torch.tensor([3, 200, 499])).sample, atol=1e-5, rtol=0)


def test_onnxruntime_refuses_a_conditional_unet():
    pytest.importorskip("onnxruntime")
    from pipelines.unet_runtime import OnnxUNet

    cond = build_unet(load_config(ROOT / "configs" / "tiny.yaml").unet, conditional=True)
    with pytest.raises(ValueError, match="class-conditional"):
        OnnxUNet(cond)


def test_sample_cli_runtime_onnxruntime(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from PIL import Image

    from training.sample import main

    torch.manual_seed(0)
    folder = tmp_path / "pipeline"
    SpritesDDPMPipeline(unet=build_unet(load_config(ROOT / "configs" / "tiny.yaml").unet).eval(),
                        scheduler=make_scheduler()).save_pretrained(folder)
    grids = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / f"{runtime}.png"
        assert main(["--pipeline", str(folder), "--sampler", "ddim", "--steps", "3", "--num_images", "4",
                     "--runtime", runtime, "--out", str(out)]) == 0
        grids[runtime] = np.asarray(Image.open(out))[-(64 + 8):].astype(int)  # the grid, not the caption
    assert np.abs(grids["torch"] - grids["onnxruntime"]).max() <= 1  # uint8 pixels: rounding at most
