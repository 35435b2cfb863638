"""docs/theory.md, items 1-5: the diffusion results, checked numerically with the package's own code.

Paper indexing in the names and comments (t = 1..T); the code's 0-based index is t - 1 (pipelines/schedule.py).
Monte Carlo checks use float64, fixed seeds and tolerances of 5 standard errors.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.unets.unet_2d import UNet2DOutput
from diffusers.utils.torch_utils import randn_tensor
from scipy.special import log_ndtr, logsumexp

from experiments import es_ddpm
from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline, SpritesESDDPMPipeline
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_ddpm import ddpm_steps, ddpm_update
from pipelines.pipeline_sprites_es_ddpm import gaussian_prior_from_images
from pipelines.schedule import make_scheduler, perturb_input, read_schedule, spaced_timesteps
from training.config import load_config
from training.loss import DiffusionLoss
from training.model import build_unet

ROOT = Path(__file__).resolve().parents[1]
T = 500
LOG2 = math.log(2)


@pytest.fixture(scope="module")
def schedule():
    """(scheduler, betas, alphas_cumprod): the course's linear schedule, the schedule arrays in float64; the
    scheduler config holds the project's sampling settings (no clipping, sigma_t^2 = beta_t), which the
    pipelines take as their defaults."""
    s = make_scheduler(T, 1e-4, 0.02, variance_type="fixed_large", clip_sample=False)
    betas, ab = read_schedule(s)
    return s, betas, ab


def tiny_unet(seed: int = 0):
    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    torch.manual_seed(seed)
    return build_unet({**cfg.unet, "block_out_channels": [8, 16, 16]})


def stub_unet():
    """A tiny UNet whose forward is a cheap deterministic eps(x, t): for checks that only concern the sampler."""
    unet = tiny_unet()

    def forward(sample, timestep, class_labels=None, **kwargs):
        t = torch.as_tensor(timestep, dtype=sample.dtype)
        return UNet2DOutput(sample=0.3 * torch.tanh(sample) + 1e-3 * t * torch.sin(sample))

    unet.forward = forward
    return unet


def sprites_to_model(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 16, 16, 3) -> float64 (N, 3, 16, 16) on the 8-bit grid of [-1, 1]: x = u / 127.5 - 1."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).double().div(127.5).sub(1)


# ------------------------------------------------------------------------------------------------- item 1


def test_one_shot_moments_solve_the_iterated_recursion(schedule):
    """x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z: the mean factor m_t = sqrt(alpha_t) m_{t-1} and the noise
    variance v_t = alpha_t v_{t-1} + beta_t (m_0 = 1, v_0 = 0) are sqrt(alpha_bar_t) and 1 - alpha_bar_t at every t."""
    s, betas, ab = schedule
    m, v = 1.0, 0.0
    ms, vs = [], []
    for beta in betas:
        m, v = math.sqrt(1 - beta) * m, (1 - beta) * v + beta
        ms.append(m)
        vs.append(v)
    np.testing.assert_allclose(ms, np.sqrt(ab), rtol=1e-12)
    np.testing.assert_allclose(vs, 1 - ab, rtol=1e-12)
    np.testing.assert_allclose(s.alphas_cumprod.double().numpy(), ab, rtol=1e-5)  # the scheduler's float32 copy


@pytest.mark.parametrize("t", [1, 20, 500])
def test_one_shot_law_for_real_pixel_data(schedule, sprites_arrays, t):
    """Iterating the chain from real sprite pixels (a bounded, far from Gaussian x_0): the residual
    x_t - sqrt(alpha_bar_t) x_0 has mean 0, variance 1 - alpha_bar_t, kurtosis 3 (Gaussian) and no correlation
    with x_0, as the one-shot q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) says."""
    _, betas, ab = schedule
    g = torch.Generator().manual_seed(t)
    x0 = sprites_to_model(sprites_arrays[0]).flatten()
    x0 = x0[torch.randperm(len(x0), generator=g)[:60_000]]
    x = x0.clone()
    for k in range(t):
        x = math.sqrt(1 - betas[k]) * x + math.sqrt(betas[k]) * torch.randn(len(x), generator=g, dtype=torch.float64)
    n, var = len(x), 1 - ab[t - 1]
    r = x - math.sqrt(ab[t - 1]) * x0
    assert abs(r.mean()) < 5 * math.sqrt(var / n)
    assert abs(r.var() / var - 1) < 5 * math.sqrt(2 / n)
    assert abs((r - r.mean()).pow(4).mean() / r.var() ** 2 - 3) < 5 * math.sqrt(24 / n)
    assert abs(torch.corrcoef(torch.stack([r, x0]))[0, 1]) < 5 / math.sqrt(n)


# ------------------------------------------------------------------------------------------------- item 2


def posterior(ab: np.ndarray, betas: np.ndarray, t: int) -> tuple[float, float, float]:
    """(c0, ct, var) of q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var I), t >= 2 (docs/theory.md, eq. P)."""
    ab_t, ab_prev, beta = ab[t - 1], ab[t - 2], betas[t - 1]
    return (math.sqrt(ab_prev) * beta / (1 - ab_t), math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t),
            (1 - ab_prev) / (1 - ab_t) * beta)


def float64_scheduler(**kwargs):
    """make_scheduler with its schedule arrays replaced by float64 ones (diffusers keeps float32 copies, whose
    1 - alpha_bar loses about 1e-3 of its digits at t = 2): its formulas, without float32 round-off."""
    s = make_scheduler(T, 1e-4, 0.02, **kwargs)
    betas, ab = read_schedule(s)
    s.betas, s.alphas = torch.as_tensor(betas), torch.as_tensor(1 - betas)
    s.alphas_cumprod, s.one = torch.as_tensor(ab), torch.tensor(1.0, dtype=torch.float64)
    return s


def test_posterior_matches_ddpm_scheduler_and_our_update(schedule):
    """The closed-form posterior mean and variance equal DDPMScheduler's (its step with the x_0-consistent eps,
    "fixed_small" variance, arrays in float64) and our ddpm_update with the true noise (x_0 recovered exactly)."""
    _, betas, ab = schedule
    s = float64_scheduler(clip_sample=False)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    steps = {st.t: st for st in ddpm_steps(betas, ab, list(range(T - 1, -1, -1)), "posterior")}
    for t in (2, 3, 10, 100, 250, 499, 500):
        c0, ct, var = posterior(ab, betas, t)
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        xt = perturb_input(x0, torch.full((4,), t - 1), eps, torch.as_tensor(ab))
        mean = c0 * x0 + ct * xt
        assert float(s._get_variance(t - 1)) == pytest.approx(var, rel=1e-12)
        out = s.step(eps, t - 1, xt, generator=torch.Generator().manual_seed(t))
        z = randn_tensor(xt.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
        assert torch.allclose(out.pred_original_sample, x0, atol=1e-12)
        assert torch.allclose(out.prev_sample - math.sqrt(var) * z, mean, atol=1e-12)
        assert steps[t - 1].sigma ** 2 == pytest.approx(var, rel=1e-12)
        assert torch.allclose(ddpm_update(xt, eps, steps[t - 1]), mean, atol=1e-12)


@pytest.mark.parametrize("t", [2, 50, 500])
def test_posterior_by_monte_carlo_regression(schedule, t):
    """Draw x_0 ~ U[-1, 1], x_{t-1} ~ q(x_{t-1} | x_0) (one shot), x_t ~ q(x_t | x_{t-1}) (one step). The least
    squares fit of x_{t-1} on (x_t, x_0, 1) has the posterior's coefficients and residual variance."""
    _, betas, ab = schedule
    c0, ct, var = posterior(ab, betas, t)
    g = torch.Generator().manual_seed(t)
    n = 200_000
    x0 = torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1
    x_prev = perturb_input(x0, torch.full((n,), t - 2), torch.randn(n, generator=g, dtype=torch.float64),
                           torch.as_tensor(ab))
    beta = betas[t - 1]
    xt = math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * torch.randn(n, generator=g, dtype=torch.float64)
    X = torch.stack([xt, x0, torch.ones(n, dtype=torch.float64)], 1)
    coef = torch.linalg.lstsq(X, x_prev[:, None]).solution[:, 0]
    resid = x_prev - X @ coef
    s2 = resid.var()
    se = (s2 * torch.linalg.inv(X.T @ X).diagonal()).sqrt()
    for got, want, err in zip(coef.tolist(), (ct, c0, 0.0), se.tolist(), strict=True):
        assert abs(got - want) < 5 * err, (got, want, err)
    assert abs(s2 / var - 1) < 5 * math.sqrt(2 / n)


