"""The target distribution: a 2D Gaussian mixture with exact log-density, samples and score, and the course
notebook's mixture and data set for a student number (:meth:`GaussianMixture2D.from_student_id`,
:func:`course_samples`).

All arithmetic is done in float64 and results are returned in the dtype of the input, so that the analytic score
is accurate enough to serve as ground truth for learned models and samplers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
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


def check_positive(value: float, name: str) -> float:
    """Return ``value`` (a noise level, step size or scale called ``name``) as a float if it is a finite number
    > 0, else raise a ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from err
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


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
        s = check_positive(sigma, "sigma")
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
        """The course notebook's two-component mixture for a student number (an integer 0 .. 2**32 - 1).

        The notebook seeds NumPy's legacy generator with the number and draws, in this order (here from a local
        ``np.random.RandomState``, so NumPy's global state is left alone):

        - w_1 = 0.15 + 0.1 rand(), w_2 = 1 - w_1;
        - choice(2) == 1: mu_1 = (-5, 5), mu_2 = (5, -5); else mu_1 = (5, 5), mu_2 = (-5, -5);
        - choice(2) == 1: swap w_1 and w_2;
        - var_1 = 1 + rand(), var_2 = 1 + rand(); C_k = var_k I.

        So one weight lies in [0.15, 0.25], the means are 14.1 apart and every standard deviation is below 1.42.
        :func:`course_samples` draws the notebook's data set from the same generator.
        """
        w, means, variances = _course_parameters(np.random.RandomState(check_student_number(student_id)))
        return cls(w, means, np.asarray(variances)[:, None, None] * np.eye(2))


SEED_MAX = 2**32 - 1  # NumPy's legacy seeding (np.random.seed, RandomState) accepts 0 .. 2**32 - 1


def check_student_number(student_id: int | str) -> int:
    """The student number as an int in 0 .. 2**32 - 1 (an int or a string of digits), else a ValueError."""
    text = str(student_id).strip() if isinstance(student_id, (numbers.Integral, str)) else ""
    if isinstance(student_id, bool) or not (text.isascii() and text.isdigit()) or int(text) > SEED_MAX:
        raise ValueError(f"student_id must be a whole number from 0 to {SEED_MAX} (NumPy's legacy seed range, used "
                         f"by the course's rule), got {student_id!r}")
    return int(text)


def _course_parameters(rs: np.random.RandomState) -> tuple[list[float], list[list[float]], list[float]]:
    """The notebook's draws, in its order: weights, means and variances of the two components (after the swap)."""
    w1 = 0.15 + 0.1 * rs.rand()
    w2 = 1 - w1
    if rs.choice(2) == 1:
        mean1, mean2 = [-5.0, 5.0], [5.0, -5.0]
    else:
        mean1, mean2 = [5.0, 5.0], [-5.0, -5.0]
    if rs.choice(2) == 1:
        w1, w2 = w2, w1
    var1 = 1 + rs.rand()
    var2 = 1 + rs.rand()
    return [float(w1), float(w2)], [mean1, mean2], [float(var1), float(var2)]


def split_sizes(n_samples: int, train_split: float) -> tuple[int, int]:
    """(n_train, n_test) = (int(train_split * n_samples), the rest); both must hold at least 2 points."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
        raise ValueError(f"n_samples must be an integer, got {n_samples!r}")
    if isinstance(train_split, bool) or not isinstance(train_split, numbers.Real) or not 0 < train_split < 1:
        raise ValueError(f"train_split must be a number strictly between 0 and 1, got {train_split!r}")
    n_train = int(train_split * n_samples)
    if n_train < 2 or n_samples - n_train < 2:
        raise ValueError(f"n_samples = {n_samples} with train_split = {train_split} gives {n_train} training and "
                         f"{n_samples - n_train} test points; both need at least 2 (raise n_samples)")
    return n_train, int(n_samples) - n_train


def course_samples(student_number: int | str, n_samples: int = 5000,
                   train_split: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """The course notebook's data set for a student number: (train, test), float64 arrays of shape (n, 2).

    The generator of :meth:`GaussianMixture2D.from_student_id` continues: n_1 = int(n_samples * w_1) points of
    component 1 (``multivariate_normal``), then n_samples - n_1 of component 2, stacked in that order, shuffled by
    ``permutation(n_samples)``; the first int(train_split * n_samples) rows are the training split, the rest the
    test split. NumPy's global random state is not used.
    """
    n_train, _ = split_sizes(n_samples, train_split)
    rs = np.random.RandomState(check_student_number(student_number))
    (w1, _), (mean1, mean2), (var1, var2) = _course_parameters(rs)
    n1 = int(n_samples * w1)
    x1 = rs.multivariate_normal(mean1, var1 * np.eye(2), n1)
    x2 = rs.multivariate_normal(mean2, var2 * np.eye(2), n_samples - n1)
    data = np.vstack([x1, x2])[rs.permutation(n_samples)]
    return data[:n_train].astype(np.float64), data[n_train:].astype(np.float64)
