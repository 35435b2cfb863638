"""Samplers by name for the benches: our pipelines on one shared UNet, and the NFE each call costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_sampler_pipelines(folder: str | Path) -> dict[str, Any]:
    """``{sampler name: pipeline}`` sharing the UNet, scheduler and data moments loaded from ``folder``."""
    from pipelines import SpritesDDIMPipeline
    from training.sample import load_pipeline

    ddpm = load_pipeline(folder, "ddpm")
    ddpm.unet.eval()
    ddim = SpritesDDIMPipeline(unet=ddpm.unet, scheduler=ddpm.scheduler)
    ddim.register_to_config(_name_or_path=str(folder))  # finds the folder's data moments
    ddim.set_progress_bar_config(disable=True)
    return {"ddpm": ddpm, "ddim": ddim}


def sampler_call(pipes: dict[str, Any], sampler: str, nfe: int, kwargs: dict[str, Any]) -> tuple[Any, dict]:
    """(pipeline, call keyword arguments) that sample with ``sampler`` in ``nfe`` UNet evaluations."""
    if sampler not in pipes:
        raise SystemExit(f"error: unknown sampler {sampler!r}; known: {', '.join(pipes)}")
    return pipes[sampler], {"num_inference_steps": nfe, **kwargs}