def _log_normal(x, m, v):
    return -0.5 * np.log(2 * np.pi * v) - 0.5 * (x - m) ** 2 / v


def reverse_kl_to_gaussian(ab_t: float, ab_prev: float, beta: float, data=(-1.0, 1.0), n: int = 121) -> float:
    """E_{x_t ~ q(x_t)} KL(q(x_{t-1} | x_t) || its moment-matched Gaussian) for data on two points (+-1), by
    quadrature. q(x_{t-1} | x_t) = sum_k q(x_0 = k | x_t) q(x_{t-1} | x_t, x_0 = k): a mixture of posteriors."""
    data = np.asarray(data)
    c0, ct, var = math.sqrt(ab_prev) * beta / (1 - ab_t), math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab_t), \
        (1 - ab_prev) / (1 - ab_t) * beta
    sd_t = math.sqrt(1 - ab_t)
    xt = np.linspace(-math.sqrt(ab_t) - 6 * sd_t, math.sqrt(ab_t) + 6 * sd_t, n)
    log_joint = _log_normal(xt[:, None], math.sqrt(ab_t) * data, 1 - ab_t)  # log q(x_t | x_0 = k)
    weight = np.exp(logsumexp(log_joint, axis=1))
    weight /= weight.sum()
    log_r = log_joint - logsumexp(log_joint, axis=1, keepdims=True)  # log q(x_0 = k | x_t)
    r = np.exp(log_r)
    mus = c0 * data[None, :] + ct * xt[:, None]
    m = (r * mus).sum(1)
    v = var + (r * (mus - m[:, None]) ** 2).sum(1)
    u = np.linspace(-10, 10, n)
    grid = m[:, None] + np.sqrt(v)[:, None] * u[None, :]
    log_p = logsumexp(log_r[:, None, :] + _log_normal(grid[:, :, None], mus[:, None, :], var), axis=2)
    log_g = _log_normal(grid, m[:, None], v[:, None])
    kl = (np.exp(log_p) * (log_p - log_g)).sum(1) * (u[1] - u[0]) * np.sqrt(v)
    return float((weight * kl).sum())


