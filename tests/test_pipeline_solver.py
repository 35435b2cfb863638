"""SpritesSolverPipeline and pipelines.samplers: each rule against diffusers' scheduler for the same method, from
the same x_T and the same noise, on the shipped model; the Karras schedule; NFE counts; input checks."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UNet2DModel,
)

from pipelines import SpritesSolverPipeline
from pipelines.samplers import (
    Denoiser,
    SolverStep,
    dpmpp_2m,
    karras_sigmas,
    solver_steps,
    steps_for_nfe,
    unet_calls,
)
from pipelines.schedule import make_scheduler

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"


@pytest.fixture(scope="module")
def shipped():
    unet = UNet2DModel.from_pretrained(SHIPPED / "unet").eval()
    pipe = SpritesSolverPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _latents(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(11))


@torch.no_grad()
def _stock(scheduler, unet, steps: int, latents: torch.Tensor, seed: int = 5, vp_start: bool = True) -> np.ndarray:
    """diffusers' own loop for a scheduler: scale the input, predict, step (noise from the same generator).

    ``vp_start``: x_T in the sigma form is the VP x_T times sqrt(1 + sigma_max^2), as ours; diffusers' Euler and
    Heun schedulers multiply by sigma_max alone (``init_noise_sigma`` for linspace/trailing spacing).
    """
    scheduler.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    start = scheduler.init_noise_sigma
    if vp_start and hasattr(scheduler, "sigmas") and start != 1.0:
        start = math.sqrt(1 + float(scheduler.sigmas.max()) ** 2)
    x = latents * start
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    for t in scheduler.timesteps:
        eps = unet(scheduler.scale_model_input(x, t), t).sample
        x = scheduler.step(eps, t, x, **({"generator": g} if takes_generator else {})).prev_sample
    return (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


@pytest.fixture
def float32_schedule(monkeypatch):
    """Our pipeline on diffusers' float32 numbers: its alpha_bar (a float32 cumulative product; ours is formed in
    float64 from the betas, which moves sigma by up to 2e-5 relative near t = 160 and the Karras samples by up to
    7e-5) and its Karras sigmas stored in float32."""
    import pipelines.pipeline_sprites_solver as solver
    import pipelines.samplers as samplers

    def read(scheduler):
        return scheduler.betas.double().numpy(), scheduler.alphas_cumprod.double().numpy()

    karras = samplers.karras_sigmas
    monkeypatch.setattr(solver, "read_schedule", read)
    monkeypatch.setattr(samplers, "karras_sigmas", lambda *a, **k: karras(*a, **k).astype(np.float32).astype(float))


def _ours(pipe, sampler: str, nfe: int, latents: torch.Tensor, seed: int = 5, **kw) -> np.ndarray:
    return pipe(batch_size=len(latents), latents=latents, generator=torch.Generator().manual_seed(seed),
                sampler=sampler, nfe=nfe, output_type="np", **kw).images


def _config(pipe) -> dict:
    return {"num_train_timesteps": 500, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}


@pytest.mark.parametrize("nfe", [5, 10])
def test_dpmpp_2m_equals_diffusers_dpm_solver(shipped, nfe):
    stock = DPMSolverMultistepScheduler(**_config(shipped), algorithm_type="dpmsolver++", solver_order=2,
                                        timestep_spacing="trailing")
    a = _ours(shipped, "dpmpp_2m", nfe, _latents(), sigma_schedule="discrete", timestep_spacing="trailing")
    b = _stock(stock, shipped.unet, nfe, _latents())
    assert np.abs(a - b).max() < 1e-5


@pytest.mark.parametrize("nfe", [5, 10])
def test_dpmpp_2m_sde_equals_diffusers_sde_dpm_solver(shipped, nfe):
    stock = DPMSolverMultistepScheduler(**_config(shipped), algorithm_type="sde-dpmsolver++", solver_order=2,
                                        timestep_spacing="trailing")
    a = _ours(shipped, "dpmpp_2m_sde", nfe, _latents(), sigma_schedule="discrete", timestep_spacing="trailing")
    b = _stock(stock, shipped.unet, nfe, _latents())
    assert np.abs(a - b).max() < 1e-5


def test_dpmpp_2m_karras_differs_from_diffusers_only_by_its_rounded_timesteps(shipped, float32_schedule):
    """With Karras sigmas diffusers rounds the UNet's timestep to an integer while keeping the Karras sigma; ours
    gives the UNet the timestep of that sigma (interpolated in log sigma), consistent with the sigma it
    denoises at (the difference reaches 6e-3 of the [0, 1] range). Given diffusers' rounded timesteps, ours is
    diffusers'."""
    steps = 8
    stock = DPMSolverMultistepScheduler(**_config(shipped), algorithm_type="dpmsolver++", use_karras_sigmas=True)
    b = _stock(stock, shipped.unet, steps, _latents())
    ours = _ours(shipped, "dpmpp_2m", steps, _latents(), sigma_schedule="karras")
    assert np.abs(ours - b).max() > 1e-3  # the rounding shows

    ab = shipped.scheduler.alphas_cumprod.double().numpy()
    denoise = Denoiser(lambda x, t: shipped.unet(x, t).sample, ab)
    plan = solver_steps(denoise, "dpmpp_2m", steps, "karras")
    rounded = [SolverStep(s.sigma, s.sigma_next, round(s.t), None if s.t_next is None else round(s.t_next))
               for s in plan]

    x, memory = _latents() * math.sqrt(1 + plan[0].sigma ** 2), {}
    with torch.no_grad():
        for step in rounded:
            x = dpmpp_2m(denoise, x, step, memory, None)
    a = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(a - b).max() < 1e-4  # float32 rounding through 8 UNet calls (3.8e-5 on the default model), 10x
    # below the rounded timesteps' own difference asserted above


