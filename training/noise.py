"""The linear noise schedule and the one-shot forward process q(x_t | x_0) (Ho et al. 2020, eq. 4).

Indexing follows diffusers: timestep ``t`` in ``0..T-1`` is the paper's step ``t + 1``; ``alphas[t]`` is
alpha_{t+1} = 1 - beta_{t+1} and ``alphas_cumprod[t]`` is alpha_bar_{t+1} = prod_{s <= t} alphas[s].
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler


def make_scheduler(num_train_timesteps: int = 500, beta_start: float = 1e-4, beta_end: float = 0.02,
                   beta_schedule: str = "linear", variance_type: str = "fixed_small",
                   clip_sample: bool = True) -> DDPMScheduler:
    """The course's schedule (beta 1e-4 to 0.02 over T = 500) as a diffusers ``DDPMScheduler``."""
    if not 0 < beta_start < beta_end < 1:
        raise ValueError(f"need 0 < beta_start < beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    if num_train_timesteps < 2:
        raise ValueError(f"num_train_timesteps must be at least 2, got {num_train_timesteps}")
    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
                         beta_schedule=beta_schedule, variance_type=variance_type, clip_sample=clip_sample,
                         prediction_type="epsilon")


def perturb_input(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                  alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, one shot for a batch of timesteps ``t``."""
    ab = alphas_cumprod.to(device=x0.device, dtype=x0.dtype)[t].view(-1, *([1] * (x0.ndim - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
