# Written by spritediff's save_pretrained from its pipelines/inversion.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""DDIM inversion (Song et al. 2021, section 4.3 and 5.4) and spherical interpolation between latents.

Sampling with eta = 0 runs eq. 12 from the first timestep tau_S down to the image,

    x_prev = sqrt(alpha_bar_prev) x0_pred + sqrt(1 - alpha_bar_prev) eps(x_t, t),
    x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps(x_t, t)) / sqrt(alpha_bar_t),


the Euler step of the probability-flow ODE. Inversion runs the same step the other way, x_prev -> x_t, which is eq.
12 with the roles of alpha_bar_t and alpha_bar_prev swapped; it needs eps(x_t, t) at the x_t it is computing, and
takes eps(x_prev, t), the model at the target timestep on the sample at hand (the usual DDIM inversion, diffusers'
``DDIMInverseScheduler``). The error of that swap is what keeps the round trip from being exact. With
``fixed_point_iterations`` K > 0 each step solves x_t = G(eps(x_t, t)) by K more iterations of
x_t <- G(eps(x_t, t)) (Pan et al. 2023, "Effective real image editing with accelerated iterative diffusion
inversion"); converged, the sampler's step from x_t gives back x_prev exactly. Cost: (1 + K) UNet calls a step.

The inverted latent is x at the sampler's first timestep, which is where both priors' samplers start
(``prior="moments"`` changes only the draw of x_T, not the timesteps), so it is a ``latents=`` for either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .sprites_common import check_number
from .sprites_ddim_steps import DDIMStep, ddim_steps, ddim_update
from .sprites_image_io import read_images
from .sprites_labels import ClassConditioning, guidance
from .sprites_schedule import read_schedule, spaced_timesteps

NoisePredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def inversion_steps(alphas_cumprod: np.ndarray, timesteps: list[int]) -> list[DDIMStep]:
    """The eta = 0 sampling steps of the descending ``timesteps`` reversed: ascending, each from the lower noise
    level (``alpha_bar``; 1 for the image) to the higher (``alpha_bar_prev``), at the higher level's timestep ``t``.
    :func:`pipelines.pipeline_sprites_ddim.ddim_update` with such a step is the inverse update."""
    return [DDIMStep(s.t, s.alpha_bar_prev, s.alpha_bar, 0.0) for s in reversed(ddim_steps(alphas_cumprod, timesteps))]


def ddim_invert(predict_noise: NoisePredictor, x0: torch.Tensor, steps: list[DDIMStep],
                fixed_point_iterations: int = 0) -> torch.Tensor:
    """x at the last of the ascending ``steps`` (:func:`inversion_steps`) from images ``x0`` in [-1, 1]; each step
    ``1 + fixed_point_iterations`` calls of ``predict_noise(x, t)``."""
    x = x0
    for step in steps:
        t = torch.tensor(step.t, device=x.device)
        x_next = ddim_update(x, predict_noise(x, t), step)
        for _ in range(fixed_point_iterations):
            x_next = ddim_update(x, predict_noise(x_next, t), step)
        x = x_next
    return x


@torch.inference_mode()
def invert_images(pipe, images, num_inference_steps: int = 50, timestep_spacing: str | None = None,
                  class_labels=None, guidance_scale: float = 1.0, fixed_point_iterations: int = 0) -> torch.Tensor:
    """The latents x at the first of ``num_inference_steps`` DDIM timesteps that sample back (eta = 0, the same
    steps and spacing, no clipping) to ``images``: PIL images, an array (N, H, W, C) or a tensor (N, C, H, W) in
    [0, 1], as the pipelines return them. ``pipe`` is a :class:`SpritesDDIMPipeline`; its ``invert`` calls this."""
    _, alphas_cumprod = read_schedule(pipe.scheduler)
    T = len(alphas_cumprod)
    spacing = timestep_spacing or pipe.scheduler.config.get("timestep_spacing", "leading")
    check_number("num_inference_steps", num_inference_steps, 1, T, integer=True, high_name="num_train_timesteps")
    check_number("fixed_point_iterations", fixed_point_iterations, 0, integer=True)
    device, dtype = pipe._execution_device, pipe.unet.dtype
    x0 = read_images(images, pipe.unet).to(device=device, dtype=dtype) * 2 - 1
    cond = ClassConditioning(pipe.unet, class_labels, guidance_scale, len(x0), pipe.class_names)
    steps = inversion_steps(alphas_cumprod, spaced_timesteps(T, num_inference_steps, spacing))

    def predict_noise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # the UNet's epsilon, guided
        eps = pipe.unet(cond.batch(x), t, class_labels=cond.labels).sample
        return guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)

    with cond.applied(pipe.unet):
        return ddim_invert(predict_noise, x0, steps, fixed_point_iterations)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985), as the DDIM paper interpolates x_T (section 5.3):
    sin((1 - t) theta) / sin(theta) a + sin(t theta) / sin(theta) b per sample, theta the angle between the
    flattened a[i] and b[i]. ``t`` a number: a tensor of a's shape; a sequence of K numbers: (K, *a.shape). Nearly
    parallel samples (sin(theta) < 1e-6) fall back to the straight line."""
    if a.shape != b.shape:
        raise ValueError(f"slerp: a and b must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    ts = torch.as_tensor(t, dtype=torch.float64).reshape(-1).to(a.device)
    if not torch.isfinite(ts).all():
        raise ValueError(f"slerp: t must be finite, got {t}")
    batched = a.ndim > 1
    fa, fb = (v.double().reshape(v.shape[0], -1) if batched else v.double().reshape(1, -1) for v in (a, b))
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1)).clamp_min(1e-300)
    theta = torch.arccos(cos.clamp(-1, 1))[None, :, None]
    tt = ts[:, None, None]
    sin = torch.sin(theta)
    straight = sin.abs() < 1e-6
    wa = torch.where(straight, 1 - tt, torch.sin((1 - tt) * theta) / torch.where(straight, 1.0, sin))
    wb = torch.where(straight, tt, torch.sin(tt * theta) / torch.where(straight, 1.0, sin))
    out = (wa * fa[None] + wb * fb[None]).reshape(len(ts), *a.shape).to(a.dtype)
    return out[0] if isinstance(t, int | float) or (isinstance(t, torch.Tensor) and t.ndim == 0) else out


def round_trip_mse(images01: torch.Tensor, reconstructed01: torch.Tensor) -> float:
    """The per-dimension mean squared error of a reconstruction, both in [0, 1] (the DDIM paper's Table 2 unit)."""
    return float(((images01.double() - reconstructed01.double()) ** 2).mean())

