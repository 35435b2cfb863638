"""Score models s_theta: an MLP for one noise level, a noise-conditional MLP (NCSN-style) and a linear model.

Every model is called as ``model(x, sigma)`` with x of shape (n, 2), so it can be handed to any sampler as its
``score_fn``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from score_toy.mixture import check_points, check_positive


def mlp(in_features: int, out_features: int, hidden: int, depth: int) -> nn.Sequential:
    """``depth`` hidden layers of width ``hidden`` with SiLU activations."""
    if depth < 1 or hidden < 1:
        raise ValueError(f"an MLP needs depth >= 1 and hidden >= 1, got depth={depth}, hidden={hidden}")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class _FixedSigma(nn.Module):
    """A model of the score of one distribution: p itself (``sigma`` None) or p convolved with N(0, sigma^2 I)."""

    def __init__(self, sigma: float | None):
        super().__init__()
        self.sigma = None if sigma is None else check_positive(sigma, "sigma")

    def _check(self, x: Tensor, sigma: float | Tensor | None) -> None:
        check_points(x)
        if sigma is None:
            return
        values = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1).unique().tolist()
        if self.sigma is None or len(values) != 1 or not math.isclose(values[0], self.sigma, rel_tol=1e-6):
            raise ValueError(f"this model scores noise level sigma={self.sigma} only, got sigma={sigma!r}")


class ScoreMLP(_FixedSigma):
    """s_theta(x) = f_theta(x / input_scale), a plain MLP for a single noise level ``sigma`` (None: clean data).

    ``input_scale`` (e.g. the standard deviation of the noisy data) keeps the network's inputs of order one.
    """

    def __init__(self, hidden: int = 128, depth: int = 3, sigma: float | None = None, input_scale: float = 1.0):
        super().__init__(sigma)
        self.input_scale = check_positive(input_scale, "input_scale")
        self.net = mlp(2, 2, hidden, depth)

    def forward(self, x: Tensor, sigma: float | None = None) -> Tensor:
        self._check(x, sigma)
        return self.net(x / self.input_scale)


class LinearScore(_FixedSigma):
    """s_theta(x) = A x + b: the family that holds the exact score of any Gaussian (A = -C^{-1}, b = C^{-1} mu)."""

    def __init__(self, sigma: float | None = None):
        super().__init__(sigma)
        self.linear = nn.Linear(2, 2)

    def forward(self, x: Tensor, sigma: float | None = None) -> Tensor:
        self._check(x, sigma)
        return self.linear(x)


class NoiseConditionalScoreMLP(nn.Module):
    """s_theta(x, sigma) = f_theta(x / sqrt(data_std^2 + sigma^2), log sigma) / sigma.

    Song & Ermon (2019) condition the network on sigma and note that the optimal score scales like 1/sigma; NCSNv2
    (Song & Ermon 2020, Sec. 3.3) makes that explicit by dividing an unconditional output by sigma. Here sigma enters
    as log sigma, and x is divided by the standard deviation of the noisy data (``data_std`` None: not scaled).
    """

    def __init__(self, hidden: int = 128, depth: int = 3, data_std: float | None = 1.0):
        super().__init__()
        self.data_std = None if data_std is None else check_positive(data_std, "data_std")
        self.net = mlp(3, 2, hidden, depth)

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        check_points(x)
        if sigma is None:
            raise ValueError("a noise-conditional model needs sigma (a float > 0 or a tensor of shape (n,))")
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if s.ndim == 0:
            s = s.expand(x.shape[0])
        if s.shape != (x.shape[0],):
            raise ValueError(f"sigma must be a float or have shape (n,) = ({x.shape[0]},), got {tuple(s.shape)}")
        if not (s > 0).all():
            raise ValueError("sigma must be > 0 everywhere")
        s = s[:, None]
        x_in = x if self.data_std is None else x / torch.sqrt(self.data_std**2 + s**2)
        return self.net(torch.cat([x_in, s.log()], dim=1)) / s
