"""One folder, one sampler: our pipelines take their defaults from the saved scheduler config, so with
their defaults they sample a folder exactly as diffusers' stock DDPMPipeline and DDIMPipeline do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline
from pipelines.schedule import make_scheduler

from .test_remote_code import stock_pipeline

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained" / "sprites_ddpm"


@pytest.fixture
def tiny_folder(micro_reference) -> Path:
    """A micro UNet trained for 12 steps; its pipeline folder as train.py saves it."""
    return micro_reference / "pipeline"


@pytest.fixture(params=["shipped", "tiny"])
def folder(request, tiny_folder) -> Path:
    return SHIPPED if request.param == "shipped" else tiny_folder


def _load(cls, folder: Path):
    """Ours and diffusers' stock pipelines with from_pretrained (the folder's model_index.json names the stock
    DDPMPipeline: tests/test_remote_code.py)."""
    if cls in (DDPMPipeline, DDIMPipeline):
        return stock_pipeline(cls, folder)
    pipe = cls.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_saved_scheduler_records_the_recommended_settings(tiny_folder):
    """train.py writes the config's sampling settings; the shipped folder holds the same ones."""
    for folder in (tiny_folder, SHIPPED):
        config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        assert (config["timestep_spacing"], config["clip_sample"], config["variance_type"]) == (
            "trailing", False, "fixed_large"), folder


def test_ddpm_defaults_equal_stock_ddpm_pipeline(folder):
    """Our DDPM pipeline with its defaults = stock DDPMPipeline(num_inference_steps=T), same generator seed."""
    ours, stock = _load(SpritesDDPMPipeline, folder), _load(DDPMPipeline, folder)
    T = ours.scheduler.config.num_train_timesteps
    a = ours(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    b = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=T,
              output_type="np").images
    assert np.abs(a - b).max() < 1e-4


def test_ddim_defaults_equal_stock_ddim_pipeline(folder):
    """Our DDIM pipeline with its defaults = stock DDIMPipeline(num_inference_steps=50), eta 0."""
    ours, stock = _load(SpritesDDIMPipeline, folder), _load(DDIMPipeline, folder)
    a = ours(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="np").images
    b = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=50, eta=0.0,
              output_type="np").images
    assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("cls", [SpritesDDPMPipeline, SpritesDDIMPipeline])
def test_call_arguments_override_the_config(unet, cls):
    """A setting given in the call wins over the scheduler config; without it the config decides."""
    kw = {"batch_size": 1, "num_inference_steps": 5, "output_type": "pt"}
    clip_trailing = cls(unet=unet, scheduler=make_scheduler(clip_sample=True, timestep_spacing="trailing"))
    plain_leading = cls(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="leading"))

    def run(pipe, **extra):
        return pipe(generator=torch.Generator().manual_seed(0), **kw, **extra).images

    assert torch.equal(run(clip_trailing, clip_sample=False, timestep_spacing="leading"), run(plain_leading))
    assert torch.equal(run(plain_leading, clip_sample=True, timestep_spacing="trailing"), run(clip_trailing))
    assert not torch.equal(run(clip_trailing), run(plain_leading))


def test_ddpm_variance_follows_variance_type(unet):
    """fixed_large is sigma_t^2 = beta_t ("beta"), fixed_small the posterior variance ("posterior")."""
    kw = {"batch_size": 1, "num_inference_steps": 5, "output_type": "pt", "clip_sample": False}

    def run(variance_type, **extra):
        pipe = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(variance_type=variance_type))
        return pipe(generator=torch.Generator().manual_seed(0), **kw, **extra).images

    assert torch.equal(run("fixed_large"), run("fixed_small", variance="beta"))
    assert torch.equal(run("fixed_small"), run("fixed_large", variance="posterior"))
    assert not torch.equal(run("fixed_large"), run("fixed_small"))
