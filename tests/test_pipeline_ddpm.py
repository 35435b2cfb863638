"""SpritesDDPMPipeline: Algorithm 2 by hand, one update against DDPMScheduler.step, a short chain against the
stock DDPMPipeline."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDPMPipeline

from pipelines import SpritesDDPMPipeline
from pipelines.pipeline_sprites_ddpm import ddpm_steps, ddpm_update
from pipelines.schedule import make_scheduler, read_schedule, spaced_timesteps

T = 500


def float64_schedule(scheduler):
    """The same schedule in float64 (DDPM or DDIM scheduler): the stock schedulers' float32
    ``1 - alpha_bar_t / alpha_bar_{t-1}`` loses ~1e-3 of beta_t near t = 0, which would hide the comparison."""
    scheduler.betas = scheduler.betas.double()
    scheduler.alphas = 1 - scheduler.betas
    scheduler.alphas_cumprod = torch.cumprod(scheduler.alphas, 0)
    scheduler.one = scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


def _all_steps(variance: str, scheduler):
    betas, alphas_cumprod = read_schedule(scheduler)
    return {s.t: s for s in ddpm_steps(betas, alphas_cumprod, list(range(T - 1, -1, -1)), variance)}


def _randn(seed: int, n: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64) for _ in range(n)]


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_update_is_algorithm_2(variance):
    """x_{t-1} = 1/sqrt(alpha_t) (x_t - (1 - alpha_t)/sqrt(1 - alpha_bar_t) eps) + sigma_t z, z = 0 at the end."""
    scheduler = float64_schedule(make_scheduler())
    betas, alphas_cumprod = scheduler.betas, scheduler.alphas_cumprod
    steps = _all_steps(variance, scheduler)
    x, eps, z = _randn(1, 3)
    for t in (499, 250, 1, 0):
        alpha, alpha_bar, beta = 1 - betas[t], alphas_cumprod[t], betas[t]
        sigma2 = beta if variance == "beta" else (1 - (alphas_cumprod[t - 1] if t else 1)) / (1 - alpha_bar) * beta
        want = (x - (1 - alpha) / (1 - alpha_bar).sqrt() * eps) / alpha.sqrt() + (sigma2.sqrt() * z if t else 0)
        torch.testing.assert_close(ddpm_update(x, eps, steps[t], z if t else None), want, rtol=1e-12, atol=1e-12)
    assert steps[0].sigma == 0.0  # z = 0 at the last step


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize(("variance", "variance_type"), [("beta", "fixed_large"), ("posterior", "fixed_small")])
def test_one_update_matches_ddpm_scheduler_step(variance, variance_type, clip):
    """Same model output, same noise, same (float64) schedule: our update equals DDPMScheduler.step."""
    stock = float64_schedule(make_scheduler(variance_type=variance_type, clip_sample=clip))
    steps = _all_steps(variance, stock)
    x, eps = _randn(2)
    eps = 1.5 * eps  # large enough that clipping x_0 bites
    for t in (499, 300, 100, 1, 0):
        want = stock.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t), dtype=x.dtype) if t > 0 else None
        got = ddpm_update(x, eps, steps[t], z, clip_sample=clip)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10, msg=lambda m, t=t: f"t={t}: {m}")


def test_short_chain_matches_stock_ddpm_pipeline(unet):
    """10 strided steps, posterior variance, no clipping: the stock DDPMPipeline draws the same noise."""
    ours = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False))
    stock = DDPMPipeline(unet=unet, scheduler=make_scheduler(variance_type="fixed_small", clip_sample=False))
    for pipe in (ours, stock):
        pipe.set_progress_bar_config(disable=True)
    a = ours(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, variance="posterior",
             output_type="np").images
    b = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, output_type="np").images
    assert abs(a - b).max() < 1e-5


def test_strided_steps_use_the_alpha_of_the_stride():
    betas, alphas_cumprod = read_schedule(make_scheduler())
    timesteps = spaced_timesteps(T, 10, "leading")
    assert timesteps == list(range(450, -1, -50))
    for s, prev in zip(ddpm_steps(betas, alphas_cumprod, timesteps), timesteps[1:] + [-1], strict=True):
        ab_prev = alphas_cumprod[prev] if prev >= 0 else 1.0
        assert math.isclose(s.alpha, alphas_cumprod[s.t] / ab_prev, rel_tol=1e-6)
        assert math.isclose(s.alpha_bar_prev, ab_prev)


def test_all_steps_by_default_and_progress_bar_off(unet, capsys):
    calls = []
    pipe = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(num_train_timesteps=20))
    pipe.set_progress_bar_config(disable=True)
    handle = unet.register_forward_pre_hook(lambda m, args, kwargs: calls.append(int(args[1])), with_kwargs=True)
    try:
        pipe(batch_size=1, generator=torch.Generator().manual_seed(0), output_type="pt")
    finally:
        handle.remove()
    assert calls == list(range(19, -1, -1))
    assert capsys.readouterr().err == ""


def test_variance_option_is_checked(unet):
    pipe = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler())
    with pytest.raises(ValueError, match="variance must be 'beta'.*'posterior'"):
        pipe(variance="fixed_small", num_inference_steps=1)
