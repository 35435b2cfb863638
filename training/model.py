"""Build the sprites ``UNet2DModel`` and scheduler from a config, and save them as a pipeline folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diffusers import UNet2DModel

from pipelines.atomic import atomic_dir
from pipelines.labels import NUM_CLASSES
from pipelines.schedule import make_scheduler
from sprites.errors import ConfigError
from training.config import TrainConfig
from training.hub import write_model_card

__all__ = ["build_scheduler", "build_unet", "init_unet_from", "save_pipeline"]


def build_scheduler(cfg: TrainConfig):
    """The run's ``DDPMScheduler``: its noise schedule and the sampling settings every pipeline defaults to."""
    return make_scheduler(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end, variance_type=cfg.variance_type,
                          clip_sample=cfg.clip_sample, timestep_spacing=cfg.timestep_spacing)


def build_unet(unet_kwargs: dict[str, Any], conditional: bool = False) -> UNet2DModel:
    """A ``UNet2DModel`` from config keywords; ``conditional`` adds a class embedding per class plus a null class
    (``unet.num_class_embeds`` when the config has it, else the 5 sprite classes + 1)."""
    kwargs = dict(unet_kwargs)
    if conditional:
        kwargs.setdefault("num_class_embeds", NUM_CLASSES + 1)
    try:
        return UNet2DModel(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"unet: UNet2DModel rejects these settings ({exc})") from None


def init_unet_from(unet: UNet2DModel, pipeline_dir: str) -> list[str]:
    """Load the UNet weights of a saved pipeline into ``unet``; return the names it did not provide.

    Only a class embedding may be missing (fine-tuning an unconditional model into a conditional one): it is
    zeroed, so the new model starts as exactly the old one and learns the labels from there.
    """
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    folder = Path(pipeline_dir) / "unet"
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"init_from: {folder} holds no .safetensors weights; point it at a saved pipeline folder")
    try:
        state = load_file(files[0])
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise ConfigError(f"init_from: cannot read {files[0]} ({exc}); the file is corrupt or truncated") from None
    try:
        missing, unexpected = unet.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ConfigError(f"init_from: the weights in {files[0]} do not fit this UNet ({str(exc)[:200]})") from None
    bad = [k for k in missing if not k.startswith("class_embedding.")] + list(unexpected)
    if bad:
        raise ConfigError(f"init_from: {files[0]} does not match the configured UNet (e.g. {bad[:3]})")
    if missing:
        with torch.no_grad():
            unet.class_embedding.weight.zero_()
    return list(missing)


def save_pipeline(unet, scheduler, out: Path, card: dict, moments=None, extra: dict[str, str] | None = None,
                  class_names: list[str] | None = None) -> None:
    """save_pretrained of the pipeline (unet + scheduler, and the data moments for ``prior="moments"``) into
    ``out``, atomically, with a model card, the text files of ``extra`` (name -> text) and, for a conditional
    UNet, the names of its classes (``class_names.json``, one per class: sampling by name)."""
    from pipelines import SpritesDDPMPipeline

    with atomic_dir(out) as tmp:
        pipe = SpritesDDPMPipeline(unet=unet, scheduler=scheduler)
        pipe.set_data_moments(moments)
        if class_names is not None and unet.config.get("num_class_embeds") is not None:
            pipe.set_class_names(class_names)
        pipe.save_pretrained(tmp)
        write_model_card(tmp, card)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)

