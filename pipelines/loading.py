"""Loading a saved pipeline folder, and every sampler by name: the one place the project does either.

    pipe = load_pipeline("pretrained/sprites_ddpm", "dpmpp_2m_sde")      # a checked folder, one clear error
    pipe(batch_size=8, **sampler_arguments("dpmpp_2m_sde", nfe=10))

    sampling = prepare_sampling("pretrained/sprites_ddpm", "fast")        # a preset, options given override it
    images = sampling(50, seed=0).images                                  # what python -m training.sample runs

Samplers: "ddpm" (Algorithm 2), "ddim" (eq. 12) and the fast rules of :mod:`pipelines.samplers`; for each, one
UNet evaluation per step except Heun (two, one on the last step). Presets: configs/sampling_presets.yaml, read
once per process. Every error here is a ``ValueError`` with a one-line message (a command prints it as it is).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.pipeline_sprites_ddim import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddpm import SpritesDDPMPipeline
from pipelines.pipeline_sprites_solver import SpritesSolverPipeline
from pipelines.samplers import RULES
from pipelines.shipped import config_file


class PipelinesBySampler(dict):
    """sampler name -> the pipeline class that runs it; an unknown name is a one-line ``ValueError``."""

    def __missing__(self, sampler: str):
        raise ValueError(f"sampler must be one of {', '.join(self)}, got {sampler!r}")


PIPELINES = PipelinesBySampler(ddpm=SpritesDDPMPipeline, ddim=SpritesDDIMPipeline,
                               **dict.fromkeys(RULES, SpritesSolverPipeline))
SAMPLERS = tuple(PIPELINES)
PRESETS_FILE = config_file("sampling_presets.yaml")
RUNTIMES = ("torch", "onnxruntime", "compile")  # how the UNet runs: pipelines.unet_runtime


class PipelineFolderError(ValueError):
    """A pipeline folder that is missing, incomplete or corrupt; the message says which and what to do."""


def pipeline_class(sampler: str, options: Any = ()) -> type:
    """The pipeline class that runs ``sampler`` with ``options`` (names): DDIM on a ``sigma_schedule`` (Karras or
    learned sigmas rather than the model's timesteps) is the solver pipeline's ``sampler="ddim"``."""
    if sampler == "ddim" and "sigma_schedule" in options:
        return SpritesSolverPipeline
    return PIPELINES[sampler]


def sampler_arguments(sampler: str, nfe: int | None = None, **options: Any) -> dict[str, Any]:
    """Call arguments that sample with ``sampler`` in ``nfe`` UNet evaluations (None: the pipeline's default,
    all T steps for DDPM, 50 for DDIM, 10 for the solvers), plus ``options`` as they are."""
    if pipeline_class(sampler, options) is not SpritesSolverPipeline:
        return {**({} if nfe is None else {"num_inference_steps": nfe}), **options}
    if sampler == "ddim":
        options = dict(options)
        if options.pop("eta", 0.0) != 0:
            raise ValueError("DDIM on a sigma_schedule is DDIM with eta = 0 (Euler's rule); use eta=0, or the "
                             "solver pipeline's euler_ancestral / dpmpp_2m_sde for a stochastic sampler")
    return {"sampler": sampler, **({} if nfe is None else {"nfe": nfe}), **options}


def default_nfe(sampler: str, num_train_timesteps: int) -> int:
    """The pipeline's own default step count for ``sampler``, read from its signature (all T steps for DDPM)."""
    params = inspect.signature(PIPELINES[sampler].__call__).parameters
    default = (params.get("nfe") or params["num_inference_steps"]).default
    return num_train_timesteps if default is None else int(default)


def check_folder(folder: str | Path) -> Path:
    """``folder`` if it holds a complete saved pipeline, else :class:`PipelineFolderError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineFolderError(f"pipeline folder {folder} not found; point --pipeline at a saved pipeline "
                                  "(for example runs/tiny/pipeline after training, or pretrained/sprites_ddpm)")
    if not (folder / "model_index.json").is_file():
        raise PipelineFolderError(f"{folder} is not a pipeline folder (no model_index.json); point --pipeline at "
                                  "the pipeline/ folder of a training run")
    for part in ("unet", "scheduler"):
        if not (folder / part).is_dir():
            raise PipelineFolderError(f"{folder} is incomplete: the {part}/ folder is missing; save or copy the "
                                      "pipeline again")
    if not any((folder / "unet").glob("diffusion_pytorch_model*")):
        raise PipelineFolderError(f"{folder} is incomplete: no weights in unet/ "
                                  "(diffusion_pytorch_model.safetensors); save or copy the pipeline again")
    return folder


def load_pipeline(folder: str | Path, sampler: str | type = "ddpm", device: str = "cpu"):
    """Our pipeline for ``sampler`` (or the pipeline class itself) from a ``save_pretrained`` folder, in eval
    mode, progress bar off."""
    from diffusers.utils import logging as diffusers_logging

    cls = sampler if isinstance(sampler, type) else PIPELINES[sampler]
    folder = check_folder(folder)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # the error below says it all, in one line
    try:
        pipe = cls.from_pretrained(folder).to(device)
    except Exception as exc:  # missing or corrupt files surface as many exception types; all mean "broken folder"
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise PipelineFolderError(f"cannot load the pipeline in {folder} ({type(exc).__name__}: {reason}); the "
                                  "folder is incomplete or corrupt: save or copy it again") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)
    pipe.unet.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_all_samplers(folder: str | Path, device: str = "cpu") -> dict[str, Any]:
    """``{"ddpm": ..., "ddim": ..., "solver": ...}``: the three pipeline classes on one UNet loaded from
    ``folder`` (each finds the folder's data moments)."""
    ddpm = load_pipeline(folder, "ddpm", device)
    out = {"ddpm": ddpm}
    for key, cls in (("ddim", SpritesDDIMPipeline), ("solver", SpritesSolverPipeline)):
        pipe = cls(unet=ddpm.unet, scheduler=ddpm.scheduler)
        pipe.register_to_config(_name_or_path=str(folder))
        pipe.set_progress_bar_config(disable=True)
        out[key] = pipe
    return out


# ------------------------------------------------------------------------------ sampling as the command does


@functools.cache
def load_presets() -> dict[str, dict[str, Any]]:
    """The presets of configs/sampling_presets.yaml, read once per process (do not modify the result)."""
    import yaml

    return yaml.safe_load(PRESETS_FILE.read_text())


def with_runtime(pipe, runtime: str):
    """The pipeline with its UNet run by ``runtime`` (:data:`RUNTIMES`; :mod:`pipelines.unet_runtime`)."""
    if runtime == "torch":
        return pipe
    from pipelines.unet_runtime import OnnxUNet, prepare_unet

    if runtime == "compile":
        prepare_unet(pipe.unet, compile=True)
        return pipe
    try:
        fast = type(pipe)(unet=OnnxUNet(pipe.unet), scheduler=pipe.scheduler)
    except ImportError:
        raise ValueError("--runtime onnxruntime needs onnx and onnxruntime: pip install -e '.[onnx]'") from None
    except ValueError as exc:
        raise ValueError(f"--runtime onnxruntime: {exc}") from None
    fast.register_to_config(_name_or_path=pipe.config._name_or_path)
    fast.set_progress_bar_config(disable=True)
    return fast


@dataclass
class Sampling:
    """A loaded pipeline and how to sample with it: ``sampler`` in ``nfe`` UNet evaluations with ``options``
    (``arguments``: the pipeline call's sampling arguments, :func:`sampler_arguments`)."""

    pipe: Any
    sampler: str
    nfe: int
    options: dict[str, Any]
    arguments: dict[str, Any]

    def __call__(self, num_images: int, seed: int = 0, class_labels: list | None = None, **extra: Any):
        """The pipeline's output for ``num_images`` sprites ("np": float in [0, 1]), x_T from ``seed``;
        ``class_labels`` cycled over the images; ``extra``: more call arguments (``return_intermediates``, ...)."""
        import torch

        if class_labels:
            extra["class_labels"] = [class_labels[i % len(class_labels)] for i in range(num_images)]
        return self.pipe(batch_size=num_images, generator=torch.Generator(device="cpu").manual_seed(seed),
                         output_type="np", **self.arguments, **extra)

    def describe(self) -> str:
        """A caption: the sampler, its settings and the prior."""
        from pipelines.common import config_variance

        sampler, options = self.sampler, self.options
        if sampler == "ddpm":
            what = f"DDPM (sigma^2={config_variance(self.pipe.scheduler, options.get('variance'))})"
        elif sampler == "ddim":
            learned = options.get("sigma_schedule") == "learned"
            what = f"DDIM eta={options.get('eta', 0.0):g}" + (", learned steps" if learned else "")
        else:
            what = f"{sampler} ({options.get('sigma_schedule', 'karras')} sigmas)"
        what += f", {self.nfe} steps" if sampler in ("ddpm", "ddim") else f", {self.nfe} UNet evaluations"
        return what + (f", {options['prior']} prior" if options.get("prior", "standard") != "standard" else "")


def prepare_sampling(folder: str | Path, preset: str | None = None, *, device: str = "cpu", runtime: str = "torch",
                     **given: Any) -> Sampling:
    """``folder`` loaded for the settings of ``preset`` (configs/sampling_presets.yaml), overridden by ``given``
    (``sampler``, ``nfe`` and the pipeline's options; None means not given). Default sampler ddpm, default NFE the
    pipeline's own (:func:`default_nfe`). An option the sampler does not take, an unknown preset or sampler, or a
    bad folder is a one-line ``ValueError``."""
    presets = load_presets()
    if preset is not None and preset not in presets:
        raise ValueError(f"preset must be one of {', '.join(presets)}, got {preset!r}")
    options = {**(presets[preset] if preset else {}), **{k: v for k, v in given.items() if v is not None}}
    sampler, nfe = options.pop("sampler", "ddpm"), options.pop("nfe", None)
    cls = pipeline_class(sampler, options)
    takes = inspect.signature(cls.__call__).parameters  # what the sampler's pipeline takes
    wrong = sorted(k for k in options if k not in takes)
    if wrong:
        raise ValueError(f"--{wrong[0]} does not apply to --sampler {sampler}")
    pipe = load_pipeline(folder, cls, device)
    if runtime != "torch":
        pipe = with_runtime(pipe, runtime)
    nfe = default_nfe(sampler, pipe.scheduler.config.num_train_timesteps) if nfe is None else nfe
    return Sampling(pipe, sampler, nfe, options, sampler_arguments(sampler, nfe, **options))
