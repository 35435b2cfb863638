"""ES-DDPM, early-stopped DDPM (Lyu et al. 2022): start the reverse chain at T' < T from a noised cheap sample.

    x0' ~ prior  (a few-step DDIM sample of the same UNet, or a per-pixel Gaussian fitted to the data)
    x_{T'} = sqrt(alpha_bar_{T'}) x0' + sqrt(1 - alpha_bar_{T'}) z          (the one-shot q(x_{T'} | x0'))
    x_{T'} -> x_0 by Algorithm 2 of Ho et al. (2020), T' steps

The forward process forgets where it started, so q(x_{T'} | x0' ~ prior) is close to q(x_{T'} | x0 ~ data) once
T' is large enough, while the prior has already put the coarse structure in place; the chain then only has to
do the last T' of the T steps. The derivation and a benchmark are in docs/theory.md. The update and
the DDIM prior are the DDPM and DDIM pipelines' own (``ddpm_steps``/``ddpm_update``, ``SpritesDDIMPipeline``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from pipelines.common import (
    SavedFolderMixin,
    SpritesPipelineOutput,
    check_number,
    check_sampling_args,
    config_default,
    config_variance,
    pipeline_output,
    runs_own_steps,
)
from pipelines.labels import ClassConditioning, ClassNamesMixin, guidance
from pipelines.pipeline_sprites_ddim import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddpm import VARIANCES, ddpm_steps, ddpm_update
from pipelines.schedule import perturb_input, read_schedule

X0_PRIORS = ("ddim", "gaussian")  # where x0' comes from (not pipelines.prior.PRIORS, the x_T laws)


def gaussian_prior_from_images(images: Any) -> tuple[list, list]:
    """Per-pixel mean and standard deviation, as nested (C, H, W) lists in the model's [-1, 1] range, of images
    given as uint8 (N, H, W, C) or as floats (N, C, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images))
    if x.dtype == torch.uint8:
        x = x.double().div(127.5).sub(1).movedim(-1, 1)
    x = x.double()
    if x.ndim != 4 or len(x) < 2:
        raise ValueError(f"images: need at least 2 images of shape (C, H, W) or uint8 (H, W, C), got {tuple(x.shape)}")
    return x.mean(0).tolist(), x.std(0).tolist()


def _as_list(value: Any) -> list | None:
    return None if value is None else np.asarray(value, dtype=np.float64).tolist()


