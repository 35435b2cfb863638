# Written by spritediff's save_pretrained from its pipelines/schedule.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The noise schedule, the forward process and the timestep spacings: the maths every other layer builds on.

Indexing follows diffusers: timestep ``t`` in ``0..T-1`` is the paper's step ``t + 1``; ``alphas[t]`` is
alpha_{t+1} = 1 - beta_{t+1} and ``alphas_cumprod[t]`` is alpha_bar_{t+1} = prod_{s <= t} alphas[s].
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
VARIANCE_TYPES = {"fixed_small": "posterior", "fixed_small_log": "posterior", "fixed_large": "beta",
                  "fixed_large_log": "beta"}  # diffusers' variance_type -> our DDPM ``variance``


def make_scheduler(num_train_timesteps: int = 500, beta_start: float = 1e-4, beta_end: float = 0.02,
                   beta_schedule: str = "linear", variance_type: str = "fixed_small", clip_sample: bool = True,
                   timestep_spacing: str = "leading") -> DDPMScheduler:
    """The course's schedule (beta 1e-4 to 0.02 over T = 500) as a diffusers ``DDPMScheduler``.

    ``variance_type``, ``clip_sample`` and ``timestep_spacing`` are sampling settings: they are saved in the
    scheduler config, and both our pipelines and diffusers' stock ones take their defaults from it.
    """
    if not 0 < beta_start < beta_end < 1:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    if num_train_timesteps < 2:
        raise ValueError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
    if variance_type not in VARIANCE_TYPES:
        raise ValueError(f"variance_type must be one of {', '.join(VARIANCE_TYPES)}, got {variance_type!r}")
    if timestep_spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}, got {timestep_spacing!r}")
    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                         beta_schedule=beta_schedule, variance_type=variance_type, clip_sample=bool(clip_sample),
                         timestep_spacing=timestep_spacing, prediction_type="epsilon")


def perturb_input(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                  alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4), one shot for a batch of
    timesteps ``t``."""
    ab = alphas_cumprod.to(device=x0.device, dtype=x0.dtype)[t].view(-1, *([1] * (x0.ndim - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def read_schedule(scheduler) -> tuple[np.ndarray, np.ndarray]:
    """(betas, alphas_cumprod) of a ``DDPMScheduler`` or ``DDIMScheduler`` as float64 arrays of length T.

    Only ``scheduler.betas`` (and ``config.prediction_type``) are read; alpha_bar_t = prod_{s<=t} (1 - beta_s)
    is formed in float64, so alpha_t = 1 - beta_t and alpha_bar_t agree to the last bit (the scheduler's own
    float32 ``alphas_cumprod`` differs by ~1e-7, and ratios of it lose ~1e-3 of beta_t near t = 0). The
    written-out steps never call the scheduler's ``step``: the update rules are ours.
    """
    if not isinstance(getattr(scheduler, "betas", None), torch.Tensor):
        raise ValueError(f"scheduler: {type(scheduler).__name__} has no 'betas' tensor; pass a DDPMScheduler or "
                         "DDIMScheduler (for example pipelines.schedule.make_scheduler()).")
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise ValueError(f"scheduler: prediction_type is {prediction!r}; these pipelines need a model trained to "
                         "predict the noise (prediction_type='epsilon').")
    betas = scheduler.betas.cpu().double().numpy()
    return betas, np.cumprod(1 - betas)


def spaced_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str = "trailing") -> list[int]:
    """``num_inference_steps`` distinct descending timesteps in 0..T-1 (Lin et al. 2024, Table 2).

    "leading": 0, k, 2k, ... with k = T // n (never reaches T-1 for n < T); "trailing": T-1, T-1-T/n, ...
    rounded; "linspace": n points from T-1 down to 0, rounded. With n = T all three give T-1, ..., 0.

    Equal to diffusers' ``set_timesteps`` except where diffusers is wrong: its "trailing" rounds a float
    ``np.arange(T, 0, -T / n)`` that has n + 1 entries for some n (61, 103, ... at T = 500), the last being -1;
    here only the first n are kept. Its "linspace" with n = 1 gives [0] (a single step from almost clean
    data); here it gives [T - 1], like "trailing".
    """
    T, n = num_train_timesteps, num_inference_steps
    if spacing == "leading":
        steps = np.arange(n) * (T // n)
    elif spacing == "trailing":
        steps = (np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1)[:n]
    elif spacing == "linspace":
        steps = np.linspace(0, T - 1, n).round() if n > 1 else np.array([T - 1])
    else:
        raise ValueError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}; got {spacing!r}")
    return sorted((int(t) for t in steps), reverse=True)
