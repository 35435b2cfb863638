"""Samplers: closed forms on a Gaussian, Langevin's stationary law, annealing schedule, Song & Ermon's weights."""

from __future__ import annotations

import inspect

import pytest
import torch

from score_toy import (
    GaussianMixture2D,
    annealed_langevin_dynamics,
    deterministic_ascent,
    estimate_weights,
    geometric_sigmas,
    langevin_dynamics,
)

THETA = torch.tensor(0.5, dtype=torch.float64)
ROT = torch.stack([torch.stack([THETA.cos(), -THETA.sin()]), torch.stack([THETA.sin(), THETA.cos()])])
COV = ROT @ torch.diag(torch.tensor([1.0, 0.25], dtype=torch.float64)) @ ROT.T
MEAN = torch.tensor([2.0, -1.0], dtype=torch.float64)
GAUSS = GaussianMixture2D([1.0], MEAN[None], COV[None])
PREC = torch.linalg.inv(COV)
SAMPLERS = {
    "deterministic_ascent": (deterministic_ascent, {"step_size": 0.1, "n_steps": 5}),
    "langevin_dynamics": (langevin_dynamics, {"step_size": 0.1, "n_steps": 5}),
    "annealed_langevin_dynamics": (annealed_langevin_dynamics, {"sigmas": [3.0, 2.0, 1.0], "step_size": 0.1,
                                                                "n_steps_each": 2}),
}


def test_deterministic_ascent_is_the_closed_form_contraction():
    """On N(m, C): x_n - m = (I - eps C^{-1})^n (x_0 - m), and the iterates converge to the mode."""
    x0 = torch.randn(16, 2, dtype=torch.float64) * 3
    eps, n = 0.1, 25
    x, path = deterministic_ascent(GAUSS.score_fn, x0, step_size=eps, n_steps=n, return_trajectory=True)
    step = torch.eye(2, dtype=torch.float64) - eps * PREC
    expected = MEAN + (x0 - MEAN) @ torch.linalg.matrix_power(step, n).T
    assert torch.allclose(x, expected, atol=1e-10)
    assert path.shape == (n + 1, 16, 2) and torch.equal(path[0], x0) and torch.equal(path[-1], x)
    far = deterministic_ascent(GAUSS.score_fn, x0, step_size=eps, n_steps=400)
    assert torch.allclose(far, MEAN.expand_as(far), atol=1e-8)


def test_langevin_with_the_exact_score_keeps_the_gaussian():
    """Started from N(m, C), Langevin with the exact score stays N(m, C) up to the known O(eps) bias of the
    unadjusted scheme: its stationary covariance is (P (I - eps P / 4))^{-1}, P = C^{-1}."""
    n, eps = 40_000, 0.05
    g = torch.Generator().manual_seed(0)
    x0 = GAUSS.sample(n, g, dtype=torch.float64)
    x = langevin_dynamics(GAUSS.score_fn, x0, step_size=eps, n_steps=300, generator=g)
    stationary = torch.linalg.inv(PREC @ (torch.eye(2, dtype=torch.float64) - eps * PREC / 4))
    se_mean = (COV.diagonal() / n).sqrt()
    assert ((x.mean(0) - MEAN).abs() < 5 * se_mean).all()
    cov = torch.cov(x.T)
    scale = stationary.diagonal().sqrt()
    assert ((cov - stationary) / torch.outer(scale, scale)).abs().max() < 0.03
    # the bias is real and visible: along the narrow axis the variance is inflated by 1 / (1 - eps * 4 / 4) = 1.053
    narrow = ROT[:, 1]
    assert narrow @ cov @ narrow == pytest.approx(0.25 / (1 - eps), rel=0.03)
    assert narrow @ cov @ narrow > 1.02 * 0.25