class SpritesESDDPMPipeline(ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """Early-stopped DDPM sampling of a sprites ``UNet2DModel``: a cheap prior sample, noised to T', then T'
    steps of Algorithm 2.

    ``prior_mean`` and ``prior_std`` (nested lists or arrays of shape (C, H, W), for example from
    :func:`gaussian_prior_from_images`) define the Gaussian prior; they are stored in the pipeline's config, so
    ``save_pretrained`` keeps them. The DDIM prior needs nothing but the UNet.
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet, scheduler, prior_mean: Any = None, prior_std: Any = None):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        if (prior_mean is None) != (prior_std is None):
            raise ValueError("prior_mean and prior_std go together: give both or neither")
        self.register_to_config(prior_mean=_as_list(prior_mean), prior_std=_as_list(prior_std))

    def prior_sample(self, prior: str, shape: tuple[int, ...], generator=None, prior_steps: int = 10,
                     prior_mean: Any = None, prior_std: Any = None, class_labels: Any = None,
                     guidance_scale: float = 1.0, device=None, dtype=None) -> torch.Tensor:
        """x0' of the chosen prior ("ddim" or "gaussian"), shape ``shape`` (B, C, H, W), in [-1, 1] (the DDIM
        sample is clipped, as its images are)."""
        device = self._execution_device if device is None else device
        dtype = self.unet.dtype if dtype is None else dtype
        if prior == "ddim":
            ddim = SpritesDDIMPipeline(unet=self.unet, scheduler=self.scheduler)
            ddim.set_class_names(self.class_names)
            ddim.set_progress_bar_config(disable=True)
            images = ddim(batch_size=shape[0], generator=generator, num_inference_steps=prior_steps,
                          class_labels=class_labels, guidance_scale=guidance_scale, output_type="pt").images
            return images.to(device=device, dtype=dtype).mul(2).sub(1)
        mean = prior_mean if prior_mean is not None else self.config.prior_mean
        std = prior_std if prior_std is not None else self.config.prior_std
        if mean is None or std is None:
            raise ValueError("prior='gaussian' needs prior_mean and prior_std (per-pixel, shape (C, H, W)): pass "
                             "them to the pipeline or to this call, e.g. from gaussian_prior_from_images(images)")
        mean, std = (torch.as_tensor(np.asarray(v, dtype=np.float64)).to(device=device, dtype=dtype)
                     for v in (mean, std))
        if mean.shape != shape[1:] or std.shape != shape[1:]:
            raise ValueError(f"prior_mean and prior_std must have shape {tuple(shape[1:])}, got {tuple(mean.shape)} "
                             f"and {tuple(std.shape)}")
        return mean + std * randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 1,
        t_prime: int = 100,
        prior: str = "ddim",
        prior_steps: int = 10,
        generator: torch.Generator | list[torch.Generator] | None = None,
        variance: str | None = None,
        clip_sample: bool | None = None,
        class_labels: Any = None,
        guidance_scale: float = 1.0,
        prior_mean: Any = None,
        prior_std: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> SpritesPipelineOutput | tuple:
        """Sample ``batch_size`` sprites with T' = ``t_prime`` reverse steps.

        Args:
            batch_size: number of images.
            t_prime: T', the step the reverse chain starts from, 1..T (the paper's 1-based t; diffusers'
                timestep T' - 1). The chain makes T' UNet calls.
            prior: "ddim" (a ``prior_steps``-step deterministic DDIM sample of the same UNet; ``prior_steps``
                more UNet calls) or "gaussian" (per-pixel Gaussian, see ``prior_mean``).
            prior_steps: DDIM steps of the "ddim" prior, 1..T.
            generator: a ``torch.Generator`` (or one per sample). Draws, in order: the prior, the noise of
                q(x_{T'} | x0'), then every z of the chain.
            variance: "beta" (sigma_t^2 = beta_t, Algorithm 2) or "posterior" (beta~_t); None: the scheduler
                config's ``variance_type``, as in the DDPM pipeline.
            clip_sample: clip the predicted x_0 to [-1, 1] at every DDPM step; None: the scheduler config's.
            class_labels, guidance_scale: as in the DDPM pipeline (conditional UNets), used by the prior too.
            prior_mean, prior_std: per-pixel Gaussian prior for this call (default: the pipeline's).
            output_type: "pil", "np" or "pt".
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
        """
        runs_own_steps(self, alternative="early-stopped Algorithm 2")
        betas, alphas_cumprod = read_schedule(self.scheduler)
        T = len(betas)
        check_number("t_prime", t_prime, 1, T, integer=True, high_name="num_train_timesteps")
        if prior not in X0_PRIORS:
            raise ValueError(f"prior must be one of {', '.join(X0_PRIORS)}, got {prior!r}")
        check_number("prior_steps", prior_steps, 1, T, integer=True, high_name="num_train_timesteps")
        variance = config_variance(self.scheduler, variance)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        if variance not in VARIANCES:
            raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
        shape = check_sampling_args(self.unet, batch_size, generator, None, int(t_prime), T, "leading", output_type, 1)
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, batch_size, self.class_names)
        device, dtype = self._execution_device, self.unet.dtype

        x0 = self.prior_sample(prior, shape, generator, int(prior_steps), prior_mean, prior_std, class_labels,
                               guidance_scale, device, dtype)
        start = torch.full((shape[0],), int(t_prime) - 1, device=device)
        noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        x = perturb_input(x0, start, noise, torch.as_tensor(alphas_cumprod))
        steps = ddpm_steps(betas, alphas_cumprod, list(range(int(t_prime) - 1, -1, -1)), variance)
        with cond.applied(self.unet):
            for step in self.progress_bar(steps):
                eps = self.unet(cond.batch(x), torch.tensor(step.t, device=device), class_labels=cond.labels).sample
                eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                z = randn_tensor(shape, generator=generator, device=device, dtype=dtype) if step.sigma > 0 else None
                x = ddpm_update(x, eps, step, z, clip_sample)

        return pipeline_output(self, x, None, output_type, return_dict)