def test_reverse_conditional_is_nearly_gaussian_only_for_small_beta():
    """For data on two points (the least Gaussian data there is), the true reverse conditional q(x_{t-1} | x_t)
    is within 1e-5 nats of a Gaussian at every step of the course's schedule (beta_t <= 0.02), but 0.06 to 0.2
    nats away with a few large steps; halving a step divides the distance by about 8 (it goes like beta^3)."""
    betas, ab = read_schedule(make_scheduler(T, 1e-4, 0.02))
    small = [reverse_kl_to_gaussian(ab[k], ab[k - 1], betas[k]) for k in range(1, T, 7)]
    assert max(small) < 1e-5
    for steps, b0, b1, at_least in ((10, 0.01, 0.6, 0.03), (5, 0.1, 0.9, 0.1)):
        betas_l, ab_l = read_schedule(make_scheduler(steps, b0, b1))
        assert max(reverse_kl_to_gaussian(ab_l[k], ab_l[k - 1], betas_l[k]) for k in range(1, steps)) > at_least
    # One step from alpha_bar_prev = 0.5 with beta and beta / 2. The two posteriors are delta ~ sqrt(beta) standard
    # deviations apart, the mixture's skewness grows like delta^3 and the KL like its square: beta^3, a ratio near 8.
    kls = [reverse_kl_to_gaussian(0.5 * (1 - b), 0.5, b) for b in (0.02, 0.01)]
    assert 7 < kls[0] / kls[1] < 8.5


# ------------------------------------------------------------------------------------------------- item 3


def gaussian_kl(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) per element (variances broadcast)."""
    return 0.5 * (torch.log(torch.as_tensor(v2 / v1)) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def prior_term(x0: torch.Tensor, ab_T: float) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per image, in nats: no model, no parameters."""
    return gaussian_kl(math.sqrt(ab_T) * x0, 1 - ab_T, torch.zeros_like(x0), 1.0).flatten(1).sum(1)


