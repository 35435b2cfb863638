"""Metric core: Frechet distance and KID on plain feature arrays, against closed forms and torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import special_ortho_group

from evaluation import feature_stats, fid_from_features, frechet_distance, kid_from_features
from evaluation.metrics import polynomial_kernel


def _spd(rng: np.random.Generator, d: int, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


# ---- Frechet distance --------------------------------------------------------------------------------------


def test_identical_sets_give_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)) * 3 + 1
    assert abs(fid_from_features(x, x)) < 1e-9
    assert abs(fid_from_features(x, x, method="sqrtm")) < 1e-6


def test_identical_sets_with_singular_covariance_give_zero():
    """Fewer samples than dimensions (rank-deficient covariance) and a constant feature: still 0."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 64))
    x[:, 5] = 2.0
    scale = np.trace(np.cov(x, rowvar=False))
    assert abs(fid_from_features(x, x)) < 1e-12 * scale
    assert abs(fid_from_features(x, x.copy(), method="sqrtm")) < 1e-3 * scale  # sqrtm needs its offset here


def test_one_dimensional_closed_form():
    """In 1-D the distance is (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s."""
    d = frechet_distance([1.0], [[4.0]], [3.0], [[9.0]])
    assert d == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2, abs=1e-12)


@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_exact_moments_commuting_covariances(method):
    """S1 = R diag(a) R^T, S2 = R diag(b) R^T: d^2 = |m1 - m2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    rng = np.random.default_rng(2)
    d = 6
    r = special_ortho_group.rvs(d, random_state=3)
    a, b = rng.uniform(0.5, 4, d), rng.uniform(0.1, 2, d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(m1, r @ np.diag(a) @ r.T, m2, r @ np.diag(b) @ r.T, method=method)
    assert got == pytest.approx(expected, rel=1e-10)


def test_exact_moments_general_covariances_agree_across_methods():
    """Non-commuting covariances: our two formulations and the eigenvalues of S1 S2 give one value."""
    rng = np.random.default_rng(4)
    d = 8
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _spd(rng, d), _spd(rng, d, 2.0)
    reference = (np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2)
                 - 2 * np.sqrt(np.linalg.eigvals(s1 @ s2)).real.sum())
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-10)
    assert frechet_distance(m1, s1, m2, s2, method="sqrtm") == pytest.approx(reference, rel=1e-8)
    assert frechet_distance(m2, s2, m1, s1) == pytest.approx(reference, rel=1e-10)  # symmetric


def test_sampled_gaussians_approach_closed_form():
    """Samples of two known Gaussians: the estimate converges on the closed-form value."""
    rng = np.random.default_rng(5)
    d, n = 4, 200_000
    r = special_ortho_group.rvs(d, random_state=6)
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 0.5, 1.0])
    s1, s2 = r @ np.diag(a) @ r.T, r @ np.diag(b) @ r.T
    m1, m2 = np.zeros(d), np.array([1.0, -0.5, 0.0, 2.0])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    x = rng.multivariate_normal(m1, s1, size=n)
    y = rng.multivariate_normal(m2, s2, size=n)
    assert fid_from_features(x, y) == pytest.approx(expected, rel=0.02)


def test_feature_stats_are_float64_mean_and_unbiased_covariance():
    x = np.arange(12, dtype=np.float32).reshape(4, 3) ** 1.5
    mu, sigma = feature_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False))
    mu1, sigma1 = feature_stats(np.array([[1.0], [3.0]]))
    assert sigma1.shape == (1, 1) and sigma1[0, 0] == pytest.approx(2.0)


def test_float32_and_torch_inputs_are_computed_in_float64():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 10)), rng.normal(size=(300, 10)) + 0.3
    ref = fid_from_features(x, y)
    assert fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(ref, rel=1e-5)
    assert fid_from_features(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize(("a", "b", "match"), [
    (np.zeros(10), np.zeros((10, 2)), "2-D"),
    (np.zeros((10, 3)), np.zeros((10, 2)), "different dimensions"),
    (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2 samples"),
    (np.full((4, 3), np.nan), np.zeros((10, 3)), "NaN"),
    (np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)), "numeric"),
])
def test_bad_inputs_raise_clear_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        fid_from_features(a, b)
    with pytest.raises(ValueError, match=match):
        kid_from_features(a, b)


def test_bad_method_and_shapes():
    with pytest.raises(ValueError, match="method"):
        fid_from_features(np.eye(3), np.eye(3), method="svd")
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


class _Identity(torch.nn.Module):
    """A "feature extractor" that returns its input, so torchmetrics sees exactly our features."""

    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("n", [50, 400])  # 50 < 64: singular covariances
def test_fid_equals_torchmetrics_on_same_features(n):
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    rng = np.random.default_rng(8)
    d = 64
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3
    y = rng.normal(size=(n, d)) * 1.2 + 0.2
    metric = fid_module.FrechetInceptionDistance(feature=_Identity(d))
    metric.update(torch.from_numpy(x), real=True)
    metric.update(torch.from_numpy(y), real=False)
    theirs = float(metric.compute())
    assert fid_from_features(x, y) == pytest.approx(theirs, rel=1e-6)


# ---- KID -----------------------------------------------------------------------------------------------------


def _kid_naive(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 written out pair by pair."""
    d = x.shape[1]

    def k(u, v):
        return (float(u @ v) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_naive_computation_on_full_sets():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(25, 5)), rng.normal(size=(25, 5)) + 0.5
    mean, std = kid_from_features(x, y, subset_size=25, n_subsets=3)
    assert mean == pytest.approx(_kid_naive(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_of_identical_distributions_is_near_zero_and_shift_is_positive():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(600, 32)), rng.normal(size=(600, 32))
    same_mean, same_std = kid_from_features(x, y, subset_size=200, n_subsets=20, seed=1)
    assert abs(same_mean) < 3 * same_std + 1e-3
    shifted_mean, _ = kid_from_features(x, y + 0.5, subset_size=200, n_subsets=20, seed=1)
    assert shifted_mean > 10 * max(abs(same_mean), same_std)
    # the same *set* twice: each point also meets itself in the cross term, so the value is slightly negative
    # (of order 1/N), and tiny next to a real difference
    ident_mean, ident_std = kid_from_features(x, x, subset_size=600, n_subsets=1)
    assert -0.05 * shifted_mean < ident_mean <= 0 and ident_std == 0


def test_kid_is_reproducible_with_seed_and_checks_arguments():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(100, 8)), rng.normal(size=(120, 8))
    assert kid_from_features(x, y, 50, 10, seed=3) == kid_from_features(x, y, 50, 10, seed=3)
    assert kid_from_features(x, y, 50, 10, seed=3) != kid_from_features(x, y, 50, 10, seed=4)
    assert kid_from_features(x, y, n_subsets=2) == kid_from_features(x, y, subset_size=100, n_subsets=2)
    with pytest.raises(ValueError, match="exceeds"):
        kid_from_features(x, y, subset_size=101)
    with pytest.raises(ValueError, match="subset_size"):
        kid_from_features(x, y, subset_size=1)
    with pytest.raises(ValueError, match="n_subsets"):
        kid_from_features(x, y, n_subsets=0)


