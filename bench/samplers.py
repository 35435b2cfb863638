"""Samplers by name for the benches: ours (pipelines.loading) and diffusers' stock schedulers as the anchor, all
on one UNet, called with the number of UNet evaluations (NFE) they may spend."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor

from pipelines import SpritesSolverPipeline
from pipelines.common import SpritesPipelineOutput, to_output
from pipelines.loading import SAMPLERS, load_all_samplers, pipeline_class, sampler_arguments
from pipelines.samplers import steps_for_nfe

# name -> (diffusers scheduler class name, its settings, UNet calls per step: Heun 2 but 1 on the last)
STOCK = {
    "stock_dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "stock_dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "stock_unipc": ("UniPCMultistepScheduler", {}),
    "stock_euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "stock_heun": ("HeunDiscreteScheduler", {}),
}


class StockSampler:
    """diffusers' own loop for a stock scheduler (scale the input, predict, step) on our UNet and noise: x_T is
    z from the generator (or the data prior of ``prior``), times the scheduler's ``init_noise_sigma``."""

    def __init__(self, solver_pipe, name: str):
        import diffusers

        cls_name, settings = STOCK[name]
        self.pipe, self.name = solver_pipe, name
        self.make = lambda **kw: getattr(diffusers, cls_name).from_config(solver_pipe.scheduler.config,
                                                                           **{**settings, **kw})

    @torch.inference_mode()
    def __call__(self, batch_size: int, generator: torch.Generator, nfe: int, prior: str = "standard",
                 output_type: str = "np", **scheduler_settings: Any) -> SpritesPipelineOutput:
        scheduler = self.make(**scheduler_settings)
        scheduler.set_timesteps(steps_for_nfe("heun", nfe) if self.name == "stock_heun" else nfe)
        unet = self.pipe.unet
        size = unet.config.sample_size
        shape = (batch_size, unet.config.in_channels, size, size)
        z = randn_tensor(shape, generator=generator, dtype=unet.dtype)
        first = float(scheduler.timesteps[0])
        ab = float(self.pipe.scheduler.alphas_cumprod[min(round(first), len(self.pipe.scheduler.alphas_cumprod) - 1)])
        x = self.pipe.make_prior(prior, ab)(z) * scheduler.init_noise_sigma
        takes_generator = "generator" in inspect.signature(scheduler.step).parameters
        calls = 0
        for t in scheduler.timesteps:
            eps = unet(scheduler.scale_model_input(x, t), t).sample
            calls += 1
            x = scheduler.step(eps, t, x, **({"generator": generator} if takes_generator else {})).prev_sample
        if calls > nfe:
            raise RuntimeError(f"{self.name}: {calls} UNet calls for nfe {nfe}")
        return SpritesPipelineOutput(images=to_output(x, output_type, None))


def make_sampler_pipelines(folder: str | Path) -> dict[str, Any]:
    """``{"ddpm", "ddim", "solver", "stock_*": callable}`` sharing the UNet, scheduler and data moments of
    ``folder``."""
    pipes = load_all_samplers(folder)
    for name in STOCK:
        pipes[name] = StockSampler(pipes["solver"], name)
    return pipes


def sampler_call(pipes: dict[str, Any], sampler: str, nfe: int, kwargs: dict[str, Any]) -> tuple[Any, dict]:
    """(callable, call keyword arguments) that sample with ``sampler`` in ``nfe`` UNet evaluations."""
    if sampler in STOCK:
        return pipes[sampler], {"nfe": nfe, **kwargs}
    if sampler not in SAMPLERS:
        raise SystemExit(f"error: unknown sampler {sampler!r}; known: {', '.join([*SAMPLERS, *STOCK])}")
    key = "solver" if pipeline_class(sampler, kwargs) is SpritesSolverPipeline else sampler
    return pipes[key], sampler_arguments(sampler, nfe, **kwargs)