def eps_of(unet, xt: torch.Tensor, t: int) -> torch.Tensor:
    with torch.no_grad():
        return unet(xt.to(unet.dtype), torch.tensor(t - 1)).sample.double()


def transition_term(unet, x0, t: int, noise, betas, ab, variance: str = "posterior") -> tuple[torch.Tensor, ...]:
    """L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) per image (t >= 2), with both means from
    ddpm_update (the true noise gives the posterior mean) and the model variance sigma_t^2 of ddpm_steps.
    Returns (L_{t-1}, ||eps - eps_theta||^2) per image."""
    step = ddpm_steps(betas, ab, [t - 1, t - 2], variance)[0]
    xt = perturb_input(x0, torch.full((len(x0),), t - 1), noise, torch.as_tensor(ab))
    eps = eps_of(unet, xt, t)
    _, _, post_var = posterior(ab, betas, t)
    kl = gaussian_kl(ddpm_update(xt, noise, step), post_var, ddpm_update(xt, eps, step), step.sigma ** 2)
    return kl.flatten(1).sum(1), (eps - noise).square().flatten(1).sum(1)


def decoder_log_prob(x0: torch.Tensor, mu: torch.Tensor, sd: float) -> torch.Tensor:
    """log P(bin of x_0) under N(mu, sd^2): bins of width 2/255 around the 256 levels of [-1, 1], the end bins
    open to -inf and +inf (Ho et al. 2020, eq. 13). Tails are taken on the side where they do not cancel."""
    hi = torch.where(x0 > 1 - 1e-6, torch.inf, (x0 + 1 / 255 - mu) / sd).numpy()
    lo = torch.where(x0 < -1 + 1e-6, -torch.inf, (x0 - 1 / 255 - mu) / sd).numpy()
    upper = lo > 0  # P = Phi(hi) - Phi(lo) = Phi(-lo) - Phi(-hi): use the lower tail
    a, b = np.where(upper, -hi, lo), np.where(upper, -lo, hi)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    return torch.as_tensor(log_b + np.log1p(-np.exp(np.minimum(log_a - log_b, 0.0))))


def decoder_term(unet, x0, noise, betas, ab) -> torch.Tensor:
    """L_0 = -log p_theta(x_0 | x_1) per image: the discretised Gaussian decoder with mean mu_theta(x_1, 1)
    (ddpm_update's last step, which is the x_0 prediction) and variance beta_1."""
    step = ddpm_steps(betas, ab, [0])[0]
    x1 = perturb_input(x0, torch.zeros(len(x0), dtype=torch.long), noise, torch.as_tensor(ab))
    mu = ddpm_update(x1, eps_of(unet, x1, 1), step)
    return -decoder_log_prob(x0, mu, math.sqrt(betas[0])).flatten(1).sum(1)


