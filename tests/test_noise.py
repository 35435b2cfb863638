"""The linear schedule and the one-shot forward process q(x_t | x_0)."""

from __future__ import annotations

import pytest
import torch

from pipelines.schedule import make_scheduler, perturb_input


def test_linear_schedule_matches_closed_form():
    s = make_scheduler(500, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 500, dtype=torch.float64)
    assert torch.allclose(s.betas.double(), betas, atol=1e-9)
    assert torch.allclose(s.alphas.double(), 1 - betas, atol=1e-9)
    assert torch.allclose(s.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), rtol=1e-5)
    # alpha_bar_T is small enough that x_T is nearly pure noise: sqrt(alpha_bar_T) x_0 < 0.1 for |x_0| <= 1.
    assert s.alphas_cumprod[-1].sqrt() < 0.1


def test_perturb_input_equals_scheduler_add_noise():
    s = make_scheduler()
    x0 = torch.rand(8, 3, 16, 16) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 1, 10, 100, 250, 400, 498, 499])
    assert torch.allclose(perturb_input(x0, t, noise, s.alphas_cumprod), s.add_noise(x0, noise, t), atol=1e-6)


@pytest.mark.parametrize("t", [0, 9, 99, 499])
def test_one_shot_matches_iterated_steps_in_distribution(t):
    """Iterating x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) z t+1 times has the one-shot mean and variance."""
    s = make_scheduler()
    g = torch.Generator().manual_seed(t)
    n = 40_000
    x0 = torch.full((n,), 0.7, dtype=torch.float64)
    x = x0.clone()
    for k in range(t + 1):
        beta = s.betas[k].double()
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(n, generator=g, dtype=torch.float64)
    ab = s.alphas_cumprod[t].double()
    one_shot = perturb_input(x0, torch.full((n,), t), torch.randn(n, generator=g, dtype=torch.float64),
                             s.alphas_cumprod.double())
    mean, var = ab.sqrt() * 0.7, 1 - ab
    se_mean, se_var = (var / n).sqrt(), var * (2 / n) ** 0.5
    for sample in (x, one_shot):
        assert abs(sample.mean() - mean) < 5 * se_mean
        assert abs(sample.var() - var) < 5 * se_var


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="beta_start < beta_end"):
        make_scheduler(500, 0.02, 0.01)