@pytest.mark.parametrize("nfe", [5, 9])
def test_heun_without_churn_equals_diffusers_heun_on_karras_sigmas(shipped, nfe, float32_schedule):
    stock = HeunDiscreteScheduler(**_config(shipped), use_karras_sigmas=True)
    a = _ours(shipped, "heun", nfe, _latents(), sigma_schedule="karras")
    b = _stock(stock, shipped.unet, steps_for_nfe("heun", nfe), _latents())
    # float32 rounding through the UNet calls: 1.1e-5 to 2.3e-5 measured at nfe 5 on machines of this kind; a
    # wrong sigma or timestep moves the images by more than 1e-3 (the rounded-timestep test above)
    assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("sampler, nfe, steps", [("heun", 5, 3), ("heun", 9, 5), ("euler", 4, 4)])
def test_spaced_karras_range_equals_diffusers_trailing_heun_and_euler(shipped, sampler, nfe, steps,
                                                                      float32_schedule):
    """diffusers' Heun and Euler schedulers take their Karras range from the spaced timesteps: with "trailing" and
    3 steps it ends at sigma(166) = 0.88, not sigma(0) = 0.01. karras_range="spaced" is that range, and the
    same sampler; the full range is a different schedule (worse at few steps: docs/sampling.md)."""
    kind = HeunDiscreteScheduler if sampler == "heun" else EulerDiscreteScheduler
    stock = kind(**_config(shipped), use_karras_sigmas=True, timestep_spacing="trailing")
    b = _stock(stock, shipped.unet, steps, _latents())
    a = _ours(shipped, sampler, nfe, _latents(), sigma_schedule="karras", karras_range="spaced",
              timestep_spacing="trailing")
    assert np.abs(a - b).max() < 2e-5
    full = _ours(shipped, sampler, nfe, _latents(), sigma_schedule="karras", timestep_spacing="trailing")
    assert np.abs(full - b).max() > 1e-3


def test_spaced_karras_range_ends_at_the_last_spaced_timestep(shipped):
    ab = shipped.scheduler.alphas_cumprod.double().numpy()
    denoise = Denoiser(lambda x, t: x, ab)
    plan = solver_steps(denoise, "heun", 3, "karras", [499, 332, 166], karras_range="spaced")
    assert plan[0].sigma == pytest.approx(denoise.sigmas[499]) and plan[-1].sigma == pytest.approx(
        denoise.sigmas[166]) and plan[-1].sigma_next == 0
    assert plan[-1].t == pytest.approx(166, abs=1e-6) and plan[0].t == pytest.approx(499, abs=1e-6)
    full = solver_steps(denoise, "heun", 3, "karras")
    assert full[-1].sigma == pytest.approx(denoise.sigmas[0])
    with pytest.raises(ValueError, match="needs 3 timesteps"):
        solver_steps(denoise, "heun", 3, "karras", karras_range="spaced")
    with pytest.raises(ValueError, match="karras_range must be one of"):
        solver_steps(denoise, "heun", 3, "karras", karras_range="half")


def test_euler_equals_diffusers_euler_on_karras_sigmas(shipped, float32_schedule):
    stock = EulerDiscreteScheduler(**_config(shipped), use_karras_sigmas=True)
    a = _ours(shipped, "euler", 6, _latents(), sigma_schedule="karras")
    b = _stock(stock, shipped.unet, 6, _latents())
    assert np.abs(a - b).max() < 1e-5


def test_float64_schedule_differs_from_diffusers_float32_one_by_rounding_only(shipped):
    """Without the float32 alpha_bar, ours stays within 1e-4 of diffusers' Heun: the rounding of its schedule."""
    stock = HeunDiscreteScheduler(**_config(shipped), use_karras_sigmas=True)
    a = _ours(shipped, "heun", 9, _latents(), sigma_schedule="karras")
    b = _stock(stock, shipped.unet, 5, _latents())
    assert 1e-6 < np.abs(a - b).max() < 1e-4


