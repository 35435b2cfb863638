# Written by spritediff's save_pretrained from its pipelines/pipeline_sprites_ddpm.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""DDPM ancestral sampling, Algorithm 2 of Ho et al. (2020), written out.

    x_T ~ N(0, I);  for t = T..1:  x_{t-1} = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alpha_bar_t) eps) + sigma_t z

with z ~ N(0, I) and z = 0 at the last step; sigma_t^2 = beta_t (``variance="beta"``, the course's choice) or
the posterior variance beta~_t = (1 - alpha_bar_{t-1})/(1 - alpha_bar_t) beta_t (``variance="posterior"``).
These are diffusers' ``variance_type`` "fixed_large" and "fixed_small".

Defaults not given in the call (``variance``, ``clip_sample``, ``timestep_spacing``) come from the scheduler
config saved in the folder, as in diffusers' ``DDPMPipeline``, so both sample a folder the same way.
``prior="moments"`` starts from the data's Gaussian at T instead of N(0, I) (:mod:`pipelines.prior`).

With ``num_inference_steps`` < T the chain visits a subsequence of timesteps and each step uses the alpha of the
whole stride, alpha_t = alpha_bar_t / alpha_bar_prev (as ``DDPMScheduler.set_timesteps`` does); the default
runs all T steps, which is Algorithm 2 exactly.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from .sprites_common import (
    SavedFolderMixin,
    SpritesPipelineOutput,
    check_sampling_args,
    config_default,
    config_variance,
    initial_noise,
    keep_after,
    pipeline_output,
    refuse_own_settings,
    runs_own_steps,
)
from .sprites_labels import ClassConditioning, ClassNamesMixin, guidance
from .sprites_prior import DataPriorMixin
from .sprites_schedule import read_schedule, spaced_timesteps
from .sprites_scheduler_loop import SchedulerLoopMixin

VARIANCES = ("beta", "posterior")


class DDPMStep(NamedTuple):
    """The numbers of one step t -> prev (floats, computed once in float64)."""

    t: int
    alpha: float  # alpha_t (of the whole stride when steps are skipped)
    alpha_bar: float  # alpha_bar_t
    alpha_bar_prev: float  # alpha_bar_{prev}, 1 after the last step
    sigma: float  # sigma_t; 0 at the last step


def ddpm_steps(betas: np.ndarray, alphas_cumprod: np.ndarray, timesteps: list[int],
               variance: str = "beta") -> list[DDPMStep]:
    """Per-step coefficients for the descending ``timesteps`` (0-based: index t is the paper's t + 1)."""
    steps = []
    for i, t in enumerate(timesteps):
        prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        alpha = float(np.prod(1 - betas[prev + 1:t + 1]))  # 1 - beta_t; over a stride alpha_bar_t / alpha_bar_prev
        alpha_bar, alpha_bar_prev = float(alphas_cumprod[t]), float(alphas_cumprod[prev]) if prev >= 0 else 1.0
        if prev < 0:
            sigma = 0.0
        elif variance == "beta":
            sigma = math.sqrt(1 - alpha)
        else:
            sigma = math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha))
        steps.append(DDPMStep(t, alpha, alpha_bar, alpha_bar_prev, sigma))
    return steps


def ddpm_update(x_t: torch.Tensor, eps: torch.Tensor, step: DDPMStep, noise: torch.Tensor | None = None,
                clip_sample: bool = False) -> torch.Tensor:
    """x_{t-1} from x_t and the predicted noise: Algorithm 2, line 4 (``noise`` is z; None at the last step).

    ``clip_sample`` (not part of Algorithm 2) clips the implied x_0 to [-1, 1] and takes the posterior mean
    mu~(x_t, x_0) of eq. 7 instead; without clipping the two means are equal.
    """
    alpha, alpha_bar, alpha_bar_prev, sigma = step.alpha, step.alpha_bar, step.alpha_bar_prev, step.sigma
    if clip_sample:
        x0 = ((x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)).clamp_(-1, 1)
        mean = x0.mul_(math.sqrt(alpha_bar_prev) * (1 - alpha) / (1 - alpha_bar))
        mean.add_(x_t, alpha=math.sqrt(alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar))
    else:
        mean = torch.add(x_t, eps, alpha=-(1 - alpha) / math.sqrt(1 - alpha_bar)).mul_(1 / math.sqrt(alpha))
    return mean if noise is None else mean.add_(noise, alpha=sigma)