@pytest.fixture(scope="module")
def tiny_models(sprites_arrays, schedule):
    """(untrained, trained) tiny UNets: the same initial weights, then 40 Adam steps of DiffusionLoss."""
    s, _, _ = schedule
    untrained = tiny_unet().eval()
    trained = copy.deepcopy(untrained).train()
    x = sprites_to_model(sprites_arrays[0]).float()
    loss_fn = DiffusionLoss(s.alphas_cumprod)
    opt = torch.optim.Adam(trained.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        idx = torch.randint(0, len(x), (24,), generator=g)
        t, noise = torch.randint(0, T, (24,), generator=g), torch.randn(24, 3, 16, 16, generator=g)
        loss = loss_fn(trained, x[idx], t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return untrained.double(), trained.eval().double()


def bound_terms(unet, x0, betas, ab, n_t: int = 12, seed: int = 0) -> dict[str, float]:
    """Per-dimension terms of the bound in bits, averaged over the images: L_T, sum_{t=2}^T L_{t-1} (estimated
    as (T - 1) times the mean over ``n_t`` stratified t; same t and noise for every model) and L_0."""
    g = torch.Generator().manual_seed(seed)
    dims = x0[0].numel()
    ts = [2 + int((i + torch.rand(1, generator=g).item()) * (T - 1) / n_t) for i in range(n_t)]
    mid = torch.stack([transition_term(unet, x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64),
                                       betas, ab)[0] for t in ts]).mean()
    l0 = decoder_term(unet, x0, torch.randn(x0.shape, generator=g, dtype=torch.float64), betas, ab).mean()
    terms = {"L_T": prior_term(x0, ab[-1]).mean(), "L_mid": (T - 1) * mid, "L_0": l0}
    out = {k: float(v) / dims / LOG2 for k, v in terms.items()}
    out["total"] = sum(out.values())
    return out


def test_prior_term_has_no_parameters_and_is_near_zero(schedule, sprites_arrays):
    """L_T depends on x_0 and the schedule only. Its closed form equals a Monte Carlo estimate of
    E[log q(x_T | x_0) - log N(x_T; 0, I)], and it is below 0.005 bits per dimension on the sprites."""
    _, _, ab = schedule
    x0 = sprites_to_model(sprites_arrays[0][:64])
    closed = prior_term(x0, ab[-1])
    g = torch.Generator().manual_seed(0)
    xT = perturb_input(x0, torch.full((64,), T - 1), torch.randn(x0.shape, generator=g, dtype=torch.float64),
                       torch.as_tensor(ab))
    var = 1 - ab[-1]
    log_ratio = (-0.5 * math.log(var) - (xT - math.sqrt(ab[-1]) * x0) ** 2 / (2 * var) + xT ** 2 / 2).flatten(1).sum(1)
    assert abs(log_ratio.mean() - closed.mean()) < 5 * log_ratio.std() / math.sqrt(64)
    per_dim_bits = closed.mean() / x0[0].numel() / LOG2
    assert 0 < per_dim_bits < 0.005


@pytest.mark.parametrize("t", [2, 30, 250, 500])
def test_transition_term_is_the_weighted_epsilon_mse(schedule, sprites_arrays, tiny_models, t):
    """With sigma_t^2 = beta~_t, L_{t-1} = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) ||eps - eps_theta||^2,
    that is w_t D times the training loss (DiffusionLoss, a mean over the D = 768 dimensions). With
    sigma_t^2 = beta_t it is the same weighted MSE (with that sigma) plus a constant free of theta."""
    _, betas, ab = schedule
    untrained, trained = tiny_models
    x0 = sprites_to_model(sprites_arrays[0][:8])
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
    beta, alpha, ab_t = betas[t - 1], 1 - betas[t - 1], ab[t - 1]
    _, _, post_var = posterior(ab, betas, t)
    for unet in (untrained, trained):
        kl, sq = transition_term(unet, x0, t, noise, betas, ab, "posterior")
        w = beta ** 2 / (2 * post_var * alpha * (1 - ab_t))
        assert torch.allclose(kl, w * sq, rtol=1e-9)
        with torch.no_grad():
            loss = DiffusionLoss(torch.as_tensor(ab))(unet, x0, torch.full((8,), t - 1), noise)
        assert float(kl.mean()) == pytest.approx(w * x0[0].numel() * float(loss), rel=1e-6)
        kl_beta, _ = transition_term(unet, x0, t, noise, betas, ab, "beta")
        const = 0.5 * (math.log(beta / post_var) + post_var / beta - 1) * x0[0].numel()
        assert torch.allclose(kl_beta, beta / (2 * alpha * (1 - ab_t)) * sq + const, rtol=1e-9)


def test_weights_of_the_bound_against_l_simple(schedule):
    """docs/theory.md's three numbers for w_t = beta_t / (2 alpha_t (1 - alpha_bar_{t-1})) (sigma_t^2 = beta~_t),
    read from the page, against the weights of the package's schedule (read_schedule) at the page's precision;
    and the shape the page describes: falling to its minimum at the page's t, then rising."""
    _, betas, ab = schedule
    w = np.array([betas[t - 1] / (2 * (1 - betas[t - 1]) * (1 - ab[t - 2])) for t in range(2, T + 1)])
    text = " ".join((ROOT / "docs" / "theory.md").read_text().split())
    m = re.search(r"It is ([\d.]+) at \$t = 2\$, falls to ([\d.]+) at \$t = (\d+)\$ and ends at ([\d.]+) at \$t = T\$",
                  text)
    assert m, "docs/theory.md no longer states the bound's weights in the sentence this test reads"
    first, low, t_low, last = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    t_min = int(w.argmin()) + 2
    assert t_min == t_low and (np.diff(w[:t_min - 1]) < 0).all() and (np.diff(w[t_min - 2:]) > 0).all()
    for quoted, value in ((first, w[0]), (low, w.min()), (last, w[-1])):
        decimals = len(quoted.split(".")[1])
        assert f"{value:.{decimals}f}" == quoted, (quoted, value)

def test_decoder_is_a_distribution_over_the_256_levels(schedule):
    """The discretised decoder's bin probabilities sum to 1 over the 256 pixel levels, for any mean."""
    _, betas, _ = schedule
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    for mu in (-1.3, -1.0, -0.2, 0.0, 0.5, 0.999, 1.0, 1.3):
        p = decoder_log_prob(levels, torch.full_like(levels, mu), math.sqrt(betas[0])).exp()
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-9)


