"""Fast samplers for the discrete T = 500 model, as update rules that share one signature (the k-diffusion way).

The state is x in the variance-exploding (sigma) form of the model: x = x_0 + sigma eps, with
sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t); the UNet sees x / sqrt(1 + sigma^2), which is the VP x_t. A
:class:`Denoiser` turns the UNet's epsilon into D(x; sigma) = x - sigma eps, the model's estimate of x_0.

Every rule is ``rule(denoise, x, step, memory, noise) -> x_next``: ``step`` holds sigma_i, sigma_{i+1} (0 at
the end), their timesteps and the step's options; ``memory`` is a dict the rule may keep things in between steps
(multistep methods keep the previous x_0 estimate); ``noise()`` draws z ~ N(0, I) of x's shape from the
pipeline's generator, in the order the rule asks for it.

* :func:`euler` - Karras et al. (2022), Algorithm 1 without its Heun correction (first order, deterministic).
* :func:`heun` - Karras et al. (2022), Algorithm 2: Heun's second-order step with stochastic churn (gamma_i);
  churn 0 is their Algorithm 1. 2 UNet calls a step, 1 on the last.
* :func:`euler_ancestral` - the ancestral Euler step (Song et al. 2021's reverse SDE discretised as in
  k-diffusion's ``sample_euler_ancestral``): down to sigma_down, then fresh noise of size sigma_up.
* :func:`dpmpp_2m` - DPM-Solver++(2M), Lu et al. (2022b), Algorithm 2 (multistep, second order, data prediction).
* :func:`dpmpp_2m_sde` - SDE-DPM-Solver++(2M), Lu et al. (2022b), eq. (18)-(19) of Appendix B (the midpoint form).

Schedules: :func:`karras_sigmas` (Karras et al. 2022, eq. 5, rho = 7) over the "full" range, the model's sigma at
T-1 down to its sigma at 0 (the paper's choice, and diffusers' DPMSolverMultistepScheduler's), or the "spaced"
range, between the sigmas of the first and last spaced timestep (diffusers' Euler and Heun schedulers with
``use_karras_sigmas``; at few steps it ends far above sigma(0)); "discrete", the model's own sigmas at spaced
integer timesteps; or "learned", sigmas fitted to the model (:mod:`pipelines.learned_steps`). Each ends in
sigma = 0.

The rules also run with the sigmas (and timesteps) of a step as 0-dim tensors: their scalar maths then goes
through torch, so a sample is differentiable in its sigmas (``training.fit_steps`` fits them that way); with
Python floats it is the plain float arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipelines.common import check_number

SIGMA_SCHEDULES = ("karras", "discrete", "learned")
KARRAS_RANGES = ("full", "spaced")


Scalar = float | torch.Tensor  # a Python float, or a 0-dim tensor to differentiate through


def _sqrt(v: Scalar) -> Scalar:
    return torch.sqrt(v) if isinstance(v, torch.Tensor) else math.sqrt(v)


def _exp(v: Scalar) -> Scalar:
    return torch.exp(v) if isinstance(v, torch.Tensor) else math.exp(v)


def _expm1(v: Scalar) -> Scalar:
    return torch.expm1(v) if isinstance(v, torch.Tensor) else math.expm1(v)


@dataclass(frozen=True)
class SolverStep:
    """One step from sigma to sigma_next (0 on the last step) with the UNet timesteps that go with them."""

    sigma: Scalar
    sigma_next: Scalar  # the Python float 0.0 on the last step
    t: Scalar
    t_next: Scalar | None
    gamma: float = 0.0  # Karras churn: sigma is raised to sigma (1 + gamma) before the step
    eta: float = 1.0  # ancestral / SDE noise scale
    s_noise: float = 1.0  # Karras S_noise
    coef: float | None = None  # dpmpp_2m: a fitted multistep weight c (D = (1 + c) x0_i - c x0_{i-1}); None: 1/(2r)


class Denoiser:
    """D(x; sigma) = x - sigma eps_theta(x / sqrt(1 + sigma^2), t(sigma)) for a UNet trained on discrete VP steps."""

    def __init__(self, predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 alphas_cumprod: np.ndarray):
        self.predict_noise = predict_noise
        self.sigmas = np.sqrt((1 - alphas_cumprod) / alphas_cumprod)  # increasing in t
        self.log_sigmas = np.log(self.sigmas)
        self.calls = 0

    def t_of(self, sigma: Scalar) -> Scalar:
        """The (fractional) timestep of ``sigma``: linear interpolation of t in log sigma, clamped to [0, T-1]
        (a 0-dim tensor ``sigma`` gives a tensor, differentiable in ``sigma``)."""
        if isinstance(sigma, torch.Tensor):
            table = torch.as_tensor(self.log_sigmas, dtype=sigma.dtype, device=sigma.device)
            s = torch.log(sigma.clamp_min(1e-10)).clamp(table[0], table[-1])
            i = torch.searchsorted(table, s.detach().reshape(1)).clamp(1, len(table) - 1)[0]
            return (i - 1) + (s - table[i - 1]) / (table[i] - table[i - 1])
        return float(np.interp(math.log(max(sigma, 1e-10)), self.log_sigmas, np.arange(len(self.sigmas))))

    def __call__(self, x: torch.Tensor, sigma: Scalar, t: Scalar | None = None) -> torch.Tensor:
        t = self.t_of(sigma) if t is None else t
        self.calls += 1
        if isinstance(t, torch.Tensor):
            timestep = t.to(device=x.device, dtype=torch.float32)
        else:
            timestep = torch.tensor(t, device=x.device, dtype=torch.float32 if t != int(t) else torch.int64)
        eps = self.predict_noise(x * (1 / _sqrt(1 + sigma**2)), timestep)
        return x - sigma * eps


NoiseFn = Callable[[], torch.Tensor]
Rule = Callable[[Denoiser, torch.Tensor, SolverStep, dict, NoiseFn], torch.Tensor]


# ------------------------------------------------------------------------------------------------- rules


def euler(denoise: Denoiser, x: torch.Tensor, step: SolverStep, memory: dict, noise: NoiseFn) -> torch.Tensor:
    """Euler step of the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma (Karras et al. 2022, eq. 3)."""
    d = (x - denoise(x, step.sigma, step.t)) / step.sigma
    return x + (step.sigma_next - step.sigma) * d


def heun(denoise: Denoiser, x: torch.Tensor, step: SolverStep, memory: dict, noise: NoiseFn) -> torch.Tensor:
    """Karras et al. (2022), Algorithm 2, lines 4-11: churn up to sigma_hat = (1 + gamma) sigma with fresh noise,
    an Euler step to sigma_next, and Heun's correction unless sigma_next = 0."""
    sigma, t = step.sigma, step.t
    if step.gamma > 0:
        sigma_hat = sigma * (1 + step.gamma)
        x = x + _sqrt(sigma_hat**2 - sigma**2) * step.s_noise * noise()
        sigma, t = sigma_hat, None  # off the grid: the denoiser interpolates its timestep
    d = (x - denoise(x, sigma, t)) / sigma
    x_next = x + (step.sigma_next - sigma) * d
    if step.sigma_next == 0:
        return x_next
    d_next = (x_next - denoise(x_next, step.sigma_next, step.t_next)) / step.sigma_next
    return x + (step.sigma_next - sigma) * (d + d_next) / 2


