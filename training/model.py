"""Build the sprites ``UNet2DModel`` from the ``unet`` block of a config."""

from __future__ import annotations

from typing import Any

from diffusers import UNet2DModel

from training.config import ConfigError

NUM_CLASSES = 5
NULL_CLASS = NUM_CLASSES  # index of the "no label" embedding used for classifier-free guidance


def build_unet(unet_kwargs: dict[str, Any], conditional: bool = False) -> UNet2DModel:
    """A ``UNet2DModel`` from config keywords; ``conditional`` adds 5 class embeddings plus a null class."""
    kwargs = dict(unet_kwargs)
    if conditional:
        kwargs["num_class_embeds"] = NUM_CLASSES + 1
    try:
        return UNet2DModel(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"unet: UNet2DModel rejects these settings ({exc})") from None
