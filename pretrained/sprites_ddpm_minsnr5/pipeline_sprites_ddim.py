# Written by spritediff's save_pretrained from its pipelines/pipeline_sprites_ddim.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""DDIM sampling, eq. 12 of Song et al. (2021), written out.

    x_prev = sqrt(alpha_bar_prev) x0_pred + sqrt(1 - alpha_bar_prev - sigma_t^2) eps + sigma_t z,
    x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
    sigma_t = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)   (eq. 16)

over ``num_inference_steps`` timesteps; ``prev`` is the next timestep of the sequence (alpha_bar = 1 after the
last). eta = 0 is deterministic, eta = 1 has the DDPM posterior variance.

Defaults not given in the call (``clip_sample``, ``timestep_spacing``) come from the scheduler config saved in
the folder, as in diffusers' ``DDIMPipeline``, so both sample a folder the same way. ``prior="moments"`` starts
from the data's Gaussian at the first timestep instead of N(0, I) (:mod:`pipelines.prior`).
``sigma_schedule="learned"`` runs at the (fractional) timesteps of a schedule fitted to the model
(:mod:`pipelines.learned_steps`), with alpha_bar = 1 / (1 + sigma^2) at each; with eta = 0 that is Euler's step
of the probability-flow ODE in the sigma variables (Karras et al. 2022, section 3), which is how the fit runs it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from .sprites_common import (
    SpritesPipelineOutput,
    check_number,
    check_sampling_args,
    config_default,
    initial_noise,
    keep_after,
    pipeline_output,
)
from .sprites_hub import HubPushMixin
from .sprites_labels import ClassConditioning
from .sprites_learned_steps import find_learned
from .sprites_prior import DataPriorMixin
from .sprites_samplers import Denoiser
from .sprites_schedule import read_schedule, spaced_timesteps


class DDIMStep(NamedTuple):
    """The numbers of one step t -> prev (floats, computed once in float64)."""

    t: int | float  # fractional for a learned schedule
    alpha_bar: float  # alpha_bar_t
    alpha_bar_prev: float  # alpha_bar_prev, 1 after the last step
    sigma: float  # sigma_t of eq. 16 times eta


def ddim_steps(alphas_cumprod: np.ndarray, timesteps: list[int], eta: float = 0.0,
               alpha_bars: list[float] | None = None) -> list[DDIMStep]:
    """Per-step coefficients for the descending ``timesteps`` (alpha_bar from ``alphas_cumprod``, or the given
    ``alpha_bars``, one per timestep)."""
    alpha_bars = [float(alphas_cumprod[t]) for t in timesteps] if alpha_bars is None else alpha_bars
    steps = []
    for i, t in enumerate(timesteps):
        alpha_bar = float(alpha_bars[i])
        alpha_bar_prev = float(alpha_bars[i + 1]) if i + 1 < len(timesteps) else 1.0
        sigma = eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
        if 1 - alpha_bar_prev - sigma**2 < -1e-12:
            raise ValueError(f"eta={eta} is too large: sigma_t^2 exceeds 1 - alpha_bar_prev at t={t}; use eta <= 1")
        steps.append(DDIMStep(t, alpha_bar, alpha_bar_prev, sigma))
    return steps


def ddim_update(x_t: torch.Tensor, eps: torch.Tensor, step: DDIMStep, noise: torch.Tensor | None = None,
                clip_sample: bool = False) -> torch.Tensor:
    """x_prev from x_t and the predicted noise (eq. 12); ``noise`` is z (None when sigma_t = 0).

    ``clip_sample`` clips x0_pred to [-1, 1]; the direction term keeps the model's eps (as diffusers does).
    """
    alpha_bar, alpha_bar_prev, sigma = step.alpha_bar, step.alpha_bar_prev, step.sigma
    x0 = torch.add(x_t, eps, alpha=-math.sqrt(1 - alpha_bar)).mul_(1 / math.sqrt(alpha_bar))
    if clip_sample:
        x0.clamp_(-1, 1)
    x_prev = x0.mul_(math.sqrt(alpha_bar_prev)).add_(eps, alpha=math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)))
    return x_prev if noise is None else x_prev.add_(noise, alpha=sigma)


