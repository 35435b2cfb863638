"""GaussianMixture2D: analytic score vs autograd, densities vs scipy, sample moments, perturbation, and the course
notebook's mixture and data set for a student number."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from score_toy import GaussianMixture2D, course_samples


def random_mixture(seed: int, k: int) -> GaussianMixture2D:
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.2
    means = 6 * torch.rand(k, 2, generator=g, dtype=torch.float64) - 3
    a = torch.randn(k, 2, 2, generator=g, dtype=torch.float64)
    covs = a @ a.transpose(-1, -2) + 0.1 * torch.eye(2, dtype=torch.float64)
    return GaussianMixture2D(w / w.sum(), means, covs)


@pytest.mark.parametrize("seed,k", [(0, 1), (1, 2), (2, 3), (3, 5)])
def test_analytic_score_equals_autograd_of_log_prob(seed, k):
    mix = random_mixture(seed, k)
    x = (4 * torch.randn(64, 2, dtype=torch.float64)).requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.log_prob(x).sum(), x)
    assert torch.allclose(mix.score(x.detach()), grad, rtol=1e-10, atol=1e-10)
    # float32 inputs are scored in float64 and returned as float32
    s32 = mix.score(x.detach().float())
    assert s32.dtype == torch.float32 and torch.allclose(s32.double(), grad, rtol=1e-5, atol=1e-5)


def test_log_prob_matches_scipy():
    mix = random_mixture(7, 3)
    x = 3 * torch.randn(50, 2, dtype=torch.float64)
    expected = sum(w * multivariate_normal(m.numpy(), c.numpy()).pdf(x.numpy())
                   for w, m, c in zip(mix.weights, mix.means, mix.covariances, strict=True))
    np.testing.assert_allclose(mix.log_prob(x).exp().numpy(), expected, rtol=1e-10)


def test_score_is_finite_and_correct_far_from_every_mode():
    """Densities underflow to 0 at |x| = 1e4; the log-sum-exp responsibilities still pick the dominant component."""
    mix = random_mixture(4, 3)
    x = torch.tensor([[1e4, -1e4], [-3e3, 5e3]], dtype=torch.float64)
    assert (mix.log_prob(x).exp() == 0).all()
    s = mix.score(x)
    assert torch.isfinite(s).all()
    k = mix.component_log_probs(x).argmax(-1)
    precision = torch.linalg.inv(mix.covariances[k])
    expected = -torch.einsum("nij,nj->ni", precision, x - mix.means[k])
    assert torch.allclose(s, expected, rtol=1e-9)


def test_sample_moments_and_component_frequencies():
    mix = random_mixture(5, 3)
    n = 200_000
    x, labels = mix.sample(n, torch.Generator().manual_seed(0), dtype=torch.float64, return_labels=True)
    freq = torch.bincount(labels, minlength=3).double() / n
    se_w = (mix.weights * (1 - mix.weights) / n).sqrt()
    assert ((freq - mix.weights).abs() < 5 * se_w).all()
    cov = mix.covariance()
    se_mean = (cov.diagonal() / n).sqrt()
    assert ((x.mean(0) - mix.mean()).abs() < 5 * se_mean).all()
    scale = cov.diagonal().sqrt()
    rel = (torch.cov(x.T) - cov) / torch.outer(scale, scale)
    assert rel.abs().max() < 0.02


def test_sample_is_reproducible_with_a_generator():
    mix = random_mixture(6, 2)
    a = mix.sample(100, torch.Generator().manual_seed(3))
    b = mix.sample(100, torch.Generator().manual_seed(3))
    c = mix.sample(100, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (100, 2) and a.dtype == torch.float32


def test_perturbed_is_the_convolution_with_gaussian_noise():
    mix = random_mixture(8, 2)
    sigma = 1.5
    pert = mix.perturbed(sigma)
    assert torch.allclose(pert.covariances, mix.covariances + sigma**2 * torch.eye(2, dtype=torch.float64))
    assert torch.equal(pert.weights, mix.weights) and torch.equal(pert.means, mix.means)
    # p_sigma(x) = E_{y ~ p} N(x; y, sigma^2 I), by Monte Carlo over y
    y = mix.sample(400_000, torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0], [-2.5, 1.0]], dtype=torch.float64)
    kernel = torch.exp(-torch.cdist(x, y).square() / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    mc = kernel.mean(1)
    assert torch.allclose(pert.log_prob(x).exp(), mc, rtol=0.02)
    # the sampler interface scores p_sigma
    assert torch.allclose(mix.score_fn(x, sigma), pert.score(x)) and torch.allclose(mix.score_fn(x), mix.score(x))


I2 = [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("weights,means,covs,match", [
    ([0.5, 0.6], [[0, 0], [1, 1]], [I2, I2], "sum to 1"),
    ([1.2, -0.2], [[0, 0], [1, 1]], [I2, I2], "> 0"),
    ([0.5, 0.5], [[0, 0, 0], [1, 1, 1]], [I2, I2], "means must have shape"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [I2], "covariances must have shape"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [I2, [[1.0, 0.5], [0.2, 1.0]]], r"covariances\[1\] must be symmetric"),
    ([0.5, 0.5], [[0, 0], [1, 1]], [[[1.0, 2.0], [2.0, 1.0]], I2], r"covariances\[0\] must be positive definite"),
    ([[0.5, 0.5]], [[0, 0], [1, 1]], [I2, I2], "weights must have shape"),
    ([1.0], [[float("nan"), 0]], [I2], "finite"),
])
def test_bad_parameters_raise(weights, means, covs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture2D(weights, means, covs)


def test_bad_points_and_sigma_raise():
    mix = random_mixture(0, 2)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        mix.score(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        mix.log_prob(torch.zeros(2))
    with pytest.raises(ValueError, match="floating"):
        mix.log_prob(torch.zeros(4, 2, dtype=torch.long))
    for sigma in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            mix.perturbed(sigma)
    with pytest.raises(ValueError, match="n must be"):
        mix.sample(-1)


# The course notebook's rule under NumPy's legacy generator (np.random.seed(n) then rand/choice/multivariate_normal):
# w1, w2, mean1, mean2, var1, var2 and the first training point of course_samples(n).
COURSE_VECTORS = [
    (810101504, (0.167173, 0.832827), ((-5, 5), (5, -5)), (1.123188, 1.141156), (5.981658, -5.566273)),
    (810199999, (0.191190, 0.808810), ((5, 5), (-5, -5)), (1.690734, 1.803068), (-3.767372, -4.762240)),
]


@pytest.mark.parametrize("student,weights,means,variances,first", COURSE_VECTORS)
def test_from_student_id_is_the_course_notebooks_rule(student, weights, means, variances, first):
    for sid in (student, str(student), f" {student}\n", np.int64(student)):
        mix = GaussianMixture2D.from_student_id(sid)
        np.testing.assert_allclose(mix.weights.numpy(), weights, atol=1e-6)
        np.testing.assert_array_equal(mix.means.numpy(), means)
        expected_cov = np.asarray(variances)[:, None, None] * np.eye(2)
        np.testing.assert_allclose(mix.covariances.numpy(), expected_cov, atol=1e-6)
        assert mix.weights.sum().item() == pytest.approx(1.0, abs=1e-15)
    train, test = course_samples(student)
    np.testing.assert_allclose(train[0], first, atol=1e-6)


@pytest.mark.parametrize("student,weights,means,variances,first", COURSE_VECTORS)
def test_course_samples_sizes_splits_and_component_counts(student, weights, means, variances, first):
    train, test = course_samples(student, n_samples=5000, train_split=0.8)
    assert train.shape == (4000, 2) and test.shape == (1000, 2)
    assert train.dtype == np.float64 and test.dtype == np.float64
    data = np.vstack([train, test])
    # Component 1 holds int(5000 * w1) points; the modes are 14.1 apart with standard deviations below 1.42, so
    # the nearer mean tells the component of every point here.
    near1 = np.linalg.norm(data - means[0], axis=1) < np.linalg.norm(data - means[1], axis=1)
    assert near1.sum() == int(5000 * weights[0])
    # the rows are shuffled: both splits hold both components in about the right shares
    for part in (train, test):
        share = (np.linalg.norm(part - means[0], axis=1) < np.linalg.norm(part - means[1], axis=1)).mean()
        assert abs(share - weights[0]) < 0.05
    # other sizes and splits, as the notebook's arguments allow
    small_train, small_test = course_samples(student, n_samples=1000, train_split=0.5)
    assert small_train.shape == (500, 2) and small_test.shape == (500, 2)
    np.testing.assert_array_equal(course_samples(student)[0], train)  # deterministic


def test_course_rule_leaves_numpys_global_state_alone():
    np.random.seed(7)
    before = np.random.get_state()
    GaussianMixture2D.from_student_id(810101504)
    course_samples(810101504)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.random.seed(7)
    assert np.random.rand() == np.random.RandomState(7).rand()


def test_from_student_id_properties_over_many_ids():
    a, b = GaussianMixture2D.from_student_id(20231234), GaussianMixture2D.from_student_id("20231234")
    assert torch.equal(a.weights, b.weights) and torch.equal(a.covariances, b.covariances)
    c = GaussianMixture2D.from_student_id(20231235)
    assert not torch.equal(a.weights, c.weights)
    for sid in [*range(0, 40_000, 400), 2**32 - 1]:
        m = GaussianMixture2D.from_student_id(sid)
        assert m.n_components == 2 and abs(m.weights.sum() - 1) < 1e-12
        assert 0.15 <= m.weights.min() <= 0.25 and 0.75 <= m.weights.max() <= 0.85
        assert torch.equal(m.means[1], -m.means[0]) and (m.means.abs() == 5).all()
        var = m.covariances[:, 0, 0]
        assert ((var >= 1) & (var < 2)).all()
        assert torch.equal(m.covariances, var[:, None, None] * torch.eye(2, dtype=torch.float64))
        gap = (m.means[0] - m.means[1]).norm()
        assert gap >= 3 * var.sqrt().sum()  # the modes are well separated


@pytest.mark.parametrize("bad", [-1, "-1", 2**32, str(2**32), "12a", "", " ", "1e5", "٣", 3.5, 3.0, True, False,
                                 None, [1]])
def test_from_student_id_refuses_what_numpys_legacy_seeding_refuses(bad):
    with pytest.raises(ValueError, match="student_id must be a whole number from 0 to 4294967295"):
        GaussianMixture2D.from_student_id(bad)
    with pytest.raises(ValueError, match="student_id"):
        course_samples(bad)


@pytest.mark.parametrize("n,split,match", [(5000, 1.0, "train_split"), (5000, 0, "train_split"),
                                           (5000, "0.8", "train_split"), (3, 0.8, "at least 2"),
                                           (5000.0, 0.8, "n_samples must be an integer")])
def test_course_samples_refuses_bad_sizes(n, split, match):
    with pytest.raises(ValueError, match=match):
        course_samples(1, n_samples=n, train_split=split)
