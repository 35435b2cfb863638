"""Image-to-image (SDEdit, Meng et al. 2022): noise a sprite part of the way, then denoise it.

With S sampling steps and ``strength`` s in [0, 1], the last n = round(s S) steps of the DDPM (Algorithm 2) or DDIM
(eq. 12) chain are run, from t = tau_n (about s T) with

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) z      (Ho et al. 2020, eq. 4; z from ``generator``)

s = 0 runs no step and returns the input as it was; s = 1 runs every step from the sampler's first timestep, where
the course's schedule keeps sqrt(alpha_bar_T) = 0.08 of the image (:mod:`pipelines.prior`), so even s = 1 is not
free of the input. The step tables and updates are the DDPM and DDIM pipelines' own.
"""

from __future__ import annotations

import math
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
    config_variance,
    runs_own_steps,
)
from pipelines.image_io import images_output, read_images
from pipelines.labels import ClassConditioning, ClassNamesMixin, guidance
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_ddpm import VARIANCES, ddpm_steps, ddpm_update
from pipelines.prior import DataPriorMixin
from pipelines.schedule import read_schedule, spaced_timesteps

SAMPLERS = ("ddim", "ddpm")


class SpritesImg2ImgPipeline(DataPriorMixin, ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """SDEdit of sprites with a sprites ``UNet2DModel`` (DDPM or DDIM denoising)."""

    model_cpu_offload_seq = "unet"

    def __init__(self, unet, scheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(
        self,
        image: Any,
        strength: float = 0.6,
        sampler: str = "ddim",
        num_inference_steps: int = 50,
        eta: float = 0.0,
        variance: str | None = None,
        clip_sample: bool | None = None,
        timestep_spacing: str | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        class_labels: Any = None,
        guidance_scale: float = 1.0,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> SpritesPipelineOutput | tuple:
        """Edit ``image`` (PIL images, an array (N, H, W, C) or a tensor (N, C, H, W) in [0, 1]).

        Args:
            image: the sprites to edit (one batch).
            strength: s in [0, 1]: how far to noise, t about s T (0: the input back, 1: from the first timestep).
            sampler: "ddim" (eq. 12 with ``eta``) or "ddpm" (Algorithm 2 with ``variance``).
            num_inference_steps: S, the steps of the whole chain; round(s S) of them run.
            eta: DDIM's eta (0 deterministic).
            variance: DDPM's sigma_t^2, "beta" or "posterior"; None: the scheduler config's ``variance_type``.
            clip_sample: clip the predicted x_0 to [-1, 1] at every step; None: the scheduler config's.
            timestep_spacing: "leading", "trailing" or "linspace"; None: the scheduler config's.
            generator: for z of x_t and every later noise draw.
            class_labels: for a conditional UNet (see ``pipelines.labels``); None: the null class.
            guidance_scale: classifier-free guidance w (1: plain conditional).
            output_type: "pil", "np" or "pt".
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
        """
        runs_own_steps(self, alternative="SDEdit on its own DDPM and DDIM steps")
        betas, alphas_cumprod = read_schedule(self.scheduler)
        T = len(betas)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        x0 = read_images(image, self.unet, "image")
        shape = check_sampling_args(self.unet, len(x0), generator, None, num_inference_steps, T, spacing,
                                    output_type, 1)
        check_number("strength", strength, 0, 1)
        check_number("eta", eta, 0, text="a number >= 0 (0: deterministic DDIM, 1: DDPM-like)")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        variance = config_variance(self.scheduler, variance)
        if sampler == "ddpm" and variance not in VARIANCES:
            raise ValueError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, len(x0), self.class_names)

        device, dtype = self._execution_device, self.unet.dtype
        timesteps = spaced_timesteps(T, num_inference_steps, spacing)
        if sampler == "ddim":
            steps, update = ddim_steps(alphas_cumprod, timesteps, float(eta)), ddim_update
        else:
            steps, update = ddpm_steps(betas, alphas_cumprod, timesteps, variance), ddpm_update
        steps = steps[len(steps) - round(strength * len(steps)):]
        images = x0
        if steps:
            z = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
            ab = steps[0].alpha_bar
            x = (x0.to(device=device, dtype=dtype) * 2 - 1).mul_(math.sqrt(ab)).add_(z, alpha=math.sqrt(1 - ab))
            with cond.applied(self.unet):
                for step in self.progress_bar(steps):
                    eps = self.unet(cond.batch(x), torch.tensor(step.t, device=device), class_labels=cond.labels).sample
                    eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                    noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype) \
                        if step.sigma > 0 else None
                    x = update(x, eps, step, noise, clip_sample)
            images = (x / 2 + 0.5).clamp(0, 1)
        images = images_output(images, output_type, self.numpy_to_pil)
        self.maybe_free_model_hooks()
        return SpritesPipelineOutput(images=images) if return_dict else (images,)