def test_initial_sigma_is_the_vp_one_not_sigma_max(shipped, float32_schedule):
    """Deliberate difference: from x_T ~ N(0, I) (the VP prior every pipeline here shares) the sigma-form start is
    x_T sqrt(1 + sigma_max^2); diffusers' Euler scheduler starts at x_T sigma_max, 0.3% smaller at sigma_max =
    12.5, which moves the samples visibly."""
    stock = EulerDiscreteScheduler(**_config(shipped), use_karras_sigmas=True)
    a = _ours(shipped, "euler", 6, _latents(), sigma_schedule="karras")
    b = _stock(stock, shipped.unet, 6, _latents(), vp_start=False)
    assert np.abs(a - b).max() > 1e-3


def test_euler_ancestral_equals_diffusers_euler_ancestral(shipped):
    stock = EulerAncestralDiscreteScheduler(**_config(shipped), timestep_spacing="trailing")
    a = _ours(shipped, "euler_ancestral", 10, _latents(), sigma_schedule="discrete", timestep_spacing="trailing")
    b = _stock(stock, shipped.unet, 10, _latents())
    assert np.abs(a - b).max() < 1e-5


def test_churn_adds_noise_and_zero_churn_is_deterministic(shipped):
    a, b = (_ours(shipped, "heun", 9, _latents(), seed=s) for s in (1, 2))
    assert np.array_equal(a, b)  # Algorithm 1: the generator is not used after x_T
    c, d = (_ours(shipped, "heun", 9, _latents(), seed=s, churn=10.0) for s in (1, 2))
    assert not np.array_equal(c, d) and not np.array_equal(a, c)


def test_karras_sigmas_closed_form():
    s = karras_sigmas(0.01, 12.4, 5, rho=7.0)
    assert s[0] == pytest.approx(12.4) and s[4] == pytest.approx(0.01) and s[5] == 0
    roots = s[:5] ** (1 / 7)
    np.testing.assert_allclose(np.diff(roots), np.diff(roots)[0], rtol=1e-10)


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "dpmpp_2m_sde", "heun", "euler", "euler_ancestral"])
@pytest.mark.parametrize("nfe", [1, 4, 5, 10])
def test_unet_calls_are_the_nfe(unet, sampler, nfe):
    calls = []
    pipe = SpritesSolverPipeline(unet=unet, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    hook = pipe.unet.register_forward_hook(lambda *_: calls.append(1))
    try:
        pipe(batch_size=1, sampler=sampler, nfe=nfe, output_type="pt")
    finally:
        hook.remove()
    assert len(calls) == unet_calls(sampler, steps_for_nfe(sampler, nfe)) <= nfe


def test_input_checks(unet):
    pipe = SpritesSolverPipeline(unet=unet, scheduler=make_scheduler())
    with pytest.raises(ValueError, match="sampler must be one of"):
        pipe(sampler="rk4")
    with pytest.raises(ValueError, match="nfe must be an integer from 1 to 500"):
        pipe(nfe=0)
    with pytest.raises(ValueError, match="sigma_schedule must be one of"):
        pipe(sigma_schedule="cosine")
    with pytest.raises(ValueError, match="churn must be a finite number"):
        pipe(churn=-1.0)
    with pytest.raises(ValueError, match="karras_range must be one of"):
        pipe(karras_range="spacing")


def test_prior_moments_and_intermediates(shipped):
    """prior="moments" draws x_T from the data Gaussian at the first noise level: with the shipped model's data
    moments the sprites differ from N(0, I)'s from the same seed (the same z); with the moments of a standard
    Gaussian data set (mean 0, covariance I) the moments prior is N(0, I) itself and the sprites are the same."""
    import dataclasses

    from pipelines.prior import DataMoments

    def run(prior: str):
        return shipped(batch_size=2, nfe=4, sampler="dpmpp_2m", prior=prior, output_type="np",
                       return_intermediates=True, generator=torch.Generator().manual_seed(0))

    data = DataMoments.load(SHIPPED)
    standard = run("standard")
    try:
        shipped.set_data_moments(data)
        out = run("moments")
        assert out.images.shape == (2, 16, 16, 3) and out.intermediates.shape == (5, 2, 16, 16, 3)
        assert np.abs(out.images - standard.images).max() > 0.05  # the prior moved the sprites
        unit = dataclasses.replace(data, mean=torch.zeros_like(data.mean),
                                   cov=torch.eye(len(data.mean), dtype=data.cov.dtype))
        shipped.set_data_moments(unit)
        np.testing.assert_allclose(run("moments").images, standard.images, atol=1e-5, rtol=0)
    finally:
        shipped.set_data_moments(None)
