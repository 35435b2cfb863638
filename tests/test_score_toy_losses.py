"""Losses on Gaussian data, where the optimal score is linear: closed-form values and trained linear models."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad
from torch import nn

from score_toy import DSMLoss, GaussianMixture2D, LinearScore, NCSMLoss, ScoreMLP, SlicedScoreMatchingLoss, fit
from score_toy.sigmas import geometric_sigmas

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
EYE = torch.eye(2, dtype=torch.float64)


def gaussian() -> GaussianMixture2D:
    return GaussianMixture2D([1.0], MEAN[None], COV[None])


def exact_affine(sigma: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The score of N(MEAN, COV + sigma^2 I) is A x + b with A = -(COV + sigma^2 I)^{-1}, b = -A MEAN."""
    a = -torch.linalg.inv(COV + (sigma or 0.0) ** 2 * EYE)
    return a, -a @ MEAN


def dsm_optimum(sigma: float) -> float:
    """At the exact score, 1/2 E|s(x~) + eps/sigma^2|^2 = 1/2 (d / sigma^2 - E|grad log p_sigma|^2)."""
    return 0.5 * (2 / sigma**2 - torch.trace(torch.linalg.inv(COV + sigma**2 * EYE)).item())


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_dsm_at_the_exact_score_has_its_closed_form_value(sigma):
    x = gaussian().sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    value = DSMLoss(sigma)(gaussian().score_fn, x, torch.Generator().manual_seed(1)).item()
    assert value == pytest.approx(dsm_optimum(sigma), rel=0.02)
    # any other score does worse: the exact score is the minimiser
    worse = DSMLoss(sigma)(lambda y, s: 0.9 * gaussian().score_fn(y, s), x, torch.Generator().manual_seed(1)).item()
    assert worse > value


def train_linear(loss, sigma: float | None, seed: int = 0, steps: int = 400) -> LinearScore:
    torch.manual_seed(seed)
    data = gaussian().sample(20_000, torch.Generator().manual_seed(seed))
    model = LinearScore(sigma=sigma)
    fit(model, loss, data, steps=steps, batch_size=1024, lr=0.05, generator=torch.Generator().manual_seed(seed + 1))
    return model


def assert_near_exact(model: LinearScore, sigma: float | None, tol: float) -> None:
    a, b = exact_affine(sigma)
    a_hat, b_hat = model.linear.weight.detach().double(), model.linear.bias.detach().double()
    scale = a.norm()
    assert (a_hat - a).norm() / scale < tol, (a_hat, a)
    assert (b_hat - b).norm() / scale < tol, (b_hat, b)


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_dsm_trains_a_linear_model_to_the_exact_perturbed_score(sigma):
    assert_near_exact(train_linear(DSMLoss(sigma), sigma), sigma, tol=0.04)


@pytest.mark.parametrize("sampling", ["geometric", "log_uniform"])
def test_ncsm_at_the_exact_scores_has_its_closed_form_value(sampling):
    """With lambda(sigma) = sigma^2 the loss is E_sigma[sigma^2 * DSM optimum(sigma)], over the sigma distribution."""
    lo, hi = 1.0, 20.0

    def exact_scores(x, sigma):  # the score of N(MEAN, COV + sigma_i^2 I), one sigma per row
        prec = torch.linalg.inv(COV + sigma.double()[:, None, None] ** 2 * EYE)
        return -torch.einsum("nij,nj->ni", prec, x.double() - MEAN)

    x = gaussian().sample(200_000, torch.Generator().manual_seed(2), dtype=torch.float64)
    value = NCSMLoss(lo, hi, sampling, n_levels=5)(exact_scores, x, torch.Generator().manual_seed(3)).item()
    if sampling == "geometric":
        expected = sum(s**2 * dsm_optimum(s) for s in geometric_sigmas(hi, lo, 5).tolist()) / 5
    else:
        expected = quad(lambda t: math.exp(2 * t) * dsm_optimum(math.exp(t)), 0, math.log(hi))[0] / math.log(hi)
    assert value == pytest.approx(expected, rel=0.02)