def euler_ancestral(denoise: Denoiser, x: torch.Tensor, step: SolverStep, memory: dict,
                    noise: NoiseFn) -> torch.Tensor:
    """Ancestral step: deterministic Euler down to sigma_down, then noise of standard deviation sigma_up, with
    sigma_up^2 = eta^2 sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2 and sigma_down^2 + sigma_up^2 = sigma_next^2
    (the DDPM posterior variance at eta = 1)."""
    s, s_next = step.sigma, step.sigma_next
    sigma_up = min(s_next, step.eta * math.sqrt(max(s_next**2 * (s**2 - s_next**2) / s**2, 0.0)))
    sigma_down = math.sqrt(s_next**2 - sigma_up**2)
    d = (x - denoise(x, s, step.t)) / s
    x = x + (sigma_down - s) * d
    z = noise()  # drawn on every step (as diffusers does), used when sigma_next > 0
    return x + sigma_up * z if s_next > 0 else x


def _lambda(sigma: Scalar) -> Scalar:
    """lambda = log(alpha / sigma_VP) = -log(sigma) in the VE form; +inf at sigma = 0."""
    if isinstance(sigma, torch.Tensor):
        return -torch.log(sigma)
    return math.inf if sigma == 0 else -math.log(sigma)


def dpmpp_2m(denoise: Denoiser, x: torch.Tensor, step: SolverStep, memory: dict, noise: NoiseFn) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2): x_next = (sigma_next / sigma) x - (e^{-h} - 1) D with
    h = lambda_next - lambda and D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, r = h_{i-1} / h; first order (D = x0_i)
    on the first step and on the last (to sigma = 0, where the update is x_next = x0_i). A fitted solver
    (:mod:`pipelines.fitted_solver`) gives each step its own weight ``step.coef`` = c in place of 1/(2r), the last
    step included (x_next = (1 + c) x0_i - c x0_{i-1} there)."""
    x0 = denoise(x, step.sigma, step.t)
    h = _lambda(step.sigma_next) - _lambda(step.sigma)
    previous = memory.get("x0"), memory.get("h")
    memory["x0"], memory["h"] = x0, h
    if previous[0] is None or (step.sigma_next == 0 and step.coef is None):
        d = x0
    else:
        c = 1 / (2 * previous[1] / h) if step.coef is None else step.coef
        d = (1 + c) * x0 - c * previous[0]
    if step.sigma_next == 0:
        return d
    return (step.sigma_next / step.sigma) * x - _expm1(-h) * d


def dpmpp_2m_sde(denoise: Denoiser, x: torch.Tensor, step: SolverStep, memory: dict,
                 noise: NoiseFn) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022b, Appendix B, midpoint form): x_next = (sigma_next / sigma) e^{-h} x
    + (1 - e^{-2h}) (x0_i + D1 / 2) + sigma_next sqrt(1 - e^{-2h}) z, D1 = (x0_i - x0_{i-1}) / r; first order on
    the first and the last step. ``eta`` scales h in the noise terms (1: the paper's SDE, 0: DPM-Solver++(2M))."""
    x0 = denoise(x, step.sigma, step.t)
    h = _lambda(step.sigma_next) - _lambda(step.sigma)
    previous = memory.get("x0"), memory.get("h")
    memory["x0"], memory["h"] = x0, h
    z = noise()  # drawn on every step (as diffusers does), used when sigma_next > 0
    if step.sigma_next == 0:
        return x0
    eh = step.eta * h
    d = x0 if previous[0] is None else x0 + (x0 - previous[0]) * (h / previous[1]) / 2
    decay = _exp(-eh)
    return ((step.sigma_next / step.sigma) * decay) * x - _expm1(-h - eh) * d + \
        (step.sigma_next * _sqrt(-_expm1(-2 * eh))) * z


