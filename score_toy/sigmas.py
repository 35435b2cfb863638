"""Noise levels: the geometric sequence of NCSN and per-example draws of sigma for training."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from score_toy.mixture import check_positive

SIGMA_SAMPLING = ("geometric", "log_uniform")


def geometric_sigmas(sigma_max: float, sigma_min: float, n_levels: int) -> Tensor:
    """sigma_1 = sigma_max > ... > sigma_L = sigma_min with a constant ratio (Song & Ermon 2019, Sec. 4.1), float64."""
    hi, lo = check_positive(sigma_max, "sigma_max"), check_positive(sigma_min, "sigma_min")
    if isinstance(n_levels, bool) or not isinstance(n_levels, int) or n_levels < 1:
        raise ValueError(f"n_levels must be an integer >= 1, got {n_levels!r}")
    if n_levels == 1:
        if hi != lo:
            raise ValueError(f"one level needs sigma_max == sigma_min, got {hi} and {lo}")
        return torch.tensor([hi], dtype=torch.float64)
    if not hi > lo:
        raise ValueError(f"sigma_max must be > sigma_min, got {hi} and {lo}")
    return torch.logspace(math.log10(hi), math.log10(lo), n_levels, dtype=torch.float64)


def draw_sigmas(n: int, sigma_min: float, sigma_max: float, *, sampling: str = "geometric", n_levels: int = 10,
                generator: torch.Generator | None = None) -> Tensor:
    """n noise levels in [sigma_min, sigma_max], shape (n,), float32.

    ``geometric``: uniform over the ``n_levels`` geometric levels; ``log_uniform``: log sigma uniform on the interval.
    """
    if sampling == "geometric":
        levels = geometric_sigmas(sigma_max, sigma_min, n_levels)
        return levels[torch.randint(n_levels, (n,), generator=generator)].float()
    if sampling == "log_uniform":
        lo, hi = math.log(check_positive(sigma_min, "sigma_min")), math.log(check_positive(sigma_max, "sigma_max"))
        if not hi >= lo:
            raise ValueError(f"sigma_max must be >= sigma_min, got {sigma_max} and {sigma_min}")
        return torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)).float()
    raise ValueError(f"sampling must be one of {SIGMA_SAMPLING}, got {sampling!r}")