class PerLevelLinear(nn.Module):
    """s(x, sigma_i) = A_i x + b_i, one affine map per geometric level: holds the exact scores of all p_sigma_i."""

    def __init__(self, levels: torch.Tensor):
        super().__init__()
        self.levels = levels.float()
        self.a = nn.Parameter(torch.zeros(len(levels), 2, 2))
        self.b = nn.Parameter(torch.zeros(len(levels), 2))

    def forward(self, x, sigma):
        i = (sigma[:, None] - self.levels).abs().argmin(-1)
        return torch.einsum("nij,nj->ni", self.a[i], x) + self.b[i]


def test_ncsm_trains_each_level_to_the_exact_perturbed_score():
    levels = geometric_sigmas(4.0, 0.5, 3)
    model = PerLevelLinear(levels)
    data = gaussian().sample(20_000, torch.Generator().manual_seed(0))
    fit(model, NCSMLoss(0.5, 4.0, "geometric", 3), data, steps=500, batch_size=3072, lr=0.05,
        generator=torch.Generator().manual_seed(1))
    for i, sigma in enumerate(levels.tolist()):
        a, b = exact_affine(sigma)
        assert (model.a[i].detach().double() - a).norm() / a.norm() < 0.08, (sigma, model.a[i], a)
        assert (model.b[i].detach().double() - b).norm() / a.norm() < 0.08, (sigma, model.b[i], b)


@pytest.mark.parametrize("variance_reduction", [True, False])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_ssm_of_a_linear_model_has_its_closed_form_expectation(variance_reduction, projection):
    """For s = A x + b on N(m, C): E[v^T A v + 1/2 |A x + b|^2] = tr A + 1/2 (tr(A C A^T) + |A m + b|^2)."""
    torch.manual_seed(0)
    model = LinearScore().double()
    a, b = model.linear.weight.detach(), model.linear.bias.detach()
    expected = torch.trace(a) + 0.5 * (torch.trace(a @ COV @ a.T) + (a @ MEAN + b).square().sum())
    x = gaussian().sample(200_000, torch.Generator().manual_seed(4), dtype=torch.float64)
    loss = SlicedScoreMatchingLoss(variance_reduction=variance_reduction, projection=projection)
    value = loss(model, x, torch.Generator().manual_seed(5))
    assert value.item() == pytest.approx(expected.item(), abs=0.03 * (1 + abs(expected.item())))


def test_ssm_averages_to_the_exact_trace_of_the_jacobian_for_an_mlp():
    """Many projections of v^T J v average to tr J: SSM-VR -> E[tr grad s + 1/2 |s|^2] (Hyvarinen's objective)."""
    torch.manual_seed(0)
    model = ScoreMLP(hidden=16, depth=2).double()
    x = torch.randn(8, 2, dtype=torch.float64)
    jac = torch.func.vmap(torch.func.jacrev(lambda y: model(y[None])[0]))(x)
    exact = (jac.diagonal(dim1=-2, dim2=-1).sum(-1) + 0.5 * model(x).square().sum(-1)).mean()
    loss = SlicedScoreMatchingLoss(n_projections=20_000, projection="rademacher")
    value = loss(model, x, torch.Generator().manual_seed(6))
    assert value.item() == pytest.approx(exact.item(), abs=0.01 * (1 + abs(exact.item())))
    # and it is differentiable in the parameters (the trace term needs create_graph)
    value.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("sigma", [None, 1.0])
def test_ssm_vr_trains_a_linear_model_to_the_exact_score(sigma):
    loss = SlicedScoreMatchingLoss(n_projections=1, variance_reduction=True, sigma=sigma)
    assert_near_exact(train_linear(loss, sigma), sigma, tol=0.04)


def test_bad_loss_settings_raise():
    for sigma in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            DSMLoss(sigma)
    with pytest.raises(ValueError, match="sampling"):
        NCSMLoss(1.0, 20.0, sampling="uniform")
    with pytest.raises(ValueError, match="sigma_max must be > sigma_min"):
        NCSMLoss(5.0, 2.0)
    with pytest.raises(ValueError, match="n_projections"):
        SlicedScoreMatchingLoss(n_projections=0)
    with pytest.raises(ValueError, match="projection"):
        SlicedScoreMatchingLoss(projection="sphere")
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        DSMLoss(1.0)(LinearScore(sigma=1.0), torch.zeros(4, 3))
