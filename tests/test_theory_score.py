"""docs/theory.md, items 6-9: the score-based results, checked numerically with score_toy's own code.

float64 throughout, fixed seeds, Monte Carlo tolerances of 5 standard errors.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from pipelines.schedule import make_scheduler, perturb_input, read_schedule
from score_toy import (
    GaussianMixture2D,
    NCSMLoss,
    ScoreMLP,
    SlicedScoreMatchingLoss,
    annealed_langevin_dynamics,
    deterministic_ascent,
    estimate_weights,
    geometric_sigmas,
    langevin_dynamics,
)
from training.loss import DiffusionLoss

EYE = [[1.0, 0.0], [0.0, 1.0]]


def mixture3() -> GaussianMixture2D:
    """A three-component mixture with correlated, unequal covariances."""
    return GaussianMixture2D([0.5, 0.3, 0.2], [[0.0, 0.0], [3.0, 1.0], [-2.0, 2.5]],
                             [[[1.0, 0.4], [0.4, 0.6]], [[0.3, -0.1], [-0.1, 0.8]], [[0.5, 0.0], [0.0, 0.5]]])


def song_ermon(weights=(0.8, 0.2)) -> GaussianMixture2D:
    return GaussianMixture2D(list(weights), [[5.0, 5.0], [-5.0, -5.0]], [EYE, EYE])


def autograd_score(log_density, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_density(x).sum(), x)
    return grad


def jacobian_trace(model, x: torch.Tensor) -> torch.Tensor:
    """tr grad_x s(x) per point, exactly: one backward pass per dimension (D = 2)."""
    x = x.detach().clone().requires_grad_(True)
    s = model(x)
    return sum(torch.autograd.grad(s[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(x.shape[1]))


# ------------------------------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("log_scale", [-40.0, 0.0, 3.7, 500.0])
def test_score_of_the_mixture_ignores_the_scale_of_the_density(log_scale):
    """c p(x) has the score of p for every constant c > 0: autograd of log p + log c is GaussianMixture2D.score."""
    p = mixture3()
    x = p.sample(500, torch.Generator().manual_seed(0), dtype=torch.float64)
    scaled = autograd_score(lambda y: p.log_prob(y) + log_scale, x)
    assert torch.allclose(scaled, p.score(x), atol=1e-10)
    assert torch.allclose(scaled, autograd_score(p.log_prob, x), atol=1e-12)


class Energy(nn.Module):
    """E_theta(x): a small MLP energy, p_theta(x) = exp(-E_theta(x)) / Z_theta."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 1)).double()

    def forward(self, x):
        return self.net(x)[:, 0] + 0.5 * x.square().sum(-1)  # the quadratic term makes exp(-E) integrable


def grid(n: int = 301, half_width: float = 7.0) -> tuple[torch.Tensor, float]:
    u = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], 1), float(u[1] - u[0]) ** 2


