"""Score-based samplers: plain functions with one signature shape, ``sampler(score_fn, x, *, settings...)``.

``score_fn(x, sigma)`` takes x of shape (n, d) and a noise level (a float, or None for the clean data) and returns the
score, shape (n, d): a model from ``score_toy.models`` or ``GaussianMixture2D.score_fn``. ``x`` holds the starting
points and is not modified. Each sampler returns the final points or, with ``return_trajectory=True``, the pair
(final points, trajectory of shape (n_steps + 1, n, d)) whose first entry is the start. Samplers run under
``torch.no_grad()``; a score function that needs autograd must enable it itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from score_toy.mixture import check_positive

ScoreFn = Callable[[Tensor, "float | None"], Tensor]


def _check_start(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 2 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor of shape (n, d), got {shape}")
    return x


def _check_steps(n_steps: int, name: str) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {n_steps!r}")
    return n_steps


def _score(score_fn: ScoreFn, x: Tensor, sigma: float | None) -> Tensor:
    s = score_fn(x, sigma)
    if s.shape != x.shape:
        raise ValueError(f"score_fn returned shape {tuple(s.shape)} for x of shape {tuple(x.shape)}")
    return s


def _finish(x: Tensor, path: list[Tensor] | None) -> Tensor | tuple[Tensor, Tensor]:
    return x if path is None else (x, torch.stack(path))


@torch.no_grad()
def deterministic_ascent(score_fn: ScoreFn, x: Tensor, *, step_size: float, n_steps: int,
                         sigma: float | None = None, return_trajectory: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Gradient ascent on log p: x <- x + eps s(x, sigma), ``n_steps`` times.

    It climbs to a local mode of p (stable for eps below 2 / the largest eigenvalue of -Hessian log p), so it finds
    modes, not samples: the noise of Langevin dynamics is what turns it into a sampler.
    """
    eps = check_positive(step_size, "step_size")
    x = _check_start(x).clone()
    path = [x.clone()] if return_trajectory else None
    for _ in range(_check_steps(n_steps, "n_steps")):
        x = x + eps * _score(score_fn, x, sigma)
        if path is not None:
            path.append(x.clone())
    return _finish(x, path)


@torch.no_grad()
def langevin_dynamics(score_fn: ScoreFn, x: Tensor, *, step_size: float, n_steps: int, sigma: float | None = None,
                      generator: torch.Generator | None = None,
                      return_trajectory: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Unadjusted Langevin dynamics (Song & Ermon 2019, eq. 4): x <- x + eps/2 s(x, sigma) + sqrt(eps) z, z ~ N(0, I).

    As eps -> 0 and n_steps -> infinity the points are distributed as p; for finite eps there is an O(eps) bias
    (on a Gaussian with precision P the stationary covariance is (P (I - eps P / 4))^{-1}), and separated modes
    are effectively never crossed, so their weights stay those of the starting points.
    """
    eps = check_positive(step_size, "step_size")
    x = _check_start(x).clone()
    path = [x.clone()] if return_trajectory else None
    for _ in range(_check_steps(n_steps, "n_steps")):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + 0.5 * eps * _score(score_fn, x, sigma) + math.sqrt(eps) * z
        if path is not None:
            path.append(x.clone())
    return _finish(x, path)


@torch.no_grad()
def annealed_langevin_dynamics(score_fn: ScoreFn, x: Tensor, *, sigmas: Sequence[float] | Tensor, step_size: float,
                               n_steps_each: int, generator: torch.Generator | None = None,
                               return_trajectory: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each level sigma_i of the decreasing ``sigmas`` (sigma_1 > ... > sigma_L, usually geometric, see
    ``score_toy.sigmas.geometric_sigmas``) run ``n_steps_each`` Langevin steps on p_{sigma_i} with step
    alpha_i = eps sigma_i^2 / sigma_L^2: x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z. Large sigmas fill the
    low-density regions between modes, so the mass reaches each mode in proportion to its weight. The trajectory
    has L * n_steps_each + 1 entries.
    """
    eps = check_positive(step_size, "step_size")
    levels = [check_positive(s, f"sigmas[{i}]") for i, s in enumerate(torch.as_tensor(sigmas).reshape(-1).tolist())]
    if not levels:
        raise ValueError("sigmas must hold at least one noise level")
    if any(b >= a for a, b in zip(levels, levels[1:], strict=False)):
        raise ValueError(f"sigmas must be strictly decreasing, got {levels}")
    n_each = _check_steps(n_steps_each, "n_steps_each")
    x = _check_start(x).clone()
    path = [x.clone()] if return_trajectory else None
    for sigma in levels:
        alpha = eps * sigma**2 / levels[-1] ** 2
        for _ in range(n_each):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + 0.5 * alpha * _score(score_fn, x, sigma) + math.sqrt(alpha) * z
            if path is not None:
                path.append(x.clone())
    return _finish(x, path)
