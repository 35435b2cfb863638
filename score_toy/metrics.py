"""Sample-quality numbers against the true mixture: mode weights, energy distance, log-likelihood, score error."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from score_toy.mixture import GaussianMixture2D, check_points


def estimate_weights(mixture: GaussianMixture2D, x: Tensor) -> Tensor:
    """Fraction of the points assigned to each component, by highest responsibility under ``mixture``; shape (K,).

    Points that are not finite (a diverged sampler) are assigned to no component, so the fractions then sum to less
    than one.
    """
    x = check_points(x)
    finite = torch.isfinite(x).all(-1)
    labels = mixture.component_log_probs(x[finite]).argmax(-1)
    counts = torch.bincount(labels, minlength=mixture.n_components).to(torch.float64)
    return counts / max(x.shape[0], 1)


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Unbiased estimate of the squared energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo 2013).

    Zero if and only if the two distributions are equal; the estimate fluctuates around zero for equal ones.
    """
    x, y = check_points(x, "x").to(torch.float64), check_points(y, "y").to(torch.float64)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"energy_distance needs at least 2 points on each side, got {n} and {m}")
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2 * xy - xx - yy)


def mean_log_likelihood(mixture: GaussianMixture2D, x: Tensor) -> float:
    """Average of log p(x) over the points under the true mixture (higher: the points sit where p has mass)."""
    return float(mixture.log_prob(check_points(x).to(torch.float64)).mean())


def relative_score_error(score_fn: Callable[[Tensor, float | None], Tensor], mixture: GaussianMixture2D,
                         sigma: float | None, n: int = 4000, generator: torch.Generator | None = None,
                         points: Tensor | None = None) -> float:
    """E_{x ~ p_sigma} || s(x, sigma) - grad log p_sigma(x) ||^2 / E || grad log p_sigma(x) ||^2 (0 is exact).

    The x are ``n`` fresh draws of p_sigma, or, with ``points`` (clean data from p, such as a held-out test set),
    those points plus N(0, sigma^2 I) noise (one draw each; ``n`` is then unused).
    """
    target = mixture if sigma is None else mixture.perturbed(sigma)
    if points is None:
        x = target.sample(n, generator)
    else:
        x = check_points(points, "points").to(torch.float32)
        if sigma is not None:
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    with torch.no_grad():
        exact = target.score(x.double())
        learned = score_fn(x, sigma).double()
    return float((learned - exact).square().sum(-1).mean() / exact.square().sum(-1).mean())
