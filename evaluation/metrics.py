r"""Distances between two sets of image features: Frechet distance (FID) and kernel distance (KID).

Both functions take two plain arrays of shape (N, D) -- numpy arrays, torch tensors or anything
:func:`numpy.asarray` accepts -- and compute in float64 whatever the input precision. They do not know
which network made the features: with pytorch-fid's Inception features the Frechet distance is FID, with the
project's sprite network (see :mod:`evaluation.features`) it is *sprite-FID*, and the two are never comparable.

Frechet distance between the Gaussian fits :math:`\mathcal N(\mu_a,\Sigma_a)` and :math:`\mathcal N(\mu_b,\Sigma_b)`:

.. math:: d^2 = \lVert\mu_a-\mu_b\rVert^2 + \operatorname{Tr}\bigl(\Sigma_a+\Sigma_b-2(\Sigma_a\Sigma_b)^{1/2}\bigr)

KID is the unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
:math:`k(x,y) = (x^\top y / D + 1)^3`, averaged over random subsets (Binkowski et al., 2018).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from scipy import linalg

from pipelines.common import check_number

__all__ = ["feature_stats", "fid_from_features", "frechet_distance", "frechet_terms", "kid_from_features",
           "polynomial_kernel", "precision_recall"]

SQRTM_EPS = 1e-6  # the diagonal offset added when sqrtm of the covariance product is not finite (as pytorch-fid)


def _as_features(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 (N, D) array with N >= 2, or raise ValueError naming ``name``."""
    if hasattr(x, "detach"):  # a torch tensor, possibly on a device or requiring grad
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: features must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: features must be a 2-D array (N samples, D features), got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 samples to fit a covariance, got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: features have dimension 0")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: features contain NaN or infinity")
    return arr


def _check_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    fa, fb = _as_features(a, "first set"), _as_features(b, "second set")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"the two feature sets have different dimensions: {fa.shape[1]} and {fb.shape[1]} "
                         "(were they made by the same feature extractor?)")
    return fa, fb


