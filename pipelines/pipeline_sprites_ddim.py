"""DDIM sampling, eq. 12 of Song et al. (2021), written out.

    x_prev = sqrt(alpha_bar_prev) x0_pred + sqrt(1 - alpha_bar_prev - sigma_t^2) eps + sigma_t z,
    x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
    sigma_t = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)   (eq. 16)

over ``num_inference_steps`` timesteps; ``prev`` is the next timestep of the sequence (alpha_bar = 1 after the
last). eta = 0 is deterministic, eta = 1 has the DDPM posterior variance.

Defaults not given in the call (``clip_sample``, ``timestep_spacing``) come from the scheduler config saved in
the folder, as in diffusers' ``DDIMPipeline``, so both sample a folder the same way. ``prior="moments"`` starts
from the data's Gaussian at the first timestep instead of N(0, I) (:mod:`pipelines.prior`).
With eta = 0 a DDIM step is Euler's step of the probability-flow ODE in the sigma variables (Karras et al. 2022,
section 3); DDIM on other sigmas than the model's timesteps (a learned schedule) is the solver pipeline's
``sampler="ddim"``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from pipelines.common import (
    SavedFolderMixin,
    SpritesPipelineOutput,
    check_number,
    check_sampling_args,
    config_default,
    initial_noise,
    keep_after,
    pipeline_output,
    refuse_own_settings,
    runs_own_steps,
)
from pipelines.ddim_steps import ddim_steps, ddim_update
from pipelines.labels import ClassConditioning, ClassNamesMixin, guidance
from pipelines.prior import DataPriorMixin
from pipelines.schedule import read_schedule, spaced_timesteps
from pipelines.scheduler_loop import SchedulerLoopMixin


class SpritesDDIMPipeline(SchedulerLoopMixin, DataPriorMixin, ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """DDIM sampling of a sprites ``UNet2DModel`` (Song et al. 2021, eq. 12).

    With a ``DDPMScheduler`` or a ``DDIMScheduler`` the loop below runs eq. 12, reading only the scheduler's
    schedule and sampling defaults; any other diffusers scheduler assigned to ``pipe.scheduler`` samples with its
    own steps (:mod:`pipelines.scheduler_loop`).
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet, scheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int = 50,
        eta: float = 0.0,
        clip_sample: bool | None = None,
        timestep_spacing: str | None = None,
        prior: str = "standard",
        class_labels: Any = None,
        guidance_scale: float = 1.0,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_intermediates: bool = False,
        intermediate_every: int = 1,
        return_dict: bool = True,
    ) -> SpritesPipelineOutput | tuple:
        """Sample ``batch_size`` sprites.

        Args:
            batch_size: number of images.
            generator: a ``torch.Generator`` (or one per sample) for x_T and every z; same seed, same images.
            num_inference_steps: number of DDIM steps, 1..T.
            eta: 0 deterministic DDIM, 1 DDPM-like (sigma_t^2 = posterior variance).
            clip_sample: clip the predicted x_0 to [-1, 1] at every step; None: the scheduler config's
                ``clip_sample`` (as diffusers' ``DDIMPipeline``).
            timestep_spacing: "leading", "trailing" or "linspace"; None: the scheduler config's.
            prior: "standard" (x_T ~ N(0, I)) or a data prior of :data:`pipelines.prior.PRIORS` ("moments": the
                Gaussian with q(x_T)'s mean and covariance, read from the folder's data_moments.safetensors).
            class_labels: for a conditional UNet: ints, class names or mixes of the classes' weights, one or one
                per sample (see :mod:`pipelines.labels`). None: the null class.
            guidance_scale: w of classifier-free guidance, eps_uncond + w (eps_cond - eps_uncond); 1 plain
                conditional, 0 unconditional.
            latents: x_T itself, shape (batch_size, C, H, W), instead of drawing it (``prior`` is not applied).
            output_type: "pil", "np" or "pt".
            return_intermediates: also return x_T and the x_t along the chain (for a GIF of the denoising).
            intermediate_every: keep every k-th x_t (the final one is always kept).
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
        """
        if not runs_own_steps(self):  # another diffusers scheduler samples (pipelines.scheduler_loop)
            refuse_own_settings(self, eta=eta or None, clip_sample=clip_sample, timestep_spacing=timestep_spacing)
            return self.scheduler_loop(batch_size, generator, num_inference_steps, prior, class_labels, guidance_scale,
                                       latents, output_type, return_intermediates, intermediate_every, return_dict)
        _, alphas_cumprod = read_schedule(self.scheduler)
        T = len(alphas_cumprod)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        timestep_spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        shape = check_sampling_args(self.unet, batch_size, generator, latents, num_inference_steps, T,
                                    timestep_spacing, output_type, intermediate_every)
        check_number("eta", eta, 0, text="a number >= 0 (0: deterministic DDIM, 1: DDPM-like)")
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size, self.class_names)

        device, dtype = self._execution_device, self.unet.dtype
        steps = ddim_steps(alphas_cumprod, spaced_timesteps(T, num_inference_steps, timestep_spacing), float(eta))
        x_T = self.make_prior(prior, steps[0].alpha_bar) if latents is None else None
        x = initial_noise(shape, generator, latents, device, dtype, x_T)
        kept = [x] if return_intermediates else None
        with cond.applied(self.unet):
            for i, step in enumerate(self.progress_bar(steps)):
                eps = self.unet(cond.batch(x), torch.tensor(step.t, device=device), class_labels=cond.labels).sample
                eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                z = randn_tensor(shape, generator=generator, device=device, dtype=dtype) if step.sigma > 0 else None
                x = ddim_update(x, eps, step, z, clip_sample)
                if kept is not None and keep_after(i, len(steps), intermediate_every):
                    kept.append(x)

        return pipeline_output(self, x, kept, output_type, return_dict)

    def invert(self, images, num_inference_steps: int = 50, timestep_spacing: str | None = None,
               class_labels: Any = None, guidance_scale: float = 1.0, fixed_point_iterations: int = 0) -> torch.Tensor:
        """DDIM inversion (eta = 0, eq. 12 run backwards; :mod:`pipelines.inversion`): the ``latents`` from which
        this pipeline with the same ``num_inference_steps``, spacing and labels, ``eta=0`` and no clipping samples
        ``images`` back (PIL images, an array (N, H, W, C) or a tensor (N, C, H, W) in [0, 1]).
        ``fixed_point_iterations`` K > 0 solves each step exactly by K more UNet calls a step."""
        from pipelines.inversion import invert_images

        return invert_images(self, images, num_inference_steps, timestep_spacing, class_labels, guidance_scale,
                             fixed_point_iterations)
