"""SpritesDDIMPipeline: eq. 12 against DDIMScheduler.step and the stock DDIMPipeline; eta = 1 gives the DDPM
posterior variance; the timestep spacings are diffusers'."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler

from pipelines import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_ddpm import ddpm_steps
from pipelines.schedule import make_scheduler, read_schedule, spaced_timesteps

from .test_pipeline_ddpm import float64_schedule

T = 500


def _pipes(unet, clip: bool, spacing: str):
    """Ours and stock on the same scheduler config: both take clip_sample and timestep_spacing from it."""
    ours = SpritesDDIMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=clip, timestep_spacing=spacing))
    stock = DDIMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=clip, timestep_spacing=spacing))
    for pipe in (ours, stock):
        pipe.set_progress_bar_config(disable=True)
    return ours, stock


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_eta0_matches_stock_ddim_pipeline(unet, spacing):
    """Same initial noise, 10 steps, no clipping on either side: equal to 1e-5."""
    ours, stock = _pipes(unet, clip=False, spacing=spacing)
    a = ours(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, output_type="np").images
    b = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, output_type="np").images
    assert np.abs(a - b).max() < 1e-5


def test_eta0_with_clipping_matches_stock_ddim_pipeline(unet):
    """Clipping x_0 on both sides. Each step agrees to float32 rounding (see the one-step test); over the chain a
    random UNet amplifies those last-bit differences, so the bound is looser here."""
    ours, stock = _pipes(unet, clip=True, spacing="leading")
    a = ours(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, output_type="np").images
    b = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=10, output_type="np").images
    assert np.abs(a - b).max() < 5e-5


@pytest.mark.parametrize(("eta", "clip"), [(0.0, False), (0.0, True), (0.5, False), (1.0, True)])
def test_one_step_matches_ddim_scheduler_step(eta, clip):
    """Same model output, same noise, same (float64) schedule: our update equals DDIMScheduler.step."""
    stock = float64_schedule(DDIMScheduler.from_config(make_scheduler(clip_sample=clip).config))
    stock.set_timesteps(10)
    _, alphas_cumprod = read_schedule(stock)
    g = torch.Generator().manual_seed(3)
    x, eps, z = (torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64) for _ in range(3))
    eps = 1.5 * eps  # large enough that clipping x_0 bites
    for step in ddim_steps(alphas_cumprod, spaced_timesteps(T, 10, "leading"), eta):
        want = stock.step(eps, step.t, x, eta=eta, variance_noise=z if eta else None).prev_sample
        got = ddim_update(x, eps, step, z if step.sigma > 0 else None, clip_sample=clip)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [500, 50, 10])
def test_eta1_variance_is_the_ddpm_posterior_variance(n):
    betas, alphas_cumprod = read_schedule(make_scheduler())
    timesteps = spaced_timesteps(T, n)
    ddim = ddim_steps(alphas_cumprod, timesteps, eta=1.0)
    ddpm = ddpm_steps(betas, alphas_cumprod, timesteps, variance="posterior")
    np.testing.assert_allclose([s.sigma ** 2 for s in ddim], [s.sigma ** 2 for s in ddpm], rtol=1e-6, atol=1e-12)


def _stock_timesteps(spacing: str, n: int) -> list[list[int]]:
    out = []
    for cls in (DDIMScheduler, DDPMScheduler):
        stock = cls(num_train_timesteps=T, timestep_spacing=spacing)
        stock.set_timesteps(n)
        out.append(stock.timesteps.tolist())
    return out


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_every_step_count_gives_n_distinct_timesteps(spacing):
    """For every n in 1..T: exactly n distinct descending timesteps in [0, T-1]; trailing and linspace start at
    T-1; n = T is T-1, ..., 0 for every spacing."""
    for n in range(1, T + 1):
        steps = spaced_timesteps(T, n, spacing)
        assert len(steps) == n and len(set(steps)) == n, (spacing, n)
        assert steps == sorted(steps, reverse=True) and steps[-1] >= 0 and steps[0] <= T - 1, (spacing, n)
        if spacing != "leading":
            assert steps[0] == T - 1, (spacing, n)
    assert all(spaced_timesteps(T, T, s) == list(range(T - 1, -1, -1)) for s in ("leading", "trailing", "linspace"))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_timestep_spacing_is_diffusers_where_diffusers_is_right(spacing):
    """Equal to diffusers' set_timesteps (DDIM and DDPM schedulers) for every n, except diffusers' two faults:
    "trailing" with n + 1 entries ending in -1 (29 step counts at T = 500; ours keeps the first n), and
    "linspace" at n = 1 ([0]: ours is [T-1])."""
    faults = []
    for n in range(1, T + 1):
        ours = spaced_timesteps(T, n, spacing)
        for stock in _stock_timesteps(spacing, n):
            if stock == ours:
                continue
            if spacing == "trailing":
                assert len(stock) == n + 1 and stock[-1] == -1 and stock[:n] == ours, n
            else:
                assert (spacing, n, stock, ours) == ("linspace", 1, [0], [T - 1])
            faults.append(n)
    want = {"leading": [], "linspace": [1], "trailing": None}[spacing]
    if want is not None:
        assert sorted(set(faults)) == want
    else:
        assert len(set(faults)) == 29 and {61, 103, 121, 122, 201, 497, 499} <= set(faults)


def test_trailing_61_steps_samples(unet):
    """The step count that crashed DDIM ("math domain error") and made DDPM call the UNet at t = -1."""
    pipe = SpritesDDIMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing"))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=1, num_inference_steps=61, output_type="np", return_intermediates=True)
    assert len(out.intermediates) == 62 and np.isfinite(out.images).all()


def test_eta_checks(unet):
    pipe = SpritesDDIMPipeline(unet=unet, scheduler=make_scheduler())
    for eta in (-0.1, float("nan"), "0"):
        with pytest.raises(ValueError, match="eta must be a number >= 0"):
            pipe(eta=eta, num_inference_steps=2)
    with pytest.raises(ValueError, match="eta=3.0 is too large"):
        pipe(eta=3.0, num_inference_steps=2)


def test_reads_a_ddim_scheduler_too(unet):
    """A DDIMScheduler carries the same betas: the samples do not depend on the scheduler class."""
    kw = {"batch_size": 1, "num_inference_steps": 4, "output_type": "pt"}
    a = SpritesDDIMPipeline(unet=unet, scheduler=make_scheduler())(generator=torch.Generator().manual_seed(0), **kw)
    ddim = DDIMScheduler.from_config(make_scheduler().config)
    b = SpritesDDIMPipeline(unet=unet, scheduler=ddim)(generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(a.images, b.images)
