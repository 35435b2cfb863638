"""Score-matching losses, each a small callable class: settings in ``__init__``, math in ``__call__``.

Every loss is called as ``loss(model, x, generator=None)`` with clean data x of shape (n, 2) and returns a scalar;
``model(x, sigma)`` is any score model (see ``score_toy.models``) or score function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from score_toy.mixture import check_points, check_positive
from score_toy.sigmas import SIGMA_SAMPLING, draw_sigmas

ScoreModel = Callable[[Tensor, "float | Tensor | None"], Tensor]


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


class DSMLoss:
    """Denoising score matching at one noise level (Vincent 2011):

    L = 1/2 E_{x, eps} || s_theta(x + eps) + eps / sigma^2 ||^2, eps ~ N(0, sigma^2 I),

    minimised by the score of the perturbed density p_sigma = p * N(0, sigma^2 I).
    """

    def __init__(self, sigma: float):
        self.sigma = check_positive(sigma, "sigma")

    def __call__(self, model: ScoreModel, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        eps = self.sigma * _noise(check_points(x), generator)
        s = model(x + eps, self.sigma)
        return 0.5 * (s + eps / self.sigma**2).square().sum(-1).mean()


class NCSMLoss:
    """Noise-conditional denoising score matching (Song & Ermon 2019, eq. 5-6) with lambda(sigma) = sigma^2:

    L = E_sigma [ sigma^2 / 2 E || s_theta(x + sigma z, sigma) + z / sigma ||^2 ] = 1/2 E || sigma s_theta + z ||^2,

    z ~ N(0, I), sigma drawn per example in [sigma_min, sigma_max]: uniformly over ``n_levels`` geometric levels
    (``sampling="geometric"``, as in the paper) or log-uniformly (``"log_uniform"``).
    """

    def __init__(self, sigma_min: float = 1.0, sigma_max: float = 20.0, sampling: str = "geometric",
                 n_levels: int = 10):
        if sampling not in SIGMA_SAMPLING:
            raise ValueError(f"sampling must be one of {SIGMA_SAMPLING}, got {sampling!r}")
        self.sigma_min, self.sigma_max = check_positive(sigma_min, "sigma_min"), check_positive(sigma_max, "sigma_max")
        self.sampling, self.n_levels = sampling, n_levels
        draw_sigmas(1, self.sigma_min, self.sigma_max, sampling=sampling, n_levels=n_levels)  # validates the range

    def __call__(self, model: ScoreModel, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = check_points(x).shape[0]
        sigma = draw_sigmas(n, self.sigma_min, self.sigma_max, sampling=self.sampling, n_levels=self.n_levels,
                            generator=generator).to(x.dtype)
        z = _noise(x, generator)
        s = model(x + sigma[:, None] * z, sigma)
        return 0.5 * (sigma[:, None] * s + z).square().sum(-1).mean()


class SlicedScoreMatchingLoss:
    """Sliced score matching (Song, Garg, Shi & Ermon 2019, eq. 8), with random projections v, E[v v^T] = I:

    L = E_v E_x [ v^T (grad_x s_theta(x)) v + 1/2 (v^T s_theta(x))^2 ],

    or, with ``variance_reduction`` (SSM-VR, their eq. 9), the second term replaced by its expectation
    1/2 ||s_theta(x)||^2. Up to a constant it is 1/2 E || s_theta - grad log p ||^2. With ``sigma`` the data are first
    perturbed by N(0, sigma^2 I), so the loss targets the score of p_sigma (like DSM, without its noise target).
    """

    def __init__(self, n_projections: int = 1, variance_reduction: bool = True, projection: str = "gaussian",
                 sigma: float | None = None):
        if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
            raise ValueError(f"n_projections must be an integer >= 1, got {n_projections!r}")
        if projection not in ("gaussian", "rademacher"):
            raise ValueError(f"projection must be 'gaussian' or 'rademacher', got {projection!r}")
        self.n_projections, self.variance_reduction, self.projection = n_projections, variance_reduction, projection
        self.sigma = None if sigma is None else check_positive(sigma, "sigma")

    def __call__(self, model: ScoreModel, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = check_points(x).detach()
        if self.sigma is not None:
            x = x + self.sigma * _noise(x, generator)
        x = x.repeat(self.n_projections, 1).requires_grad_(True)
        v = _noise(x, generator)
        if self.projection == "rademacher":
            v = v.sign()
        with torch.enable_grad():
            s = model(x, self.sigma)
            sv = (s * v).sum(-1)
            (grad_sv,) = torch.autograd.grad(sv.sum(), x, create_graph=True)
        second = s.square().sum(-1) if self.variance_reduction else sv.square()
        return ((grad_sv * v).sum(-1) + 0.5 * second).mean()