def test_bound_terms_for_the_tiny_model(schedule, sprites_arrays, tiny_models):
    """For the tiny model: L_T is the same for both models and near zero; L_0 is finite and positive; training
    lowered the bound (same images, t and noise for both models), mostly through sum L_{t-1}."""
    _, betas, ab = schedule
    x0 = sprites_to_model(sprites_arrays[0][::112][:16])
    untrained, trained = (bound_terms(m, x0, betas, ab) for m in tiny_models)
    assert untrained["L_T"] == trained["L_T"] < 0.005
    for terms in (untrained, trained):
        assert all(math.isfinite(v) for v in terms.values())
        assert terms["L_0"] > 0 and terms["L_mid"] > 0
        assert terms["L_T"] < 0.01 * terms["total"]
    assert trained["L_mid"] < 0.8 * untrained["L_mid"]
    assert trained["total"] < untrained["total"]


# ------------------------------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("n_steps,spacing", [(T, "leading"), (50, "leading"), (25, "trailing"), (7, "linspace")])
def test_ddim_eta_one_is_the_ddpm_posterior(schedule, n_steps, spacing):
    """Song et al. eq. 16 at eta = 1: sigma_t^2 = (1 - a_prev) / (1 - a_t) (1 - a_t / a_prev), the posterior
    variance of the (strided) DDPM chain, at every step; sigma scales with eta; the DDIM mean at eta = 1 equals
    the DDPM posterior mean; with all T steps it is DDPMScheduler's "fixed_small" variance."""
    s, betas, ab = schedule
    ts = spaced_timesteps(T, n_steps, spacing)
    ddim, ddpm = ddim_steps(ab, ts, 1.0), ddpm_steps(betas, ab, ts, "posterior")
    half = ddim_steps(ab, ts, 0.5)
    g = torch.Generator().manual_seed(0)
    for a, b, h in zip(ddim, ddpm, half, strict=True):
        assert a.sigma ** 2 == pytest.approx(b.sigma ** 2, rel=1e-12, abs=1e-300)
        assert h.sigma == pytest.approx(0.5 * a.sigma, rel=1e-12, abs=1e-300)
        x, eps = (torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64) for _ in range(2))
        assert torch.allclose(ddim_update(x, eps, a), ddpm_update(x, eps, b), atol=1e-12, rtol=1e-12)
    if n_steps == T:
        stock = float64_scheduler()
        np.testing.assert_allclose([a.sigma ** 2 for a in ddim[:-1]],
                                   [float(stock._get_variance(t)) for t in ts[:-1]], rtol=1e-12)


