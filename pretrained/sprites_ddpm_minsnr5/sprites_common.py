# Written by spritediff's save_pretrained from its pipelines/common.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""What the sprites pipelines share: input checks, the initial noise and the output format.

The schedule and the timestep spacings are in :mod:`pipelines.schedule`, class labels and guidance in
:mod:`pipelines.labels`, the data prior at T in :mod:`pipelines.prior`.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from .sprites_schedule import TIMESTEP_SPACINGS, VARIANCE_TYPES

OUTPUT_TYPES = ("pil", "np", "pt")
STOCK_CLASS = "DDPMPipeline"  # what a saved folder's model_index.json names: diffusers loads it without our code
OWN_SCHEDULERS = ("DDPMScheduler", "DDIMScheduler")  # the schedulers whose schedule the written-out steps read


@dataclass
class SpritesPipelineOutput(BaseOutput):
    """Output of the sprites pipelines.

    Args:
        images: ``output_type`` "pil": a list of ``PIL.Image``; "np": float32 array (B, H, W, 3) in [0, 1];
            "pt": float tensor (B, 3, H, W) in [0, 1].
        intermediates: with ``return_intermediates=True``, x_T and the x_t after the steps (every
            ``intermediate_every``-th step and the last one), in the same format with a leading step axis:
            "pil": a list (steps) of lists of images; "np": (S, B, H, W, 3); "pt": (S, B, 3, H, W). Noisy x_t
            are mapped from [-1, 1] to [0, 1] and clipped like the images. ``None`` otherwise.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    intermediates: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor | None = None


# ------------------------------------------------------------------------------------------------- folders


def package_module(name: str):
    """spritediff's module ``pipelines.{name}`` (the writers a saved folder does not carry: the atomic writer, the
    pipelines' code, the hub check), or None in a copy of this module that diffusers loaded from a saved folder."""
    return importlib.import_module(f"pipelines.{name}") if __name__ == "pipelines.common" else None


class SavedFolderMixin:
    """How the sprites pipelines save and load a folder.

    ``model_index.json`` names diffusers' stock ``DDPMPipeline``, so stock diffusers (``DDPMPipeline``,
    ``DDIMPipeline``, ``DiffusionPipeline``) loads the folder without trusting any code; our classes load it with
    ``SpritesDDIMPipeline.from_pretrained(folder)``, or without this package through the code the folder carries
    (``custom_pipeline="pipeline_sprites_ddim"``, ``trust_remote_code=True``). With the package, ``save_pretrained``
    also writes the data moments, the class names and that code (:mod:`pipelines.saving`) and ``push_to_hub``
    first checks that the hub answers; a copy loaded without the package saves diffusers' files only.
    """

    def to_json_string(self) -> str:
        config = json.loads(super().to_json_string())
        config["_class_name"] = STOCK_CLASS
        return json.dumps(config, indent=2, sort_keys=True) + "\n"

    @classmethod
    def _dict_from_json_file(cls, json_file):
        config = super()._dict_from_json_file(json_file)
        if isinstance(config.get("_class_name"), list | tuple):  # a folder saved as [module, class]: read as ours
            config["_class_name"] = config["_class_name"][-1]
        return config

    def save_pretrained(self, save_directory, *args: Any, **kwargs: Any) -> Any:
        saving = package_module("saving")
        if saving is None:
            return super().save_pretrained(save_directory, *args, **kwargs)
        return saving.save_folder(self, super().save_pretrained, save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        hub = package_module("hub")
        if hub is not None:
            hub.check_hub(f"push_to_hub({repo_id!r})")
        return super().push_to_hub(repo_id, *args, **kwargs)


# ------------------------------------------------------------------------------------------------- checks


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                 integer: bool = False, high_name: str | None = None, text: str | None = None,
                 above: float | None = None) -> Any:
    """``value`` as it is when it is a number (an integer with ``integer``), not a bool, finite, and within
    ``low <= value <= high`` (None: no bound); else a one-line ``ValueError``: "``name`` must be ``text``, got
    ``value``". The default ``text`` says the kind and the range: "an integer >= 1", "an integer from 1 to 500"
    ("... to num_train_timesteps (500)" with ``high_name``), "a finite number >= 0"; ``above``: a strict lower
    bound instead ("a finite number > 0")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real) or \
            not (integer or math.isfinite(value)) or (low is not None and value < low) or \
            (high is not None and value > high) or (above is not None and not value > above):
        what = "an integer" if integer else "a finite number"
        top = f"{high_name} ({high})" if high_name else high
        bounds = f" from {low} to {top}" if low is not None and high is not None else \
            f" >= {low}" if low is not None else f" <= {top}" if high is not None else \
            f" > {above}" if above is not None else ""
        raise ValueError(f"{name} must be {text or what + bounds}, got {value!r}")
    return value


def keep_after(i: int, n: int, every: int) -> bool:
    """Whether ``return_intermediates`` keeps x after step ``i`` (from 0) of ``n``: every ``every``-th, and the
    last."""
    return (i + 1) % every == 0 or i + 1 == n


def check_sampling_args(unet, batch_size: int, generator, latents: torch.Tensor | None, num_inference_steps: int,
                        num_train_timesteps: int, timestep_spacing: str, output_type: str,
                        intermediate_every: int) -> tuple[int, ...]:
    """The checks both pipelines make before sampling; return the shape of x_T."""
    check_number("batch_size", batch_size, 1, integer=True)
    size = unet.config.sample_size
    shape = (int(batch_size), unet.config.in_channels, *((size, size) if isinstance(size, int) else size))
    if isinstance(generator, list) and len(generator) != batch_size:
        raise ValueError(f"generator: a list of {len(generator)} generators for batch_size {batch_size}; give one "
                         "generator, or one per sample")
    if latents is not None:
        if not isinstance(latents, torch.Tensor):
            raise ValueError(f"latents must be a torch.Tensor of shape {shape}, got {type(latents).__name__}")
        if tuple(latents.shape) != shape:
            raise ValueError(f"latents has shape {tuple(latents.shape)}, expected {shape} (batch_size, channels, "
                             "height, width); pass batch_size equal to latents.shape[0]")
    check_number("num_inference_steps", num_inference_steps, 1, num_train_timesteps, integer=True,
                 high_name="num_train_timesteps")
    if timestep_spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}; got {timestep_spacing!r}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}; got {output_type!r}")
    check_number("intermediate_every", intermediate_every, 1, integer=True)
    return shape


def initial_noise(shape: tuple[int, ...], generator, latents: torch.Tensor | None, device, dtype,
                  prior=None) -> torch.Tensor:
    """x_T: the given ``latents`` as they are, or ``prior(z)`` for z ~ N(0, I) from ``generator`` (diffusers'
    ``randn_tensor``; no ``prior``: z itself). The same generator gives the same z whatever the prior."""
    if latents is not None:
        return latents.to(device=device, dtype=dtype)
    z = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    return z if prior is None else prior(z)


def config_default(scheduler, value: Any, key: str, fallback: Any) -> Any:
    """``value`` if given, else the scheduler config's ``key`` (else ``fallback``): how the pipelines take their
    sampling defaults from the folder, as diffusers' pipelines do through their scheduler."""
    return scheduler.config.get(key, fallback) if value is None else value