def test_polynomial_kernel_default_gamma():
    x = np.array([[1.0, 2.0]])
    assert polynomial_kernel(x, x)[0, 0] == pytest.approx((5 / 2 + 1) ** 3)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_equals_torchmetrics_on_full_sets():
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(80, 16)), rng.normal(size=(80, 16)) * 1.1 + 0.1
    metric = kid_module.KernelInceptionDistance(feature=_Identity(16), subsets=2, subset_size=80)
    metric.update(torch.from_numpy(x), real=True)
    metric.update(torch.from_numpy(y), real=False)
    theirs_mean, _ = metric.compute()
    # torchmetrics puts the real set first; the estimator is symmetric in the two sets anyway
    assert kid_from_features(x, y, subset_size=80, n_subsets=1)[0] == pytest.approx(float(theirs_mean), rel=1e-9)


def test_frechet_terms_split_a_shift_and_a_scaling_in_closed_form():
    """A shifted copy differs only in the mean term (|c|^2); a copy scaled by s about its mean only in the covariance
    term ((1 - s)^2 Tr(Sigma)); the terms always sum to the distance."""
    from evaluation.metrics import frechet_terms

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    shift = np.arange(6.0) / 3
    t = frechet_terms(a, a + shift)
    assert t["mean_term"] == pytest.approx(shift @ shift, rel=1e-12)
    assert abs(t["covariance_term"]) < 1e-8 and t["fd"] == pytest.approx(t["mean_term"] + t["covariance_term"])
    s, mu, (_, sigma) = 0.5, a.mean(0), feature_stats(a)
    t = frechet_terms(a, mu + s * (a - mu))
    assert abs(t["mean_term"]) < 1e-20
    assert t["covariance_term"] == pytest.approx((1 - s) ** 2 * np.trace(sigma), rel=1e-9)
    assert t["fd"] == pytest.approx(fid_from_features(a, mu + s * (a - mu)), rel=1e-12)