def feature_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), in float64, of features (N, D), N >= 2."""
    f = _as_features(features, "features")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_eigenvalues_floor(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off removed: values below ``D * eps * max`` (negative ones
    included) cannot be told from 0 and are set to 0. Their square roots would otherwise add noise of order
    ``sqrt(eps)``, e.g. -2e-7 instead of 0 for identical sets with dead (constant) features."""
    tol = max(float(w.max(initial=0.0)), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (round-off eigenvalues set to 0)."""
    w, v = linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(_psd_eigenvalues_floor(w))) @ v.T


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^{1/2}) as the sum of sqrt(eigenvalues) of the symmetric PSD matrix S1^{1/2} S2 S1^{1/2}."""
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(_psd_eigenvalues_floor(eigenvalues)).sum())


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = SQRTM_EPS) -> float:
    """Tr((S1 S2)^{1/2}) with scipy's general ``sqrtm`` of the (non-symmetric) product, pytorch-fid's way.

    If the result is not finite (singular covariances), ``eps`` is added to both diagonals and the square root
    is taken again. A small imaginary part from round-off is dropped; a large one raises ValueError.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on singular input; we check the result instead
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise ValueError(f"sqrtm of the covariance product has an imaginary component of {imag:.3g}; "
                             "use method='eigh'")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any,
                     method: Literal["eigh", "sqrtm"] = "eigh") -> float:
    r"""Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``method="eigh"`` (the default) uses the identity
    :math:`\operatorname{Tr}(\Sigma_1\Sigma_2)^{1/2} = \operatorname{Tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}`:
    the matrix on the right is symmetric positive semi-definite, so its eigenvalues come from a symmetric
    eigensolver and are real; those that round-off leaves at about 0 (or slightly negative) are set to 0.
    This needs no diagonal offset and stays exact when a covariance is singular (fewer samples than feature
    dimensions, or constant features), which is the common case for small sample counts; the general
    ``sqrtm`` of the non-symmetric product can return NaN or complex values there.

    ``method="sqrtm"`` reproduces pytorch-fid's computation (``scipy.linalg.sqrtm`` of the product, retried with
    a 1e-6 diagonal offset when the result is not finite) for cross-checks. Both agree to round-off on
    well-conditioned covariances.
    """
    m1, m2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = m1.shape[0]
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {m1.shape}, sigma1 {s1.shape}, mu2 {m2.shape}, sigma2 {s2.shape}")
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(s1, s2)
    elif method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(s1, s2)
    else:
        raise ValueError(f"method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = m1 - m2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(a: Any, b: Any, method: Literal["eigh", "sqrtm"] = "eigh") -> float:
    """Frechet distance between the Gaussian fits of two feature sets (N_a, D) and (N_b, D); float64.

    With Inception pool features this is FID; with the sprite network it is sprite-FID. Identical sets give 0
    (up to round-off, about 1e-12 times the feature scale). See :func:`frechet_distance` for ``method``.
    """
    return frechet_terms(a, b, method)["fd"]


def frechet_terms(a: Any, b: Any, method: Literal["eigh", "sqrtm"] = "eigh") -> dict[str, float]:
    r"""The Frechet distance of two feature sets and its two terms: ``mean_term`` :math:`|\mu_a - \mu_b|^2` (the
    sets' centres apart) and ``covariance_term`` :math:`\operatorname{Tr}(\Sigma_a + \Sigma_b -
    2(\Sigma_a\Sigma_b)^{1/2})` (their spreads and shapes apart); ``fd`` is their sum (:func:`fid_from_features`)."""
    fa, fb = _check_pair(a, b)
    mu_a, sigma_a = feature_stats(fa)
    mu_b, sigma_b = feature_stats(fb)
    fd = frechet_distance(mu_a, sigma_a, mu_b, sigma_b, method=method)
    mean_term = float((mu_a - mu_b) @ (mu_a - mu_b))
    return {"fd": fd, "mean_term": mean_term, "covariance_term": fd - mean_term}


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> np.ndarray:
    """k(x, y) = (gamma * x.y + coef) ** degree for all pairs of rows; gamma defaults to 1 / D."""
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    return (gamma * (x @ y.T) + coef) ** degree


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, **kernel: Any) -> float:
    """Unbiased MMD^2 between samples x (m, D) and y (n, D): within-set sums leave out the diagonal."""
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x, **kernel)
    k_yy = polynomial_kernel(y, y, **kernel)
    k_xy = polynomial_kernel(x, y, **kernel)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n))


def kid_from_features(a: Any, b: Any, subset_size: int | None = None, n_subsets: int = 100, seed: int = 0,
                      degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> tuple[float, float]:
    """Kernel distance (KID) between feature sets (N_a, D) and (N_b, D): ``(mean, std)`` over random subsets.

    Each of ``n_subsets`` rounds draws ``subset_size`` rows without replacement from each set (a seeded numpy
    generator: the same ``seed`` gives the same numbers) and computes the unbiased MMD^2 with the polynomial
    kernel ``(x.y / D + 1) ** 3``. The estimate is unbiased, so identical distributions give values scattered
    around 0, slightly negative ones included. ``std`` is the population standard deviation over subsets (as
    torch-fidelity and torchmetrics report it); it measures subset scatter, not the error of the mean.

    ``subset_size=None`` uses ``min(1000, N_a, N_b)`` (1000 is the usual choice for large sets); an explicit
    size larger than either set raises ValueError. When ``subset_size`` equals both set sizes every subset is
    the whole set and the result is exact (std 0).
    """
    fa, fb = _check_pair(a, b)
    if subset_size is None:
        subset_size = min(1000, fa.shape[0], fb.shape[0])
    check_number("subset_size", subset_size, 2, integer=True)
    if subset_size > min(fa.shape[0], fb.shape[0]):
        raise ValueError(f"subset_size {subset_size} exceeds the number of samples ({fa.shape[0]} and {fb.shape[0]}); "
                         "pass a smaller subset_size or None")
    check_number("n_subsets", n_subsets, 1, integer=True, text="a positive integer")
    if not isinstance(degree, (int, np.integer)) or degree < 1:
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    kernel = {"degree": int(degree), "gamma": gamma, "coef": coef}
    if subset_size == fa.shape[0] == fb.shape[0]:  # every subset is the whole of both sets: one exact value
        return _mmd2_unbiased(fa, fb, **kernel), 0.0
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for i in range(n_subsets):
        x = fa[rng.choice(fa.shape[0], subset_size, replace=False)]
        y = fb[rng.choice(fb.shape[0], subset_size, replace=False)]
        values[i] = _mmd2_unbiased(x, y, **kernel)
    return float(values.mean()), float(values.std())


def _kth_neighbour_radii(f: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row of ``f`` to its k-th nearest other row (float64)."""
    sq = (f * f).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])


def _inside_manifold(queries: np.ndarray, support: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query: is it within radius_j of some support point j?"""
    d2 = np.maximum((queries * queries).sum(1)[:, None] + (support * support).sum(1)[None, :] - 2 * queries @ support.T,
                    0)
    return (d2 <= radii[None, :] ** 2).any(1)


def precision_recall(generated: Any, real: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, eq. 1-3) of two feature sets.

    Each set's manifold is the union of balls around its points with radius the distance to the point's k-th
    nearest neighbour in the same set. Precision: the share of generated points inside the real manifold
    (quality); recall: the share of real points inside the generated manifold (coverage).
    """
    fg, fr = _check_pair(generated, real)
    if min(len(fg), len(fr)) <= k:
        raise ValueError(f"precision/recall with k = {k} needs more than {k} points in each set")
    precision = _inside_manifold(fg, fr, _kth_neighbour_radii(fr, k)).mean()
    recall = _inside_manifold(fr, fg, _kth_neighbour_radii(fg, k)).mean()
    return float(precision), float(recall)
