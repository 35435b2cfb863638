"""Inpainting with an unconditional (or class-conditional) diffusion model: RePaint (Lugmayr et al. 2022).

Algorithm 1 of the paper on the S-step grid tau_S > ... > tau_1 (tau_0: the image). Each step down from level k:

    known   = sqrt(alpha_bar_{k-1}) x_0 + sqrt(1 - alpha_bar_{k-1}) z'                   (the given sprite, noised)
    unknown = eq. 12 of DDIM from x_k with ``eta`` (1: the DDPM posterior variance the paper samples with)
    x_{k-1} = m * known + (1 - m) * unknown                                               (m = 1: keep)

and the resampling jumps go back up: on reaching a level that is a multiple of ``jump_length`` (below
S - jump_length), the chain is noised ``jump_length`` levels up by the forward process,
x_{k+1} = sqrt(alpha_bar_{k+1} / alpha_bar_k) x_k + sqrt(1 - alpha_bar_{k+1} / alpha_bar_k) z, and denoised
again, ``jump_n_sample - 1`` times at each such level (the paper's r; 1: no resampling, plain "replacement").
UNet calls: S + (jump_n_sample - 1) jump_length * (the number of jump levels). The kept pixels of the result are
the input's, pasted after the last step. Arguments and mask convention are diffusers' ``RePaintPipeline``'s
(``mask_image`` 1 keeps, 0 fills); ``prior`` and ``class_labels`` are the sampling pipelines'.
"""

from __future__ import annotations

import math
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
    runs_own_steps,
)
from pipelines.image_io import images_output, read_images, read_masks
from pipelines.labels import ClassConditioning, ClassNamesMixin, guidance
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.prior import DataPriorMixin
from pipelines.schedule import read_schedule, spaced_timesteps


def repaint_levels(num_inference_steps: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The levels the RePaint chain visits, from S down to 0 (level k is tau_k, level 0 the image): one level at a
    time, and ``jump_length`` levels back up from each jump level (0, L, 2L, ... below S - L) the first
    ``jump_n_sample - 1`` times it is reached (the schedule of the paper's code)."""
    S, L = num_inference_steps, jump_length
    jumps = {level: jump_n_sample - 1 for level in range(0, S - L, L)}
    levels, k = [S], S
    while k > 0:
        k -= 1
        levels.append(k)
        if jumps.get(k, 0) > 0:
            jumps[k] -= 1
            levels += list(range(k + 1, k + L + 1))
            k += L
    return levels


class SpritesInpaintPipeline(DataPriorMixin, ClassNamesMixin, SavedFolderMixin, DiffusionPipeline):
    """RePaint inpainting of sprites with a sprites ``UNet2DModel`` (Lugmayr et al. 2022, Algorithm 1)."""

    model_cpu_offload_seq = "unet"

    def __init__(self, unet, scheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(
        self,
        image: Any,
        mask_image: Any,
        num_inference_steps: int = 250,
        eta: float = 0.0,
        jump_length: int = 10,
        jump_n_sample: int = 10,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        prior: str = "standard",
        class_labels: Any = None,
        guidance_scale: float = 1.0,
        clip_sample: bool | None = None,
        timestep_spacing: str | None = None,
    ) -> SpritesPipelineOutput | tuple:
        """Fill the pixels of ``image`` where ``mask_image`` is 0; defaults are diffusers' ``RePaintPipeline``'s.

        Args:
            image: the sprites (PIL images, an array (N, H, W, C) or a tensor (N, C, H, W) in [0, 1]).
            mask_image: 1 keep, 0 fill: a grey PIL image, an array (H, W) / (N, H, W) / (N, H, W, 1), thresholded
                at 0.5; one for all images or one per image.
            num_inference_steps: S, the levels of the chain (1..T).
            eta: DDIM's eta for the filled part (0 deterministic, 1 the DDPM posterior variance, the paper's).
            jump_length: L, the levels of one resampling jump.
            jump_n_sample: r, how often each jump level is left downwards (1: no resampling).
            generator: for x_T and every z.
            output_type: "pil", "np" or "pt".
            return_dict: return a ``SpritesPipelineOutput`` (else a tuple).
            prior: x_T from "standard" N(0, I) or a data prior of :data:`pipelines.prior.PRIORS`.
            class_labels: for a conditional UNet (see ``pipelines.labels``); None: the null class.
            guidance_scale: classifier-free guidance w (1: plain conditional).
            clip_sample: clip the predicted x_0 to [-1, 1]; None: the scheduler config's.
            timestep_spacing: "leading", "trailing" or "linspace"; None: the scheduler config's.
        """
        runs_own_steps(self, alternative="RePaint on its own DDIM steps")
        _, alphas_cumprod = read_schedule(self.scheduler)
        T = len(alphas_cumprod)
        clip_sample = bool(config_default(self.scheduler, clip_sample, "clip_sample", False))
        spacing = config_default(self.scheduler, timestep_spacing, "timestep_spacing", "leading")
        image01 = read_images(image, self.unet, "image")
        n = len(image01)
        keep = read_masks(mask_image, n, self.unet)
        shape = check_sampling_args(self.unet, n, generator, None, num_inference_steps, T, spacing, output_type, 1)
        check_number("eta", eta, 0, text="a number >= 0 (0: deterministic DDIM, 1: DDPM-like)")
        check_number("jump_length", jump_length, 1, num_inference_steps, integer=True, high_name="num_inference_steps")
        check_number("jump_n_sample", jump_n_sample, 1, integer=True)
        cond = ClassConditioning(self.unet, class_labels, guidance_scale, n, self.class_names)

        device, dtype = self._execution_device, self.unet.dtype
        steps = ddim_steps(alphas_cumprod, spaced_timesteps(T, num_inference_steps, spacing), float(eta))
        alpha_bar = [1.0] + [s.alpha_bar for s in reversed(steps)]  # at levels 0..S
        x0 = image01.to(device=device, dtype=dtype) * 2 - 1
        mask = keep.to(device)
        x = initial_noise(shape, generator, None, device, dtype, self.make_prior(prior, steps[0].alpha_bar))
        levels = repaint_levels(num_inference_steps, jump_length, jump_n_sample)
        with cond.applied(self.unet):
            for k, k_next in self.progress_bar(list(zip(levels[:-1], levels[1:], strict=True))):
                if k_next > k:  # a resampling jump: one forward step of q
                    ratio = alpha_bar[k_next] / alpha_bar[k]
                    z = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
                    x = x.mul(math.sqrt(ratio)).add_(z, alpha=math.sqrt(1 - ratio))
                    continue
                step = steps[num_inference_steps - k]
                eps = self.unet(cond.batch(x), torch.tensor(step.t, device=device), class_labels=cond.labels).sample
                eps = guidance(eps, cond.scale) if cond.guided else eps  # eps_uncond + w (eps_cond - eps_uncond)
                z = randn_tensor(shape, generator=generator, device=device, dtype=dtype) if step.sigma > 0 else None
                unknown = ddim_update(x, eps, step, z, clip_sample)
                ab = alpha_bar[k_next]
                known = x0 if k_next == 0 else x0 * math.sqrt(ab) + randn_tensor(
                    shape, generator=generator, device=device, dtype=dtype) * math.sqrt(1 - ab)
                x = torch.where(mask, known, unknown)

        images = torch.where(keep, image01, (x / 2 + 0.5).clamp(0, 1).to(device="cpu", dtype=torch.float32))
        images = images_output(images, output_type, self.numpy_to_pil)
        self.maybe_free_model_hooks()
        return SpritesPipelineOutput(images=images) if return_dict else (images,)