def config_variance(scheduler, variance: str | None) -> str:
    """The DDPM ``variance`` ("beta" or "posterior"): ``variance`` if given, else the scheduler config's
    ``variance_type`` in our names ("fixed_large" is "beta", "fixed_small" is "posterior", diffusers' default)."""
    if variance is not None:
        return variance
    variance_type = scheduler.config.get("variance_type", "fixed_small")
    return VARIANCE_TYPES.get(variance_type, variance_type)


def runs_own_steps(pipe, alternative: str | None = None) -> bool:
    """True when ``pipe.scheduler`` is one of ``pipe.own_schedulers`` (default: DDPMScheduler and DDIMScheduler),
    whose schedule the pipeline's written-out steps read. Another scheduler (``pipe.scheduler =
    X.from_config(pipe.scheduler.config)``): False, or with ``alternative`` (a pipeline that runs its own method
    only) a one-line ``ValueError`` naming the pipelines that sample with it."""
    own = getattr(pipe, "own_schedulers", OWN_SCHEDULERS)
    name = type(pipe.scheduler).__name__
    if name in own:
        return True
    if alternative is not None:
        raise ValueError(f"{type(pipe).__name__} runs {alternative} and reads only a {' or '.join(own)}'s "
                         f"schedule, not a {name}; SpritesDDPMPipeline or SpritesDDIMPipeline sample with {name} "
                         "(assign it to their .scheduler)")
    return False


def refuse_own_settings(pipe, **settings: Any) -> None:
    """A one-line ``ValueError`` for a setting of the written-out steps given while another scheduler samples."""
    given = [k for k, v in settings.items() if v is not None]
    if given:
        name = type(pipe.scheduler).__name__
        raise ValueError(f"{given[0]} is a setting of {type(pipe).__name__}'s own steps, not of {name}; set the "
                         f"scheduler's own options instead: pipe.scheduler = {name}.from_config(pipe.scheduler.config, "
                         "...)")


# ------------------------------------------------------------------------------------------------- output


def pipeline_output(pipe, x: torch.Tensor, kept: list[torch.Tensor] | None, output_type: str,
                    return_dict: bool) -> SpritesPipelineOutput | tuple:
    """A pipeline's result: x_0 (and the kept x_t, if any) in ``output_type``, the model hooks freed."""
    images = to_output(x, output_type, pipe.numpy_to_pil)
    intermediates = to_output(torch.stack(kept), output_type, pipe.numpy_to_pil) if kept is not None else None
    pipe.maybe_free_model_hooks()
    if not return_dict:
        return (images,) if intermediates is None else (images, intermediates)
    return SpritesPipelineOutput(images=images, intermediates=intermediates)


def to_output(x: torch.Tensor, output_type: str, numpy_to_pil) -> Any:
    """x in [-1, 1], shape (..., C, H, W) -> [0, 1] images as "pt" (same shape), "np" (..., H, W, C) or "pil"."""
    x = (x / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        return x
    array = x.float().cpu().movedim(-3, -1).numpy()
    if output_type == "np":
        return array
    if array.ndim == 5:
        return [numpy_to_pil(a) for a in array]
    return numpy_to_pil(array)