RULES: dict[str, Rule] = {"euler": euler, "heun": heun, "euler_ancestral": euler_ancestral, "dpmpp_2m": dpmpp_2m,
                          "dpmpp_2m_sde": dpmpp_2m_sde}


def unet_calls(sampler: str, steps: int) -> int:
    """UNet evaluations (NFE) of ``steps`` steps: Heun evaluates twice per step but once on the last."""
    return 2 * steps - 1 if sampler == "heun" else steps


def steps_for_nfe(sampler: str, nfe: int) -> int:
    """The most steps whose NFE is at most ``nfe``."""
    return (nfe + 1) // 2 if sampler == "heun" else nfe


# --------------------------------------------------------------------------------------------- schedules


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> np.ndarray:
    """n sigmas from sigma_max down to sigma_min, evenly spaced in sigma^(1/rho) (Karras et al. 2022, eq. 5),
    then 0."""
    ramp = np.linspace(0, 1, n)
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return np.append((hi + ramp * (lo - hi)) ** rho, 0.0)


def solver_steps(denoise: Denoiser, sampler: str, steps: int, schedule: str = "karras",
                 timesteps: list[int] | None = None, churn: float = 0.0, s_tmin: float = 0.0,
                 s_tmax: float = math.inf, s_noise: float = 1.0, eta: float = 1.0,
                 rho: float = 7.0, karras_range: str = "full", sigmas: np.ndarray | None = None) -> list[SolverStep]:
    """The steps of a sampler: "karras" sigmas (timesteps interpolated in log sigma), the model's "discrete"
    sigmas at ``timesteps`` (descending integers, e.g. :func:`pipelines.schedule.spaced_timesteps`), or "learned":
    the given ``sigmas`` (``steps`` descending values then 0, :mod:`pipelines.learned_steps`). The Karras
    range is "full" (the model's sigma(T-1) to sigma(0)) or "spaced" (the sigmas of ``timesteps``' first and last
    entries). Karras churn: gamma_i = min(churn / steps, sqrt(2) - 1) where s_tmin <= sigma_i <= s_tmax
    (Algorithm 2). ``churn``, ``s_noise`` and ``eta`` must be finite numbers >= 0."""
    if karras_range not in KARRAS_RANGES:
        raise ValueError(f"karras_range must be one of {', '.join(KARRAS_RANGES)}, got {karras_range!r}")
    for name, value in (("churn", churn), ("s_noise", s_noise), ("eta", eta)):
        check_number(name, value, 0)
    if (schedule == "discrete" or (schedule == "karras" and karras_range == "spaced")) and \
            (timesteps is None or len(timesteps) != steps):
        raise ValueError(f"schedule={schedule!r}, karras_range={karras_range!r} needs {steps} timesteps, "
                         f"got {timesteps}")
    if schedule == "karras":
        lo, hi = (min(timesteps), max(timesteps)) if karras_range == "spaced" else (0, len(denoise.sigmas) - 1)
        return steps_from_sigmas(denoise, karras_sigmas(float(denoise.sigmas[lo]), float(denoise.sigmas[hi]), steps,
                                                        rho), None, churn, s_tmin, s_tmax, s_noise, eta)
    if schedule == "discrete":
        return steps_from_sigmas(denoise, np.append(denoise.sigmas[list(timesteps)], 0.0), timesteps, churn, s_tmin,
                                 s_tmax, s_noise, eta)
    if schedule == "learned":
        if sigmas is None or len(sigmas) != steps + 1:
            got = None if sigmas is None else len(sigmas)
            raise ValueError(f"schedule='learned' needs {steps + 1} sigmas, got {got}")
        return steps_from_sigmas(denoise, sigmas, None, churn, s_tmin, s_tmax, s_noise, eta)
    raise ValueError(f"sigma_schedule must be one of {', '.join(SIGMA_SCHEDULES)}, got {schedule!r}")