class SpritesDDPMPipeline(SchedulerLoopMixin, DataPriorMixin, ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """DDPM sampling of a sprites ``UNet2DModel`` (Ho et al. 2020, Algorithm 2).

    With a ``DDPMScheduler`` the loop below runs Algorithm 2, reading only the scheduler's schedule and sampling
    defaults; any other diffusers scheduler assigned to ``pipe.scheduler`` (a ``DDIMScheduler`` too, as in
    diffusers' ``DDPMPipeline``) samples with its own steps (:mod:`pipelines.scheduler_loop`).
    """

    model_cpu_offload_seq = "unet"
    own_schedulers = ("DDPMScheduler",)
    own_method_only: str | None = None  # a subclass whose method no other scheduler has names it: then refused

    def __init__(self, unet, scheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        variance: str | None = None,
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
            num_inference_steps: None (default) runs all T steps (Algorithm 2); fewer skip timesteps.
            variance: "beta" (sigma_t^2 = beta_t) or "posterior" (beta~_t); None: the scheduler config's
                ``variance_type`` ("fixed_large" is "beta", "fixed_small" is "posterior").
            clip_sample: clip the predicted x_0 to [-1, 1] at every step (not in Algorithm 2); None: the
                scheduler config's ``clip_sample``.
            timestep_spacing: "leading", "trailing" or "linspace" when ``num_inference_steps`` < T; None: the
                scheduler config's.
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
        betas, alphas_cumprod = read_schedule(self.scheduler)
        T = len(betas)
        n = T if num_inference_steps is None else num_inference_steps
        if not runs_own_steps(self, self.own_method_only):  # another scheduler samples (pipelines.scheduler_loop)
            refuse_own_settings(self, variance=variance, clip_sample=clip_sample, timestep_spacing=timestep_spacing)
            return self.scheduler_loop(batch_size, generator, n, prior, class_labels, guidance_scale, latents,
                                       output_type, return_intermediates, intermediate_every, return_dict)
        variance = config_variance(self.scheduler, variance)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        timestep_spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        shape = check_sampling_args(self.unet, batch_size, generator, latents, n, T, timestep_spacing, output_type,
                                    intermediate_every)
        if variance not in VARIANCES:
            raise ValueError(f"variance must be 'beta' (sigma^2 = beta_t, Algorithm 2) or 'posterior' (beta~_t), "
                             f"got {variance!r} (from the scheduler's variance_type if not given)")
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size, self.class_names)

        device, dtype = self._execution_device, self.unet.dtype
        steps = self.sampling_steps(betas, alphas_cumprod, spaced_timesteps(T, n, timestep_spacing), variance)
        x_T = self.make_prior(prior, steps[0].alpha_bar) if latents is None else None
        x = initial_noise(shape, generator, latents, device, dtype, x_T)
        kept = [x] if return_intermediates else None
        with cond.applied(self.unet):
            for i, step in enumerate(self.progress_bar(steps)):
                eps = self.unet(cond.batch(x), torch.tensor(step.t, device=device), class_labels=cond.labels).sample
                eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                z = randn_tensor(shape, generator=generator, device=device, dtype=dtype) if step.sigma > 0 else None
                x = ddpm_update(x, eps, step, z, clip_sample)
                if kept is not None and keep_after(i, len(steps), intermediate_every):
                    kept.append(x)

        return pipeline_output(self, x, kept, output_type, return_dict)

    def sampling_steps(self, betas: np.ndarray, alphas_cumprod: np.ndarray, timesteps: list[int],
                       variance: str) -> list[DDPMStep]:
        """The step table the loop runs (:func:`ddpm_steps`). A subclass may change it: with every ``sigma``
        set to 0 the chain follows the mean of each step, without the sigma_t z of Algorithm 2."""
        return ddpm_steps(betas, alphas_cumprod, timesteps, variance)

