"""Fast sampling of a sprites UNet with the update rules of :mod:`pipelines.samplers` (DPM-Solver++(2M), its SDE
variant, Karras' Heun with churn, Euler, ancestral Euler), on the Karras sigma schedule, the model's own
discrete sigmas or sigmas learned for the model (:mod:`pipelines.learned_steps`), from N(0, I) or the data prior
at T.

    x_T ~ prior at sigma_0;  x = x_T / alpha_0  (the VE form);  for each step: x = rule(D, x, step, memory, noise)

The loop is below; the rules, their papers and equations are in :mod:`pipelines.samplers`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from pipelines.common import (
    SavedFolderMixin,
    SpritesPipelineOutput,
    check_number,
    check_sampling_args,
    config_default,
    initial_noise,
    keep_after,
    pipeline_output,
    runs_own_steps,
)
from pipelines.fitted_solver import FittedSolver
from pipelines.labels import ClassConditioning, ClassNamesMixin, guidance
from pipelines.learned_steps import LEARNABLE, find_learned
from pipelines.prior import DataPriorMixin
from pipelines.samplers import RULES, Denoiser, solver_steps, steps_for_nfe, unet_calls
from pipelines.schedule import read_schedule, spaced_timesteps

SOLVERS = (*RULES, "ddim")  # DDIM with eta = 0 is Euler's rule in the sigma variables


class SpritesSolverPipeline(DataPriorMixin, ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """Sampling with a fast solver: ``sampler`` is one of :data:`SOLVERS`, the rules of ``pipelines.samplers``
    and "ddim" (DDIM with eta = 0 is Euler's rule in the sigma variables, Karras et al. 2022, section 3; here it
    runs on any of the sigma schedules, a learned one included)."""

    model_cpu_offload_seq = "unet"

    def __init__(self, unet, scheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        sampler: str = "dpmpp_2m_sde",
        nfe: int = 10,
        sigma_schedule: str = "karras",
        timestep_spacing: str | None = None,
        karras_range: str = "full",
        churn: float = 0.0,
        s_tmin: float = 0.0,
        s_tmax: float = math.inf,
        s_noise: float = 1.0,
        eta: float = 1.0,
        fitted: str | dict | None = None,
        learned_schedule: str | dict | None = None,
        prior: str = "standard",
        prior_rank: int = 16,
        class_labels: Any = None,
        guidance_scale: float = 1.0,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_intermediates: bool = False,
        intermediate_every: int = 1,
        return_dict: bool = True,
    ) -> SpritesPipelineOutput | tuple:
        """Sample ``batch_size`` sprites in at most ``nfe`` UNet evaluations.

        Args:
            batch_size: number of images.
            generator: a ``torch.Generator`` (or one per sample) for x_T and every noise draw.
            sampler: "dpmpp_2m", "dpmpp_2m_sde", "heun", "euler", "euler_ancestral" or "ddim" (eta 0).
            nfe: UNet evaluations (Heun takes (nfe + 1) // 2 steps; the others nfe steps). With classifier-free
                guidance one evaluation is one batched UNet call on both halves.
            sigma_schedule: "karras" (Karras et al. 2022, rho = 7), "discrete" (the model's sigmas at
                ``timestep_spacing`` integer timesteps) or "learned" (sigmas fitted to this model for ``sampler``,
                ``nfe`` and ``prior`` by ``python -m training.fit_steps``, read from the folder's
                ``schedules/{sampler}_nfe{N}_{prior}.json``; refused in one line when the folder has none).
            timestep_spacing: for "discrete" (and the "spaced" Karras range): "leading", "trailing" or
                "linspace"; None: the scheduler config's.
            karras_range: the Karras sigmas' range: "full" (the model's sigma(T-1) down to sigma(0), Karras et al.
                and diffusers' DPMSolverMultistepScheduler) or "spaced" (between the sigmas of the first and last
                ``timestep_spacing`` timestep, as diffusers' Euler and Heun schedulers with use_karras_sigmas).
            churn, s_tmin, s_tmax, s_noise: Karras' S_churn, S_tmin, S_tmax, S_noise (``sampler="heun"``).
            eta: noise scale of "euler_ancestral" and "dpmpp_2m_sde" (1: the SDE, 0: deterministic).
            fitted: a fitted solver (``pipelines.fitted_solver``: a JSON path - an existing file as given, else
                relative to the pipeline folder - or a dict) for ``sampler="dpmpp_2m"`` on Karras sigmas: its
                per-step weights replace DPM-Solver++(2M)'s; ``nfe`` must be the one it was fitted for, and
                ``prior`` should be the one it was fitted from (its file records it).
            learned_schedule: with ``sigma_schedule="learned"``, another learned schedule than the folder's (a JSON
                path, an existing file as given, else relative to the pipeline folder, or a dict); it must be for
                this sampler, NFE and prior.
            prior, prior_rank: x_T from N(0, I) ("standard") or the data prior (``pipelines.prior.PRIORS``).
            class_labels, guidance_scale: as in the DDPM and DDIM pipelines (conditional UNets).
            latents: x_T itself (the VP x at the first sigma), shape (batch_size, C, H, W); ``prior`` is not applied.
            output_type: "pil", "np" or "pt".
            return_intermediates: also return x_T and the VP x after every ``intermediate_every``-th step.
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
        """
        runs_own_steps(self, alternative=f"its own solvers (sampler={sampler!r})")
        _, alphas_cumprod = read_schedule(self.scheduler)
        T = len(alphas_cumprod)
        if sampler not in SOLVERS:
            raise ValueError(f"sampler must be one of {', '.join(SOLVERS)}, got {sampler!r}")
        steps = steps_for_nfe(sampler, int(check_number("nfe", nfe, 1, T, integer=True)))
        timestep_spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        shape = check_sampling_args(self.unet, batch_size, generator, latents, steps, T, timestep_spacing,
                                    output_type, intermediate_every)
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size, self.class_names)
        device, dtype = self._execution_device, self.unet.dtype

        def predict_noise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # the UNet's epsilon, guided
            eps = self.unet(cond.batch(x), t, class_labels=cond.labels).sample
            return guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)

        denoise = Denoiser(predict_noise, alphas_cumprod)
        plan = self._plan(denoise, sampler, steps, sigma_schedule, timestep_spacing, karras_range, fitted,
                          learned_schedule, prior, churn=churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise, eta=eta)
        scale = math.sqrt(1 + plan[0].sigma ** 2)  # 1 / alpha at the first sigma: VP x_T -> VE x
        x_T = self.make_prior(prior, 1 / scale**2, prior_rank) if latents is None else None
        x = initial_noise(shape, generator, latents, device, dtype, x_T) * scale
        kept = [x / scale] if return_intermediates else None
        rule, memory = RULES["euler" if sampler == "ddim" else sampler], {}
        noise = functools.partial(randn_tensor, shape, generator=generator, device=device, dtype=dtype)

        with cond.applied(self.unet):
            for i, step in enumerate(self.progress_bar(plan)):
                x = rule(denoise, x, step, memory, noise)
                if kept is not None and keep_after(i, len(plan), intermediate_every):
                    kept.append(x / math.sqrt(1 + step.sigma_next**2))
        assert denoise.calls == unet_calls(sampler, steps)  # the NFE the caller asked for (or one less for Heun)

        return pipeline_output(self, x, kept, output_type, return_dict)

    def _plan(self, denoise: Denoiser, sampler: str, steps: int, sigma_schedule: str, timestep_spacing: str,
              karras_range: str, fitted: str | dict | None, learned_schedule: str | dict | None, prior: str,
              **noise: float) -> list:
        """The solver's steps (:func:`pipelines.samplers.solver_steps`, which checks the schedule, range and noise
        settings): on Karras, discrete or learned sigmas, with a fitted solver's weights when one is given."""
        spaced = sigma_schedule == "discrete" or karras_range == "spaced"
        timesteps = spaced_timesteps(len(denoise.sigmas), steps, timestep_spacing) if spaced else None
        if fitted is not None:
            if sampler != "dpmpp_2m" or sigma_schedule != "karras" or karras_range != "full":
                raise ValueError("a fitted solver is a DPM-Solver++(2M) on the full Karras range: use "
                                 "sampler='dpmpp_2m', sigma_schedule='karras', karras_range='full' (got "
                                 f"{sampler!r}, {sigma_schedule!r}, {karras_range!r})")
            fitted = FittedSolver.load(self._fitted_path(fitted) if not isinstance(fitted, dict) else fitted)
        learned = None
        if sigma_schedule == "learned":
            if sampler not in LEARNABLE or fitted is not None:
                raise ValueError(f"learned schedules exist for {', '.join(LEARNABLE)} "
                                 f"without a fitted solver; got sampler={sampler!r}, fitted={fitted!r}")
            learned = find_learned(getattr(self.config, "_name_or_path", None), sampler, unet_calls(sampler, steps),
                                   prior, learned_schedule).sigmas()
        elif learned_schedule is not None:
            raise ValueError("learned_schedule is read with sigma_schedule='learned' only")
        plan = solver_steps(denoise, sampler, steps, sigma_schedule, timesteps, rho=fitted.rho if fitted else 7.0,
                            karras_range=karras_range, sigmas=learned, **noise)
        return fitted.apply(plan) if fitted else plan

    def _fitted_path(self, path: str) -> Path:
        """A fitted solver's file: as given if it exists, else relative to the folder the pipeline came from."""
        path = Path(path)
        folder = getattr(self.config, "_name_or_path", None)
        return path if path.is_file() or path.is_absolute() or not folder else Path(folder) / path