def steps_from_sigmas(denoise: Denoiser, sigmas: np.ndarray | torch.Tensor, timesteps: list[int] | None = None,
                      churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
                      eta: float = 1.0) -> list[SolverStep]:
    """One step per pair of ``sigmas`` (descending, ending in 0) at their timesteps (``timesteps``, else
    interpolated in log sigma). A 1-D tensor of sigmas gives steps whose sigmas and timesteps are 0-dim tensors
    (differentiable); the last ``sigma_next`` is the float 0.0 either way."""
    n = len(sigmas) - 1
    last = float(sigmas[n].detach()) if isinstance(sigmas, torch.Tensor) else float(sigmas[n])
    if last != 0:
        raise ValueError(f"a schedule ends in sigma = 0, got {last}")
    s = [sigmas[i] if isinstance(sigmas, torch.Tensor) else float(sigmas[i]) for i in range(n)] + [0.0]
    ts = [denoise.t_of(v) for v in s[:-1]] if timesteps is None else [float(t) for t in timesteps]
    gamma = min(churn / n, math.sqrt(2) - 1)
    return [SolverStep(s[i], s[i + 1], ts[i], ts[i + 1] if i + 1 < n else None,
                       gamma if s_tmin <= float(s[i].detach() if isinstance(s[i], torch.Tensor) else s[i]) <= s_tmax
                       else 0.0, eta, s_noise) for i in range(n)]