def test_log_normaliser_gradient_needs_samples_of_the_model():
    """grad_theta log Z_theta = -E_{p_theta}[grad_theta E_theta]: maximum likelihood needs Z (here by a 2D grid of
    90,601 points, impossible in the 768 dimensions of a sprite) or samples of the model itself."""
    energy = Energy()
    pts, area = grid()
    log_z = torch.logsumexp(-energy(pts), 0) + math.log(area)
    grads = torch.autograd.grad(log_z, list(energy.parameters()))
    weights = torch.softmax(-energy(pts), 0).detach()  # p_theta on the grid
    expect = torch.autograd.grad(-(weights * energy(pts)).sum(), list(energy.parameters()))
    for a, b in zip(grads, expect, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    assert max(float(g.abs().max()) for g in grads) > 1e-3  # so it does matter for learning


def test_energy_score_and_score_matching_ignore_the_normaliser():
    """Shifting E_theta by a constant changes log p_theta unless Z_theta is recomputed, but not the score
    -grad_x E_theta, and so not the score matching loss (sliced, same projections) either."""
    energy = Energy()
    x = mixture3().sample(256, torch.Generator().manual_seed(1), dtype=torch.float64)

    def shifted(y):
        return energy(y) + 12.5

    def score_of(e):
        def score(y, sigma=None):
            with torch.enable_grad():
                y = y if y.requires_grad else y.detach().requires_grad_(True)
                return -torch.autograd.grad(e(y).sum(), y, create_graph=True)[0]
        return score

    assert torch.allclose(score_of(energy)(x), score_of(shifted)(x), atol=1e-12)
    loss = SlicedScoreMatchingLoss(n_projections=4)
    a = loss(score_of(energy), x, torch.Generator().manual_seed(2))
    b = loss(score_of(shifted), x, torch.Generator().manual_seed(2))
    assert float(a.detach()) == pytest.approx(float(b.detach()), abs=1e-12)
    assert float((energy(x) - shifted(x)).detach().mean()) == pytest.approx(-12.5)


# ------------------------------------------------------------------------------------------------- item 7


def exact_objective(model, x) -> torch.Tensor:
    """Hyvarinen's J per point: tr grad_x s(x) + 1/2 ||s(x)||^2."""
    return jacobian_trace(model, x) + 0.5 * model(x).square().sum(-1)


@pytest.mark.parametrize("variance_reduction", [False, True])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_sliced_score_matching_estimates_the_exact_objective(variance_reduction, projection):
    """On fixed data, SlicedScoreMatchingLoss averaged over projections equals the exact objective
    E[tr grad s + 1/2 ||s||^2] (trace by autograd) within 5 standard errors over the projections."""
    torch.manual_seed(0)
    model = ScoreMLP(hidden=16, depth=2).double()
    x = mixture3().sample(256, torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = float(exact_objective(model, x).detach().mean())
    loss = SlicedScoreMatchingLoss(n_projections=8, variance_reduction=variance_reduction, projection=projection)
    values = torch.tensor([float(loss(model, x, torch.Generator().manual_seed(100 + r)).detach()) for r in range(60)])
    se = float(values.std()) / math.sqrt(len(values))
    assert abs(float(values.mean()) - exact) < 5 * se
    assert se < 0.05 * (1 + abs(exact))  # a real test: the estimate is tight


def test_score_matching_objective_is_the_fisher_divergence_up_to_a_constant():
    """Integration by parts: E_p[tr grad s + 1/2 ||s||^2] = 1/2 E_p||s - grad log p||^2 - 1/2 E_p||grad log p||^2.
    Per point the two sides differ by d(x) = tr grad s + s . grad log p, whose mean under p is 0 (checked to 5 s.e.),
    and at s = grad log p (the mixture's exact score) J is its minimum -1/2 E||grad log p||^2."""
    p = mixture3()
    torch.manual_seed(0)
    model = ScoreMLP(hidden=16, depth=2).double()
    x = p.sample(20_000, torch.Generator().manual_seed(4), dtype=torch.float64)
    d = (jacobian_trace(model, x) + (model(x) * p.score(x)).sum(-1)).detach()
    assert abs(float(d.mean())) < 5 * float(d.std()) / math.sqrt(len(d))
    exact = exact_objective(lambda y: p.score(y), x).detach()
    minimum = -0.5 * p.score(x).square().sum(-1)
    diff = exact - minimum
    assert abs(float(diff.mean())) < 5 * float(diff.std()) / math.sqrt(len(diff))


# ------------------------------------------------------------------------------------------------- item 8


def test_ddpm_noising_is_a_rescaled_variance_exploding_perturbation():
    """x_t / sqrt(alpha_bar_t) = x_0 + sigma_t eps with sigma_t^2 = (1 - alpha_bar_t) / alpha_bar_t, exactly for
    perturb_input and in law (Monte Carlo mean x_0, variance sigma_t^2). The course's schedule spans
    sigma_1 = 0.0100 to sigma_T = 12.5 (score_toy's NCSN uses 1 to 20)."""
    ab = torch.as_tensor(read_schedule(make_scheduler())[1])  # alpha_bar in float64
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for t in (0, 9, 99, 249, 499):
        sigma = ((1 - ab[t]) / ab[t]).sqrt()
        xt = perturb_input(x0, torch.full((6,), t), eps, ab)
        assert torch.allclose(xt / ab[t].sqrt(), x0 + sigma * eps, atol=1e-12)
        n = 100_000
        y = perturb_input(torch.full((n,), 0.4, dtype=torch.float64), torch.full((n,), t),
                          torch.randn(n, generator=g, dtype=torch.float64), ab) / ab[t].sqrt()
        assert abs(float(y.mean()) - 0.4) < 5 * float(sigma) / math.sqrt(n)
        assert abs(float(y.var() / sigma**2) - 1) < 5 * math.sqrt(2 / n)
    sig = ((1 - ab) / ab).sqrt()
    assert float(sig[0]) == pytest.approx(0.0100, abs=1e-4) and float(sig[-1]) == pytest.approx(12.5, abs=0.05)


def vp_marginal(p: GaussianMixture2D, ab: float) -> GaussianMixture2D:
    """The law of sqrt(ab) x_0 + sqrt(1 - ab) eps for x_0 ~ p: means scaled, covariances ab C_k + (1 - ab) I."""
    eye = torch.eye(2, dtype=torch.float64)
    return GaussianMixture2D(p.weights, math.sqrt(ab) * p.means, ab * p.covariances + (1 - ab) * eye)


@pytest.mark.parametrize("t", [49, 199, 499])
def test_vp_marginal_is_a_scaled_ve_marginal_and_eps_is_a_scaled_score(t):
    """With sigma^2 = (1 - ab) / ab: q_t(x) = p_sigma(x / sqrt(ab)) / ab (2D), so grad log q_t(x) =
    grad log p_sigma(x / sqrt(ab)) / sqrt(ab); and E[eps | x_t] = -sqrt(1 - ab) grad log q_t(x_t) (Tweedie), i.e.
    -sigma times the VE score: the residual has mean 0 and no correlation with x_t or the score (5 s.e.)."""
    p = mixture3()
    ab = float(read_schedule(make_scheduler())[1][t])
    sigma = math.sqrt((1 - ab) / ab)
    q, p_sigma = vp_marginal(p, ab), p.perturbed(sigma)
    x = q.sample(30_000, torch.Generator().manual_seed(t), dtype=torch.float64)
    assert torch.allclose(q.log_prob(x), p_sigma.log_prob(x / math.sqrt(ab)) - math.log(ab), atol=1e-10)
    assert torch.allclose(q.score(x), p_sigma.score(x / math.sqrt(ab)) / math.sqrt(ab), atol=1e-10)

    g = torch.Generator().manual_seed(1000 + t)
    x0 = p.sample(30_000, g, dtype=torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    xt = perturb_input(x0, torch.zeros(len(x0), dtype=torch.long), eps, torch.tensor([ab], dtype=torch.float64))
    score = q.score(xt)
    resid = eps + math.sqrt(1 - ab) * score
    n = len(resid)
    for f in (torch.ones_like(xt[:, :1]), xt, score):
        for i in range(2):
            for j in range(f.shape[1]):
                prod = resid[:, i] * f[:, j]
                assert abs(float(prod.mean())) < 5 * float(prod.std()) / math.sqrt(n)


def test_l_simple_at_step_t_is_ncsm_at_sigma_t():
    """DiffusionLoss with eps_theta(x_t) = -sigma_t s_theta(x_t / sqrt(ab_t), sigma_t) is 2 / D times score_toy's
    NCSM loss 1/2 ||sigma s_theta + z||^2 at sigma_t, for the same noise (here with the exact VE scores)."""
    p = mixture3()
    ab = torch.as_tensor(read_schedule(make_scheduler())[1])
    t = 199
    sigma = float(((1 - ab[t]) / ab[t]).sqrt())
    p_sigma = p.perturbed(sigma)

    def eps_from_score(xt, timestep, class_labels=None):  # called like a UNet: .sample is eps_theta
        return SimpleNamespace(sample=-sigma * p_sigma.score(xt / ab[timestep[0]].sqrt()))

    g = torch.Generator().manual_seed(0)
    x0 = p.sample(4000, g, dtype=torch.float64)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    l_simple = DiffusionLoss(ab)(eps_from_score, x0, torch.full((len(x0),), t), z)
    ncsm_terms = 0.5 * (sigma * p_sigma.score(x0 + sigma * z) + z).square().sum(-1)
    dims = x0.shape[1]
    assert float(l_simple) == pytest.approx(2 / dims * float(ncsm_terms.mean()), rel=1e-10)
    ncsm = NCSMLoss(sigma_min=sigma, sigma_max=sigma, sampling="geometric", n_levels=1)
    value = ncsm(lambda y, s: p_sigma.score(y), x0, torch.Generator().manual_seed(5))
    assert abs(float(value) - float(ncsm_terms.mean())) < 5 * float(ncsm_terms.std()) / math.sqrt(len(x0))


# ------------------------------------------------------------------------------------------------- item 9


def test_ascent_finds_the_mode_and_langevin_samples_around_it():
    """Deterministic ascent collapses every start onto the mode; Langevin dynamics with the same score keeps the
    spread of the distribution: its covariance is (P (I - eps P / 4))^{-1}, C up to the O(eps) step bias."""
    cov = torch.tensor([[1.0, 0.5], [0.5, 0.8]], dtype=torch.float64)
    p = GaussianMixture2D([1.0], [[1.0, -1.0]], cov[None])
    g = torch.Generator().manual_seed(0)
    starts = p.means[0] + 3 * torch.randn(4000, 2, generator=g, dtype=torch.float64)
    ascent = deterministic_ascent(p.score_fn, starts, step_size=0.1, n_steps=400)
    assert float((ascent - p.means[0]).abs().max()) < 1e-6
    eps = 0.05
    lan = langevin_dynamics(p.score_fn, starts, step_size=eps, n_steps=600, generator=g)
    prec = torch.linalg.inv(cov)
    expected = torch.linalg.inv(prec @ (torch.eye(2, dtype=torch.float64) - eps * prec / 4))
    got = torch.cov(lan.T)
    se = ((expected.square() + torch.outer(expected.diagonal(), expected.diagonal())) / len(lan)).sqrt()
    assert ((got - expected).abs() < 5 * se).all()
    assert abs(float(lan.mean(0)[0]) - 1.0) < 5 * math.sqrt(float(expected[0, 0]) / len(lan))


def test_score_is_blind_to_mode_weights_away_from_the_boundary():
    """Near the modes the score of 0.8 N_1 + 0.2 N_2 equals that of 0.2 N_1 + 0.8 N_2 to 1e-9: the weights enter
    only through responsibilities, which are 0 or 1 there. Perturbed at sigma = 20 the two scores differ."""
    a, b = song_ermon((0.8, 0.2)), song_ermon((0.2, 0.8))
    g = torch.Generator().manual_seed(0)
    near = torch.cat([a.means[k] + 3 * (2 * torch.rand(2000, 2, generator=g, dtype=torch.float64) - 1)
                      for k in range(2)])
    assert float((a.score(near) - b.score(near)).abs().max()) < 1e-9
    wide_a, wide_b = a.perturbed(20.0).score(near), b.perturbed(20.0).score(near)
    assert float((wide_a - wide_b).norm(dim=-1).mean()) > 0.3 * float(wide_a.norm(dim=-1).mean())


def test_langevin_keeps_its_basin_and_annealing_recovers_the_weights():
    """Song & Ermon's mixture 0.8 N((5, 5), I) + 0.2 N((-5, -5), I), every start in the light mode's basin. Plain
    Langevin (exact score, eps = 0.1, 1,000 steps) leaves all of them there; annealed Langevin from the same
    starts (10 levels from 20 to 1, 100 steps each) puts 0.8 of them in the heavy mode, within 4 s.e."""
    p = song_ermon()
    n = 400
    g = torch.Generator().manual_seed(0)
    starts = p.means[1] + torch.randn(n, 2, generator=g, dtype=torch.float64)
    lan = langevin_dynamics(p.score_fn, starts, step_size=0.1, n_steps=1000, generator=g)
    assert float(estimate_weights(p, lan)[0]) == 0.0
    ann = annealed_langevin_dynamics(p.score_fn, starts, sigmas=geometric_sigmas(20.0, 1.0, 10), step_size=0.1,
                                     n_steps_each=100, generator=g)
    w = float(estimate_weights(p, ann)[0])
    assert abs(w - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)