class SpritesDDIMPipeline(DataPriorMixin, HubPushMixin, DiffusionPipeline):
    """DDIM sampling of a sprites ``UNet2DModel`` (Song et al. 2021, eq. 12).

    ``scheduler`` may be a ``DDPMScheduler`` or a ``DDIMScheduler``: only its betas, alphas_cumprod and
    num_train_timesteps are read.
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
        sigma_schedule: str = "discrete",
        learned_schedule: str | dict | None = None,
        prior: str = "standard",
        prior_rank: int = 16,
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
            sigma_schedule: "discrete" (the ``timestep_spacing`` integer timesteps) or "learned" (the timesteps
                fitted to this model for DDIM at ``num_inference_steps`` and ``prior`` by ``python -m
                training.fit_steps``, from the folder's ``schedules/ddim_nfe{N}_{prior}.json``; refused in one line
                when the folder has none).
            learned_schedule: with "learned", another learned schedule than the folder's (a JSON path or a dict).
            prior: "standard" (x_T ~ N(0, I)) or a data prior of :data:`pipelines.prior.PRIORS` ("moments": the
                Gaussian with q(x_T)'s mean and covariance, read from the folder's data_moments.safetensors).
            prior_rank: eigenpairs kept by ``prior="moments-lowrank"``.
            class_labels: for a conditional UNet: ints, class names or 5-weight mixes, one or one per sample
                (see ``pipelines.common``). None: the null class.
            guidance_scale: w of classifier-free guidance, eps_uncond + w (eps_cond - eps_uncond); 1 plain
                conditional, 0 unconditional.
            latents: x_T itself, shape (batch_size, C, H, W), instead of drawing it (``prior`` is not applied).
            output_type: "pil", "np" or "pt".
            return_intermediates: also return x_T and the x_t along the chain (for a GIF of the denoising).
            intermediate_every: keep every k-th x_t (the final one is always kept).
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
        """
        _, alphas_cumprod = read_schedule(self.scheduler)
        T = len(alphas_cumprod)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        timestep_spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        shape = check_sampling_args(self.unet, batch_size, generator, latents, num_inference_steps, T,
                                    timestep_spacing, output_type, intermediate_every)
        check_number("eta", eta, 0, text="a number >= 0 (0: deterministic DDIM, 1: DDPM-like)")
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size)

        device, dtype = self._execution_device, self.unet.dtype
        if sigma_schedule == "learned":
            sigmas = find_learned(getattr(self.config, "_name_or_path", None), "ddim", int(num_inference_steps), prior,
                                  learned_schedule).sigmas()[:-1]
            at = Denoiser(None, alphas_cumprod).t_of
            steps = ddim_steps(alphas_cumprod, [at(float(s)) for s in sigmas], float(eta),
                               alpha_bars=[1 / (1 + float(s) ** 2) for s in sigmas])
        elif sigma_schedule == "discrete" and learned_schedule is None:
            steps = ddim_steps(alphas_cumprod, spaced_timesteps(T, num_inference_steps, timestep_spacing), float(eta))
        else:
            raise ValueError(f"sigma_schedule must be 'discrete' or 'learned' (learned_schedule with 'learned' only), "
                             f"got {sigma_schedule!r}")
        x_T = self.make_prior(prior, steps[0].alpha_bar, prior_rank) if latents is None else None
        x = initial_noise(shape, generator, latents, device, dtype, x_T)
        kept = [x] if return_intermediates else None
        with cond.applied(self.unet):
            for i, step in enumerate(self.progress_bar(steps)):
                eps = cond.predict_noise(self.unet, x, torch.tensor(step.t, device=device))
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
        from .sprites_inversion import invert_images

        return invert_images(self, images, num_inference_steps, timestep_spacing, class_labels, guidance_scale,
                             fixed_point_iterations)

# diffusers copies into its module cache only the modules a pipeline file imports itself; the rest of this one's:
from .sprites_atomic import __name__ as _sprites_atomic  # noqa: E402, F401
from .sprites_fitted_solver import __name__ as _sprites_fitted_solver  # noqa: E402, F401
from .sprites_image_io import __name__ as _sprites_image_io  # noqa: E402, F401
from .sprites_remote_code import __name__ as _sprites_remote_code  # noqa: E402, F401
