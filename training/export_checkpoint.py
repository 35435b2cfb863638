"""Turn a training checkpoint into a pipeline folder (EMA weights), e.g. to score a run part way.

    python -m training.export_checkpoint runs/sprites_ddpm/checkpoints/checkpoint-0003000 OUT_DIR [--raw]

The folder is what the end of training writes: the UNet, the run's scheduler (with its sampling settings), the
data moments for ``prior="moments"`` (from the run's data) and a model card.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from pipelines.atomic import atomic_dir
from sprites.data import SpritesDataError
from sprites.errors import ConfigError
from training.config import load_config
from training.hub import write_model_card
from training.model import build_scheduler, build_unet
from training.moments import data_moments


def checkpoint_unet(checkpoint: Path, ema: bool = True):
    """The UNet of a checkpoint folder, with its EMA weights unless ``ema`` is False."""
    checkpoint = Path(checkpoint)
    run = checkpoint.parent.parent
    cfg = load_config(run / "config.yaml")
    unet = build_unet(cfg.unet, cfg.conditional)
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{checkpoint}: no model.safetensors; not a complete training checkpoint")
    unet.load_state_dict(load_file(weights))
    if ema:
        states = [torch.load(p, weights_only=True) for p in sorted(checkpoint.glob("custom_checkpoint_*.pkl"))]
        shadow = next((s["shadow_params"] for s in states if isinstance(s, dict) and "shadow_params" in s), None)
        if shadow is None:
            raise ConfigError(f"{checkpoint}: holds no EMA state; pass --raw for the raw weights")
        for p, s in zip(unet.parameters(), shadow, strict=True):
            p.data.copy_(s)
    return unet.eval(), cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA")
    args = p.parse_args(argv)
    from pipelines import SpritesDDPMPipeline

    try:
        unet, cfg = checkpoint_unet(args.checkpoint, ema=not args.raw)
        moments = data_moments(cfg.unet, cfg.data_path, cfg.hflip)
    except (ConfigError, SpritesDataError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    step = int(args.checkpoint.name.split("-")[-1])
    with atomic_dir(args.out) as tmp:
        SpritesDDPMPipeline(unet=unet, scheduler=build_scheduler(cfg)).save_pretrained(tmp)
        moments.save(tmp)
        write_model_card(tmp, {"config": cfg.to_dict(), "steps": step, "parameters": sum(
            q.numel() for q in unet.parameters())})
    print(f"wrote {args.out} (step {step}, {'raw' if args.raw else 'EMA'} weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