def test_ddim_eta_one_pipeline_equals_ddpm_posterior_pipeline(schedule):
    """The whole samplers agree: DDIM (eta = 1) and DDPM (posterior variance), same steps and seed, same images."""
    s, _, _ = schedule
    unet = stub_unet().double()  # the pipelines then run in float64: equal to round-off
    for n in (T, 20):
        kw = {"batch_size": 2, "num_inference_steps": n, "output_type": "pt"}
        a = SpritesDDIMPipeline(unet=unet, scheduler=s)(eta=1.0, generator=torch.Generator().manual_seed(1), **kw)
        b = SpritesDDPMPipeline(unet=unet, scheduler=s)(variance="posterior",
                                                         generator=torch.Generator().manual_seed(1), **kw)
        assert torch.allclose(a.images, b.images, atol=1e-10)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_family_keeps_the_one_shot_marginals(schedule, eta):
    """x_t ~ q(x_t | x_0), then one DDIM step with the true noise and any eta (a 10-step stride): x_prev has the
    one-shot law of q(x_prev | x_0), mean sqrt(alpha_bar_prev) x_0 and variance 1 - alpha_bar_prev."""
    _, _, ab = schedule
    step = ddim_steps(ab, [300, 290], eta)[0]
    g = torch.Generator().manual_seed(int(10 * eta))
    n, x0 = 100_000, 0.6
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    xt = perturb_input(torch.full((n,), x0, dtype=torch.float64), torch.full((n,), 300), eps, torch.as_tensor(ab))
    z = torch.randn(n, generator=g, dtype=torch.float64)
    x_prev = ddim_update(xt, eps, step, z if step.sigma > 0 else None)
    var = 1 - step.alpha_bar_prev
    assert abs(x_prev.mean() - math.sqrt(step.alpha_bar_prev) * x0) < 5 * math.sqrt(var / n)
    assert abs(x_prev.var() / var - 1) < 5 * math.sqrt(2 / n)


# ------------------------------------------------------------------------------------------------- item 5


class Counter:
    def __init__(self, unet):
        self.calls, inner = 0, unet.forward

        def forward(*a, **k):
            self.calls += 1
            return inner(*a, **k)

        unet.forward = forward


def _gaussian_stats(sprites_arrays):
    return gaussian_prior_from_images(sprites_arrays[0][:200])


def test_es_ddpm_runs_t_prime_steps(schedule, sprites_arrays):
    """T' UNet calls for the chain, plus prior_steps for the DDIM prior and none for the Gaussian one."""
    s, _, _ = schedule
    unet = stub_unet()
    counter = Counter(unet)
    mean, std = _gaussian_stats(sprites_arrays)
    pipe = SpritesESDDPMPipeline(unet=unet, scheduler=s, prior_mean=mean, prior_std=std)
    for prior, t_prime, k in (("gaussian", 1, 3), ("gaussian", 37, 3), ("ddim", 37, 4), ("ddim", T, 2)):
        counter.calls = 0
        pipe(batch_size=2, t_prime=t_prime, prior=prior, prior_steps=k, output_type="pt")
        assert counter.calls == t_prime + (k if prior == "ddim" else 0)


@pytest.mark.parametrize("prior", ["ddim", "gaussian"])
def test_es_ddpm_is_prior_then_one_shot_noise_then_ddpm(schedule, sprites_arrays, prior):
    """The pipeline equals the hand-made composition: a DDIM pipeline sample (or mean + std z), perturb_input to
    T', then ddpm_update from T' down to 1, drawing from one generator in that order."""
    s, betas, ab = schedule
    unet = stub_unet()
    mean, std = _gaussian_stats(sprites_arrays)
    t_prime, k, shape = 40, 5, (3, 3, 16, 16)
    got = SpritesESDDPMPipeline(unet=unet, scheduler=s, prior_mean=mean, prior_std=std)(
        batch_size=3, t_prime=t_prime, prior=prior, prior_steps=k, generator=torch.Generator().manual_seed(7),
        output_type="pt").images

    g = torch.Generator().manual_seed(7)
    if prior == "ddim":
        x0 = SpritesDDIMPipeline(unet=unet, scheduler=s)(batch_size=3, generator=g, num_inference_steps=k,
                                                         output_type="pt").images * 2 - 1
    else:
        x0 = torch.tensor(mean, dtype=torch.float32) + torch.tensor(std, dtype=torch.float32) * torch.randn(
            shape, generator=g)
    x = perturb_input(x0, torch.full((3,), t_prime - 1), torch.randn(shape, generator=g), torch.as_tensor(ab))
    for step in ddpm_steps(betas, ab, list(range(t_prime - 1, -1, -1))):
        eps = unet(x, torch.tensor(step.t)).sample
        x = ddpm_update(x, eps, step, torch.randn(shape, generator=g) if step.sigma > 0 else None)
    assert torch.allclose(got, (x / 2 + 0.5).clamp(0, 1), atol=1e-6)


