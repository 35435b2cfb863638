"""init_from: a conditional UNet started from an unconditional pipeline is, at step 0, that same model."""

from __future__ import annotations

import pytest
import torch

from pipelines import SpritesDDPMPipeline
from pipelines.schedule import make_scheduler
from training.config import ConfigError, load_config
from training.model import build_unet, init_unet_from


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = load_config("configs/tiny.yaml", ["--unet.block_out_channels", "[8,16,16]"])
    torch.manual_seed(0)
    unet = build_unet(cfg.unet).eval()
    folder = tmp_path_factory.mktemp("uncond") / "pipeline"
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler()).save_pretrained(folder)
    return cfg, unet, folder


def test_conditional_start_equals_the_unconditional_model(saved):
    cfg, base, folder = saved
    cond = build_unet(cfg.unet, conditional=True).eval()
    assert init_unet_from(cond, str(folder)) == ["class_embedding.weight"]
    x, t = torch.randn(6, 3, 16, 16), torch.tensor([0, 50, 100, 200, 400, 499])
    with torch.no_grad():
        ref = base(x, t).sample
        for label in range(6):
            out = cond(x, t, class_labels=torch.full((6,), label)).sample
            assert torch.allclose(out, ref, atol=1e-6)


def test_init_from_a_different_architecture_is_refused(saved):
    cfg, _, folder = saved
    other = build_unet({**cfg.unet, "block_out_channels": [16, 32, 32]})
    with pytest.raises(ConfigError, match="init_from"):
        init_unet_from(other, str(folder))
    with pytest.raises(ConfigError, match="no .safetensors"):
        init_unet_from(other, str(folder.parent))
