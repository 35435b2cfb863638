"""docs/theory.md, item 10: a deterministic sampler carries the error of its prior at T to the data unchanged, a
stochastic one shrinks it. Checked with the project's own DDIM and DDPM updates on Gaussian data, where the
exact epsilon is known in closed form, and with the data prior of pipelines/prior.py."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.theory_prior import AB, M, S, T, kl_gauss, kl_to_data, measure, q_T, sample
from pipelines.prior import DataMoments, GaussianPrior

N = 200_000  # Monte Carlo samples, as experiments.theory_prior's default


def test_the_standard_prior_misses_q_xT():
    """alpha_bar_T = 0.0064: q(x_T) has mean 0.08 M, not 0 (Lin et al. 2024's non-zero terminal SNR)."""
    mean_T, var_T = q_T()
    assert AB[T - 1] == pytest.approx(0.0064, abs=2e-4)
    assert mean_T == pytest.approx(0.08 * M, rel=0.02) and kl_gauss(0.0, 1.0, mean_T, var_T) > 1e-3


def test_with_the_exact_prior_both_samplers_reach_the_data():
    for sampler in ("ddim", "ddpm"):
        assert kl_to_data(sample(sampler, True, N)) < 1e-4, sampler


def test_deterministic_ddim_passes_the_prior_error_on_and_ddpm_shrinks_it():
    """DDIM is (close to) a bijection: the KL at T reaches the data almost undiminished (the ODE keeps KL
    exactly). DDPM's reverse kernel is a contraction (data processing inequality, strictly for a noisy kernel):
    the same error shrinks by more than 20x."""
    kl_T = kl_gauss(0.0, 1.0, *q_T())
    kl_ddim, kl_ddpm = kl_to_data(sample("ddim", False, N)), kl_to_data(sample("ddpm", False, N))
    assert 0.7 * kl_T < kl_ddim < 1.3 * kl_T
    assert kl_ddpm < kl_T / 20
    # the mean error: DDIM moves it to the data almost as it was at T, scaled by S / sqrt(var_T)
    mean_T, var_T = q_T()
    x = sample("ddim", False, N)
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


@pytest.mark.slow
def test_the_committed_table_is_what_the_benchmark_measures():
    """docs/theory.md quotes docs/figures/theory/prior_check.md: the benchmark's rows at its recorded sample count."""
    import json
    from pathlib import Path

    from experiments.theory_prior import markdown

    root = Path(__file__).resolve().parents[1]
    recorded = json.loads((root / "docs/figures/theory/prior_check.json").read_text())
    assert (root / "docs/figures/theory/prior_check.md").read_text() == markdown(measure(recorded["samples"]))
