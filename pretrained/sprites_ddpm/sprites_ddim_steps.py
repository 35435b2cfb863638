# Written by spritediff's save_pretrained from its pipelines/ddim_steps.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The DDIM step, eq. 12 of Song et al. (2021), as a float64 step table and a pure update function: what
:class:`pipelines.SpritesDDIMPipeline` runs, and what DDIM inversion (:mod:`pipelines.inversion`) runs backwards.

    x_prev = sqrt(alpha_bar_prev) x0_pred + sqrt(1 - alpha_bar_prev - sigma_t^2) eps + sigma_t z,
    x0_pred = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
    sigma_t = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev)   (eq. 16)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


class DDIMStep(NamedTuple):
    """The numbers of one step t -> prev (floats, computed once in float64)."""

    t: int
    alpha_bar: float  # alpha_bar_t
    alpha_bar_prev: float  # alpha_bar_prev, 1 after the last step
    sigma: float  # sigma_t of eq. 16 times eta


def ddim_steps(alphas_cumprod: np.ndarray, timesteps: list[int], eta: float = 0.0) -> list[DDIMStep]:
    """Per-step coefficients for the descending ``timesteps``."""
    alpha_bars = [float(alphas_cumprod[t]) for t in timesteps]
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
