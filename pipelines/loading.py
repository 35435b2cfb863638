"""Loading a saved pipeline folder, and every sampler by name: the one place the project does either.

    pipe = load_pipeline("pretrained/sprites_ddpm", "dpmpp_2m_sde")      # a checked folder, one clear error
    pipe(batch_size=8, **sampler_arguments("dpmpp_2m_sde", nfe=10))

Samplers: "ddpm" (Algorithm 2), "ddim" (eq. 12) and the fast rules of :mod:`pipelines.samplers`; for each, one
UNet evaluation per step except Heun (two, one on the last step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.pipeline_sprites_ddim import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddpm import SpritesDDPMPipeline
from pipelines.pipeline_sprites_solver import SpritesSolverPipeline
from pipelines.samplers import RULES

SAMPLERS = ("ddpm", "ddim", *RULES)


class PipelineFolderError(ValueError):
    """A pipeline folder that is missing, incomplete or corrupt; the message says which and what to do."""


def pipeline_class(sampler: str) -> type:
    """The pipeline class that runs ``sampler``."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    return {"ddpm": SpritesDDPMPipeline, "ddim": SpritesDDIMPipeline}.get(sampler, SpritesSolverPipeline)


def sampler_arguments(sampler: str, nfe: int | None = None, **options: Any) -> dict[str, Any]:
    """Call arguments that sample with ``sampler`` in ``nfe`` UNet evaluations (None: the pipeline's default,
    all T steps for DDPM, 50 for DDIM, 10 for the solvers), plus ``options`` as they are."""
    pipeline_class(sampler)
    if sampler in ("ddpm", "ddim"):
        return {**({} if nfe is None else {"num_inference_steps": nfe}), **options}
    return {"sampler": sampler, **({} if nfe is None else {"nfe": nfe}), **options}


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


def load_pipeline(folder: str | Path, sampler: str = "ddpm", device: str = "cpu"):
    """Our pipeline for ``sampler`` from a ``save_pretrained`` folder, in eval mode, progress bar off."""
    from diffusers.utils import logging as diffusers_logging

    cls = pipeline_class(sampler)
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