def test_es_ddpm_refuses_bad_input(schedule, sprites_arrays):
    s, _, _ = schedule
    pipe = SpritesESDDPMPipeline(unet=stub_unet(), scheduler=s)
    for bad in (0, T + 1, 2.5, True):
        with pytest.raises(ValueError, match="t_prime must be an integer from 1 to"):
            pipe(t_prime=bad)
    with pytest.raises(ValueError, match="prior must be one of"):
        pipe(t_prime=5, prior="vae")
    with pytest.raises(ValueError, match="prior_steps"):
        pipe(t_prime=5, prior_steps=0)
    with pytest.raises(ValueError, match="needs prior_mean and prior_std"):
        pipe(t_prime=5, prior="gaussian")
    with pytest.raises(ValueError, match="shape"):
        pipe(t_prime=5, prior="gaussian", prior_mean=np.zeros((3, 8, 8)), prior_std=np.ones((3, 8, 8)))
    with pytest.raises(ValueError, match="go together"):
        SpritesESDDPMPipeline(unet=stub_unet(), scheduler=s, prior_mean=np.zeros((3, 16, 16)))


def test_es_ddpm_gaussian_prior_is_saved_with_the_pipeline(schedule, sprites_arrays, tmp_path):
    s, _, _ = schedule
    mean, std = _gaussian_stats(sprites_arrays)
    SpritesESDDPMPipeline(unet=tiny_unet(), scheduler=s, prior_mean=mean, prior_std=std).save_pretrained(tmp_path)
    loaded = SpritesESDDPMPipeline.from_pretrained(tmp_path)
    np.testing.assert_allclose(loaded.config.prior_mean, mean)
    np.testing.assert_allclose(loaded.config.prior_std, std)
    x = sprites_to_model(sprites_arrays[0][:200])
    assert np.allclose(mean, x.mean(0).numpy()) and np.allclose(std, x.std(0).numpy())


def test_noising_contracts_the_gap_between_prior_and_data():
    """The idea of ES-DDPM: KL(q_t^prior || q_t^data) between the laws of x_t started from a prior and from the
    data only falls with t (data processing). Two-point data (+-1) and the Gaussian fitted to it, N(0, 1), by
    quadrature, on the package's schedule: what docs/theory.md says of it (thousands of nats at T' = 1, a few nats
    by T' = 51, under a hundredth of a nat from T' = 201 on)."""
    betas, ab = read_schedule(make_scheduler(T, 1e-4, 0.02))
    x = np.linspace(-8, 8, 4001)

    def kl_at(a: float) -> float:
        log_prior = _log_normal(x, 0.0, 1.0)  # N(0, 1) noised: sqrt(a) N(0, 1) + N(0, 1 - a) is N(0, 1)
        log_data = logsumexp(np.stack([_log_normal(x, m * math.sqrt(a), 1 - a) for m in (-1, 1)]), axis=0) - LOG2
        return float((np.exp(log_prior) * (log_prior - log_data)).sum() * (x[1] - x[0]))

    t_values = [1, 11, 26, 51, 101, 151, 201, 301, 500]
    kls = [kl_at(ab[t - 1]) for t in t_values]
    assert (np.diff(kls) < 0).all()
    assert kls[0] > 1000 and 1 < kls[3] < 10 and max(kls[6:]) < 0.01
    text = " ".join((ROOT / "docs" / "theory.md").read_text().split())
    assert ("falls from thousands of nats at $T' = 1$ to a few nats by $T' = 51$ and under a hundredth of a nat "
            "from $T' = 201$ on") in text


def test_es_ddpm_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "es.json"
    assert es_ddpm.main(["--random_unet", str(ROOT / "configs" / "tiny.yaml"), "--t_prime", "2", "3", "--num_images",
                       "4", "--prior", "gaussian", "--no_ddpm", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| ES-DDPM gaussian T'=3 | 3 | 3 |" in table and "(floor)" in table
    rows = json.loads(out.read_text())["rows"]
    assert [r["unet_calls"] for r in rows] == [0, 0, 2, 3]
    assert all(math.isfinite(r["sprite_fid"]) for r in rows)
