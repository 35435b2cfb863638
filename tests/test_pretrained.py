"""The shipped default model: small, loads offline in our and diffusers' pipelines, and draws sprite-like images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline

from .test_remote_code import stock_pipeline

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"


def test_the_weights_are_small_and_the_card_credits_the_artists():
    weights = SHIPPED / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 10 * 2**20
    card = (SHIPPED / "README.md").read_text()
    assert all(name in card for name in ("ElvGames", "FrootsnVeggies", "kyrise"))


@pytest.mark.parametrize("cls", [SpritesDDPMPipeline, SpritesDDIMPipeline, DDPMPipeline, DDIMPipeline])
def test_loads_offline_in_four_pipelines(cls, monkeypatch):
    """Ours and diffusers' stock pipelines with from_pretrained, no code trusted (tests/test_remote_code.py)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import json

    from safetensors.torch import load_file

    pipe = cls.from_pretrained(SHIPPED) if cls.__name__.startswith("Sprites") else stock_pipeline(cls, SHIPPED)
    assert pipe.unet.config.sample_size == 16 and pipe.scheduler.config.num_train_timesteps == 500
    saved = load_file(SHIPPED / "unet" / "diffusion_pytorch_model.safetensors")
    state = pipe.unet.state_dict()
    assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in saved)  # every weight
    settings = json.loads((SHIPPED / "scheduler" / "scheduler_config.json").read_text())
    for key, value in settings.items():
        if not key.startswith("_"):
            loaded = pipe.scheduler.config[key]
            assert (list(loaded) if isinstance(loaded, tuple) else loaded) == value, key
    assert pipe.unet.training is False


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


CONDITIONAL = SHIPPED.parent / "sprites_conditional"


@pytest.mark.parametrize("name, config", [("sprites_ddpm", "sprites_ddpm.yaml"),
                                          ("sprites_ddpm_minsnr5", "sprites_ddpm_minsnr5.yaml"),
                                          ("sprites_conditional", "sprites_conditional.yaml")])
def test_each_shipped_folder_is_what_its_committed_config_trains(name, config):
    """The training record in the folder holds the committed config, and the record ran all its steps."""
    import json

    from training.config import load_config

    folder = SHIPPED.parent / name
    recorded = load_config(folder / "training" / "config.yaml").to_dict()
    committed = load_config(Path(__file__).resolve().parents[1] / "configs" / config).to_dict()
    recorded.pop("output_dir"), committed.pop("output_dir")  # where the run wrote, not what it trained
    committed["mixed_precision"] = committed["mixed_precision"] or "no"  # null: accelerate's, "no" without a launcher
    assert recorded == committed
    last = json.loads((folder / "training" / "stats.jsonl").read_text().strip().splitlines()[-1])
    assert last["step"] == committed["max_train_steps"]
    card = (folder / "README.md").read_text()
    assert all(n in card for n in ("ElvGames", "FrootsnVeggies", "kyrise")) and "<!-- table:" in card
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size < 10 * 2**20


def test_the_conditional_model_draws_the_requested_class(monkeypatch):
    """Guided (w = 2), 5 sprites per class: the sprite network recognises the requested class in almost all."""
    from evaluation.features import load_sprite_feature_net
    from evaluation.scoring import predict_classes

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    pipe = SpritesDDIMPipeline.from_pretrained(CONDITIONAL)
    pipe.set_progress_bar_config(disable=True)
    labels = [c for c in range(5) for _ in range(5)]
    x = pipe(batch_size=25, num_inference_steps=20, class_labels=labels, guidance_scale=2.0, prior="moments",
             generator=torch.Generator().manual_seed(0), output_type="np").images
    predicted, _ = predict_classes((x * 255).round().astype(np.uint8), load_sprite_feature_net())
    assert (predicted == np.array(labels)).mean() >= 0.8  # 0.99 at 50 steps on 1,000 (docs/guidance.md)
