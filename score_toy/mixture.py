"""The target distribution: a 2D Gaussian mixture with exact log-density, samples and score.

All arithmetic is done in float64 and results are returned in the dtype of the input, so that the analytic score
is accurate enough to serve as ground truth for learned models and samplers.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

_LOG_2PI = math.log(2 * math.pi)


def _as_tensor(value: Tensor | Sequence, name: str) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be numeric, got {value!r}") from err
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t


def check_points(x: Tensor, name: str = "x") -> Tensor:
    """Return ``x`` if it is a floating tensor of shape (n, 2), else raise a ValueError naming the problem."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (n, 2), got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {x.dtype}")
    return x


def check_sigma(sigma: float, name: str = "sigma") -> float:
    """Return ``sigma`` as a float if it is a finite number > 0, else raise a ValueError."""
    try:
        value = float(sigma)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number > 0, got {sigma!r}") from err
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {sigma!r}")
    return value


class GaussianMixture2D:
    """p(x) = sum_k w_k N(x; mu_k, C_k) in two dimensions.

    Args:
        weights: (K,) positive, summing to 1 (within 1e-6).
        means: (K, 2).
        covariances: (K, 2, 2), each symmetric positive definite.
    """

    def __init__(self, weights: Tensor | Sequence, means: Tensor | Sequence, covariances: Tensor | Sequence):
        w, mu, cov = _as_tensor(weights, "weights"), _as_tensor(means, "means"), _as_tensor(covariances, "covariances")
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {tuple(w.shape)}")
        k = w.numel()
        if mu.shape != (k, 2):
            raise ValueError(f"means must have shape (K, 2) = ({k}, 2) to match {k} weights, got {tuple(mu.shape)}")
        if cov.shape != (k, 2, 2):
            raise ValueError(f"covariances must have shape (K, 2, 2) = ({k}, 2, 2), got {tuple(cov.shape)}")
        if (w <= 0).any():
            raise ValueError(f"weights must all be > 0, got {w.tolist()}")
        if abs(w.sum().item() - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, got sum {w.sum().item():.8g} for {w.tolist()}")
        asym = (cov - cov.transpose(-1, -2)).abs().amax(dim=(-1, -2))
        scale = cov.abs().amax(dim=(-1, -2)).clamp_min(1.0)
        for i in range(k):
            if asym[i] > 1e-9 * scale[i]:
                raise ValueError(f"covariances[{i}] must be symmetric, got {cov[i].tolist()}")
        chol, info = torch.linalg.cholesky_ex(cov)
        if (info != 0).any():
            bad = int(torch.nonzero(info)[0])
            raise ValueError(f"covariances[{bad}] must be positive definite, got {cov[bad].tolist()}")
        self.weights, self.means, self.covariances = w, mu, cov
        self._chol = chol
        self._perturbed_cache: dict[float, GaussianMixture2D] = {}
        self._precisions = torch.cholesky_inverse(chol)
        self._log_norm = w.log() - _LOG_2PI - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # log w_k - log(2pi|C|^.5)

    def __repr__(self) -> str:
        return (f"GaussianMixture2D(weights={self.weights.tolist()}, means={self.means.tolist()}, "
                f"covariances={self.covariances.tolist()})")

    @property
    def n_components(self) -> int:
        return self.weights.numel()

    def mean(self) -> Tensor:
        """E[x] = sum_k w_k mu_k, shape (2,), float64."""
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """Cov[x] = sum_k w_k (C_k + mu_k mu_k^T) - E[x] E[x]^T, shape (2, 2), float64."""
        outer = self.means[:, :, None] * self.means[:, None, :]
        second = torch.einsum("k,kij->ij", self.weights, self.covariances + outer)
        m = self.mean()
        return second - torch.outer(m, m)

    def component_log_probs(self, x: Tensor) -> Tensor:
        """log w_k + log N(x; mu_k, C_k), shape (n, K), float64."""
        d = check_points(x).to(torch.float64)[:, None, :] - self.means  # (n, K, 2)
        maha = torch.einsum("nki,kij,nkj->nk", d, self._precisions, d)
        return self._log_norm - 0.5 * maha

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x), shape (n,), in the dtype of ``x`` (differentiable)."""
        return torch.logsumexp(self.component_log_probs(x), dim=-1).to(x.dtype)

    def responsibilities(self, x: Tensor) -> Tensor:
        """Posterior component probabilities r_k(x) = w_k N_k(x) / p(x), shape (n, K), in the dtype of ``x``."""
        return torch.softmax(self.component_log_probs(x), dim=-1).to(x.dtype)

    def score(self, x: Tensor) -> Tensor:
        """grad_x log p(x) = -sum_k r_k(x) C_k^{-1} (x - mu_k), shape (n, 2), in the dtype of ``x``.

        The responsibilities are a softmax of the component log-densities (log-sum-exp), so the score stays finite
        far from every mode, where the densities themselves underflow to zero.
        """
        logits = self.component_log_probs(x)
        r = torch.softmax(logits, dim=-1)
        d = x.to(torch.float64)[:, None, :] - self.means
        comp = -torch.einsum("kij,nkj->nki", self._precisions, d)
        return (r[:, :, None] * comp).sum(1).to(x.dtype)

    def score_fn(self, x: Tensor, sigma: float | None = None) -> Tensor:
        """The sampler interface: the exact score of p (``sigma`` None) or of p convolved with N(0, sigma^2 I)."""
        if sigma is None:
            return self.score(x)
        key = float(sigma)
        if key not in self._perturbed_cache:
            if len(self._perturbed_cache) >= 64:
                self._perturbed_cache.clear()
            self._perturbed_cache[key] = self.perturbed(key)
        return self._perturbed_cache[key].score(x)

    def perturbed(self, sigma: float) -> GaussianMixture2D:
        """p_sigma = p * N(0, sigma^2 I): the same mixture with covariances C_k + sigma^2 I."""
        s = check_sigma(sigma)
        eye = torch.eye(2, dtype=torch.float64)
        return GaussianMixture2D(self.weights, self.means, self.covariances + s**2 * eye)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
               return_labels: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """n independent draws, shape (n, 2); with ``return_labels`` also the component of each draw."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        n = int(n)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator) if n else \
            torch.zeros(0, dtype=torch.long)
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x = self.means[labels] + torch.einsum("nij,nj->ni", self._chol[labels], z)
        return (x.to(dtype), labels) if return_labels else x.to(dtype)

    @classmethod
    def from_student_id(cls, student_id: int | str) -> GaussianMixture2D:
        """A deterministic two-component mixture made from a student number (any non-negative integer).

        Eight numbers u_0..u_7 in [0, 1) are read from SHA-256 of the decimal string of the number (bytes 4j..4j+3,
        big-endian, divided by 2^32). Then:

        - w_1 = 0.2 + 0.6 u_0, w_2 = 1 - w_1 (both in [0.2, 0.8]);
        - mu_1 = r (cos t, sin t), mu_2 = -mu_1, with r = 3 + 1.5 u_1 and t = 2 pi u_2 (the means are 6 to 9 apart);
        - C_k = R(phi_k) diag(a_k^2, b_k^2) R(phi_k)^T with a_k = 0.4 + 0.6 u, b_k = 0.4 + 0.6 u', phi_k = pi u''
          (u, u', u'' = u_3, u_4, u_5 for k = 1 and u_6, u_7, u_2 + 1/2 mod 1 for k = 2): symmetric positive
          definite, standard deviations in [0.4, 1.0].

        The means are at least 6 apart and every standard deviation is at most 1, so the modes are separated by
        at least three standard deviations of each component.
        """
        if isinstance(student_id, bool):
            raise ValueError(f"student_id must be a non-negative integer, got {student_id!r}")
        text = str(student_id).strip()
        if not text.isdigit():
            raise ValueError(f"student_id must be a non-negative integer (digits only), got {student_id!r}")
        digest = hashlib.sha256(str(int(text)).encode()).digest()
        u = [int.from_bytes(digest[4 * j: 4 * j + 4], "big") / 2**32 for j in range(8)]
        w1 = 0.2 + 0.6 * u[0]
        r, t = 3 + 1.5 * u[1], 2 * math.pi * u[2]
        mu1 = [r * math.cos(t), r * math.sin(t)]

        def cov(a: float, b: float, phi: float) -> list[list[float]]:
            c, s = math.cos(phi), math.sin(phi)
            rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
            m = rot @ torch.diag(torch.tensor([a * a, b * b], dtype=torch.float64)) @ rot.T
            return (0.5 * (m + m.T)).tolist()

        covs = [cov(0.4 + 0.6 * u[3], 0.4 + 0.6 * u[4], math.pi * u[5]),
                cov(0.4 + 0.6 * u[6], 0.4 + 0.6 * u[7], math.pi * ((u[2] + 0.5) % 1))]
        return cls([w1, 1 - w1], [mu1, [-mu1[0], -mu1[1]]], covs)