def test_annealed_langevin_uses_alpha_i_proportional_to_sigma_i_squared():
    """With a zero score, the end point minus the start is N(0, n_steps_each * sum_i alpha_i I),
    alpha_i = eps sigma_i^2 / sigma_L^2; each level is visited n_steps_each times, from the largest sigma down."""
    calls: list[float] = []

    def zero_score(x, sigma):
        calls.append(sigma)
        return torch.zeros_like(x)

    sigmas, eps, t = [4.0, 2.0, 1.0], 0.01, 3
    x0 = torch.zeros(100_000, 2, dtype=torch.float64)
    x, path = annealed_langevin_dynamics(zero_score, x0, sigmas=sigmas, step_size=eps, n_steps_each=t,
                                         generator=torch.Generator().manual_seed(0), return_trajectory=True)
    assert calls == [s for s in sigmas for _ in range(t)]
    assert path.shape == (len(sigmas) * t + 1, 100_000, 2)
    expected_var = t * sum(eps * s**2 / sigmas[-1] ** 2 for s in sigmas)
    assert x.var(0).numpy() == pytest.approx([expected_var] * 2, rel=0.02)


def test_song_ermon_langevin_gets_the_weights_wrong_and_annealed_langevin_recovers_them():
    """Song & Ermon (2019), Fig. 3, with exact scores: 0.8 N((5,5), I) + 0.2 N((-5,-5), I), uniform starts."""
    eye = [[1.0, 0.0], [0.0, 1.0]]
    mix = GaussianMixture2D([0.8, 0.2], [[5.0, 5.0], [-5.0, -5.0]], [eye, eye])
    g = torch.Generator().manual_seed(0)
    starts = 16 * torch.rand(2000, 2, generator=g) - 8
    lan = langevin_dynamics(mix.score_fn, starts, step_size=0.1, n_steps=500, generator=g)
    ann = annealed_langevin_dynamics(mix.score_fn, starts, sigmas=geometric_sigmas(20.0, 1.0, 10), step_size=0.1,
                                     n_steps_each=50, generator=g)
    w_lan, w_ann = estimate_weights(mix, lan)[0].item(), estimate_weights(mix, ann)[0].item()
    se = (0.8 * 0.2 / 2000) ** 0.5
    assert abs(w_lan - 0.5) < 0.04  # the uniform starts split evenly and no point crosses between modes
    assert abs(w_ann - 0.8) < 4 * se + 0.01


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_share_one_signature_and_are_reproducible(name):
    sampler, kwargs = SAMPLERS[name]
    params = list(inspect.signature(sampler).parameters.values())
    assert [p.name for p in params[:2]] == ["score_fn", "x"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])
    assert "return_trajectory" in {p.name for p in params}
    x0 = torch.randn(10, 2)
    before = x0.clone()
    a = sampler(GAUSS.score_fn, x0, **kwargs, **({} if name == "deterministic_ascent" else
                                                {"generator": torch.Generator().manual_seed(1)}))
    b = sampler(GAUSS.score_fn, x0, **kwargs, **({} if name == "deterministic_ascent" else
                                                {"generator": torch.Generator().manual_seed(1)}))
    assert torch.equal(a, b) and torch.equal(x0, before) and a.dtype == x0.dtype


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_refuse_bad_input(name):
    sampler, kwargs = SAMPLERS[name]
    with pytest.raises(ValueError, match="step_size"):
        sampler(GAUSS.score_fn, torch.zeros(4, 2), **{**kwargs, "step_size": 0.0})
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        sampler(GAUSS.score_fn, torch.zeros(4), **kwargs)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        sampler(lambda x, s: x[:, :1], torch.zeros(4, 2), **kwargs)
    steps_key = "n_steps_each" if "n_steps_each" in kwargs else "n_steps"
    with pytest.raises(ValueError, match=steps_key):
        sampler(GAUSS.score_fn, torch.zeros(4, 2), **{**kwargs, steps_key: -1})


def test_annealed_langevin_refuses_bad_sigmas():
    for sigmas, match in (([1.0, 2.0], "strictly decreasing"), ([2.0, 0.0], "sigmas"), ([], "at least one")):
        with pytest.raises(ValueError, match=match):
            annealed_langevin_dynamics(GAUSS.score_fn, torch.zeros(4, 2), sigmas=sigmas, step_size=0.1,
                                       n_steps_each=1)
