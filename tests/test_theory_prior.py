"""docs/theory.md, item 10: a deterministic sampler carries the error of its prior at T to the data unchanged, a
stochastic one shrinks it. Checked with the project's own DDIM and DDPM updates on Gaussian data, where the
exact epsilon is known in closed form, and with the data prior of pipelines/prior.py."""

from __future__ import annotations

import math

import pytest
import torch

from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_ddpm import ddpm_steps, ddpm_update
from pipelines.prior import DataMoments, GaussianPrior
from pipelines.schedule import make_scheduler, read_schedule, spaced_timesteps

T, M, S, N = 500, 0.6, 0.5, 200_000  # data N(M, S^2) per pixel, N Monte Carlo samples
BETAS, AB = read_schedule(make_scheduler())


def exact_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """E[eps | x_t] for data N(M, S^2): the perfect network."""
    a = AB[t]
    return (x - math.sqrt(a) * M) * math.sqrt(1 - a) / (a * S * S + 1 - a)


def kl_gauss(mu: float, var: float, mu0: float, var0: float) -> float:
    return 0.5 * (var / var0 + (mu - mu0) ** 2 / var0 - 1 + math.log(var0 / var))


def q_T() -> tuple[float, float]:
    a = AB[T - 1]
    return math.sqrt(a) * M, a * S * S + 1 - a


def sample(sampler: str, exact_prior: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(N, generator=g, dtype=torch.float64)
    mean_T, var_T = q_T()
    x = mean_T + math.sqrt(var_T) * z if exact_prior else z
    timesteps = spaced_timesteps(T, T, "trailing")
    steps = ddim_steps(AB, timesteps, 0.0) if sampler == "ddim" else ddpm_steps(BETAS, AB, timesteps, "beta")
    update = ddim_update if sampler == "ddim" else ddpm_update
    for step in steps:
        noise = torch.randn(N, generator=g, dtype=torch.float64) if step.sigma > 0 else None
        x = update(x, exact_eps(x, step.t), step, noise)
    return x


def kl_to_data(x: torch.Tensor) -> float:
    return kl_gauss(x.mean().item(), x.var().item(), M, S * S)


def test_the_standard_prior_misses_q_xT():
    """alpha_bar_T = 0.0064: q(x_T) has mean 0.08 M, not 0 (Lin et al. 2024's non-zero terminal SNR)."""
    mean_T, var_T = q_T()
    assert AB[T - 1] == pytest.approx(0.0064, abs=2e-4)
    assert mean_T == pytest.approx(0.08 * M, rel=0.02) and kl_gauss(0.0, 1.0, mean_T, var_T) > 1e-3


def test_with_the_exact_prior_both_samplers_reach_the_data():
    for sampler in ("ddim", "ddpm"):
        assert kl_to_data(sample(sampler, exact_prior=True)) < 1e-4, sampler


def test_deterministic_ddim_passes_the_prior_error_on_and_ddpm_shrinks_it():
    """DDIM is (close to) a bijection: the KL at T reaches the data almost undiminished (the ODE keeps KL
    exactly). DDPM's reverse kernel is a contraction (data processing inequality, strictly for a noisy kernel):
    the same error shrinks by more than 20x."""
    kl_T = kl_gauss(0.0, 1.0, *q_T())
    kl_ddim, kl_ddpm = kl_to_data(sample("ddim", False)), kl_to_data(sample("ddpm", False))
    assert 0.7 * kl_T < kl_ddim < 1.3 * kl_T
    assert kl_ddpm < kl_T / 20
    # the mean error: DDIM moves it to the data almost as it was at T, scaled by S / sqrt(var_T)
    mean_T, var_T = q_T()
    x = sample("ddim", False)
    assert M - x.mean().item() == pytest.approx(mean_T * S / math.sqrt(var_T), rel=0.1)


def test_moment_prior_is_q_xT_for_gaussian_data():
    """For Gaussian data, the moment-matched prior of pipelines/prior.py IS q(x_T): mean sqrt(ab) mu and
    covariance ab Sigma + (1 - ab) I, checked on a 3-pixel correlated Gaussian."""
    g = torch.Generator().manual_seed(1)
    L = torch.tensor([[0.5, 0, 0], [0.3, 0.4, 0], [-0.2, 0.1, 0.3]], dtype=torch.float64)
    mu = torch.tensor([0.6, -0.2, 0.9], dtype=torch.float64)
    data = (mu + torch.randn(100_000, 3, generator=g, dtype=torch.float64) @ L.T).view(-1, 3, 1, 1)
    moments = DataMoments.from_images(data)
    a = AB[T - 1]
    x_T = math.sqrt(a) * data + math.sqrt(1 - a) * torch.randn(data.shape, generator=g, dtype=torch.float64)
    for kind in ("moments", "moments-lowrank"):
        prior = GaussianPrior(kind, a, moments, rank=2)
        draws = prior(torch.randn(100_000, 3, 1, 1, generator=g, dtype=torch.float64)).flatten(1)
        torch.testing.assert_close(draws.mean(0), x_T.flatten(1).mean(0), atol=0.01, rtol=0)
        torch.testing.assert_close(torch.cov(draws.T), torch.cov(x_T.flatten(1).T), atol=0.01, rtol=0)
    diag = GaussianPrior("moments-diagonal", a, moments)(torch.randn(100_000, 3, 1, 1, generator=g,
                                                                      dtype=torch.float64)).flatten(1)
    torch.testing.assert_close(diag.var(0), x_T.flatten(1).var(0), atol=0.01, rtol=0)
    assert abs(torch.cov(diag.T)[0, 1]) < 0.01  # no correlations kept
