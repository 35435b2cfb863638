# Written by spritediff's save_pretrained from its pipelines/scheduler_loop.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""Sampling with another diffusers scheduler assigned to a pipeline, the diffusers way to change the sampler:

    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)

The DDPM pipeline runs its written-out steps with a DDPMScheduler, the DDIM pipeline with a DDPMScheduler or
DDIMScheduler (whose schedule they read), and both run this loop with any other scheduler; the pipelines with a
method of their own refuse another scheduler (:func:`pipelines.common.runs_own_steps`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from .sprites_common import (
    SpritesPipelineOutput,
    check_sampling_args,
    initial_noise,
    keep_after,
    pipeline_output,
)
from .sprites_labels import ClassConditioning, guidance
from .sprites_schedule import read_schedule


class SchedulerLoopMixin:
    """Sampling with any other diffusers scheduler assigned to ``pipe.scheduler``, as diffusers' pipelines do:
    its ``set_timesteps``, ``scale_model_input`` and ``step``, with this project's priors, labels and guidance."""

    def scheduler_loop(self, batch_size: int, generator, num_inference_steps: int, prior: str, class_labels: Any,
                       guidance_scale: float, latents: torch.Tensor | None, output_type: str,
                       return_intermediates: bool, intermediate_every: int, return_dict: bool,
                       **step_options: Any) -> SpritesPipelineOutput | tuple:
        """Sample with ``self.scheduler`` (``step_options`` go to its ``step``: DDIM's ``eta``)."""
        scheduler = self.scheduler
        shape = check_sampling_args(self.unet, batch_size, generator, latents, num_inference_steps,
                                    scheduler.config.num_train_timesteps, "leading", output_type, intermediate_every)
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size, self.class_names)
        device, dtype = self._execution_device, self.unet.dtype
        scheduler.set_timesteps(num_inference_steps, device=device)
        takes = inspect.signature(scheduler.step).parameters
        options = {**({"generator": generator} if "generator" in takes else {}), **step_options}
        alpha_bar = float(read_schedule(scheduler)[1][int(scheduler.timesteps[0])])
        x_T = self.make_prior(prior, alpha_bar) if latents is None else None
        x = initial_noise(shape, generator, latents, device, dtype, x_T) * scheduler.init_noise_sigma
        kept = [x] if return_intermediates else None
        with cond.applied(self.unet):
            for i, t in enumerate(self.progress_bar(scheduler.timesteps)):
                eps = self.unet(scheduler.scale_model_input(cond.batch(x), t), t, class_labels=cond.labels).sample
                eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                x = scheduler.step(eps, t, x, **options).prev_sample
                if kept is not None and keep_after(i, len(scheduler.timesteps), intermediate_every):
                    kept.append(x)
        return pipeline_output(self, x, kept, output_type, return_dict)
