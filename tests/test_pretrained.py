"""The shipped default model: small, loads offline in our and diffusers' pipelines, and draws sprite-like images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"


def test_the_weights_are_small_and_the_card_credits_the_artists():
    weights = SHIPPED / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 10 * 2**20
    card = (SHIPPED / "README.md").read_text()
    assert all(name in card for name in ("ElvGames", "FrootsnVeggies", "kyrise"))


@pytest.mark.parametrize("cls", [SpritesDDPMPipeline, SpritesDDIMPipeline, DDPMPipeline, DDIMPipeline])
def test_loads_offline_in_four_pipelines(cls, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = cls.from_pretrained(SHIPPED)
    assert pipe.unet.config.sample_size == 16 and pipe.scheduler.config.num_train_timesteps == 500


def test_samples_look_like_sprites(sprites_arrays):
    """Real sprites sit on a near-white background: the border pixels of samples must too (noise would not)."""
    torch.set_num_threads(1)
    pipe = SpritesDDIMPipeline.from_pretrained(SHIPPED)
    pipe.set_progress_bar_config(disable=True)
    x = pipe(batch_size=16, num_inference_steps=20, generator=torch.Generator().manual_seed(0),
             output_type="np").images
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    real = sprites_arrays[0][:, [0, -1]].astype(float) / 255
    assert real.mean() > 0.85 and border.mean() > 0.7  # real 0.87; noise in [0, 1] would give 0.5
    assert x.std(axis=(1, 2, 3)).mean() > 0.15  # and something is drawn in the middle
