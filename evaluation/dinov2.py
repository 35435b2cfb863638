"""DINOv2 features for FD-DINOv2 (Stein et al. 2023, "Exposing flaws of generative model evaluation metrics"; EDM2
reports it), through ``transformers``; local weights only.

    net = load_dinov2("facebook/dinov2-large")      # a hub id from the local cache, or a local folder
    features = extract_dinov2_features(images, net)  # (N, hidden_size) float64

**The feature is the CLS token** of the last layer after the final layer norm (``Dinov2Model``'s
``pooler_output``), the feature Stein et al. take from ViT-L/14. Images are pre-processed exactly as the
checkpoint's ``preprocessor_config.json`` says, read through ``AutoImageProcessor``: convert to RGB, resize
(PIL, its ``resample``; ``shortest_edge`` keeps the aspect ratio), centre crop, rescale by ``rescale_factor``,
normalise with ``image_mean`` / ``image_std`` (for facebook/dinov2-*: bicubic to 256, crop 224, ImageNet mean and
std). The pixel work is done here on whole batches; it equals the processor's PIL backend to 1e-6
(``tests/test_eval_dinov2.py``). With torchvision installed, transformers' default backend resizes with torch
instead and differs slightly: the numbers here are the PIL ones. Stein et al.'s own code (dgm-eval) resizes
straight to 224 without a crop, so its FD-DINOv2 is not the same number.

Nothing is downloaded: a hub id is read with ``local_files_only=True``; when the files are not on this machine,
:class:`DINOv2WeightsNotFound` says in one line what to download and where it goes. Needs ``transformers``
(``pip install -e ".[metrics]"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sprites.machine import default_device

__all__ = ["DINOv2Features", "DINOv2WeightsNotFound", "check_dinov2", "extract_dinov2_features", "load_dinov2"]

NEEDED = ("config.json", "preprocessor_config.json")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class DINOv2WeightsNotFound(FileNotFoundError):
    """The DINOv2 checkpoint is not on this machine; the message says what to download and where it goes."""


def _cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def check_dinov2(source: str | Path) -> None:
    """Fail in one line (:class:`DINOv2WeightsNotFound`) unless ``source`` (a local folder or a hub id) has its
    config, weights and preprocessor config on this machine; downloads nothing."""
    path = Path(source).expanduser()
    if path.is_dir():
        missing = [f for f in NEEDED if not (path / f).is_file()]
        if not any((path / f).is_file() for f in WEIGHTS):
            missing.append(" or ".join(WEIGHTS))
        if missing:
            raise DINOv2WeightsNotFound(f"DINOv2 folder {path} lacks {', '.join(missing)}; save a checkpoint there "
                                        "with save_pretrained (model and image processor), or pass a hub id")
        return
    from huggingface_hub import try_to_load_from_cache

    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(str(source), name), str)

    if not (all(cached(f) for f in NEEDED) and any(cached(f) for f in WEIGHTS)):
        raise DINOv2WeightsNotFound(
            f"DINOv2 weights {source} are not in the local Hugging Face cache ({_cache_dir()}); nothing is "
            f"downloaded here: on a connected machine run `hf download {source}` (it fills that cache; "
            "HF_HUB_CACHE moves it), or pass a local folder holding config.json, model.safetensors and "
            "preprocessor_config.json")


class DINOv2Features:
    """A ``transformers`` DINOv2 model in float32 eval mode and the pre-processing of its checkpoint."""

    def __init__(self, model: torch.nn.Module, processor: Any, source: str):
        self.model, self.source = model.eval().requires_grad_(False), source
        self.num_features = int(model.config.hidden_size)
        size, crop = dict(processor.size or {}), dict(processor.crop_size or {})
        if processor.do_resize and not (size.get("shortest_edge") or (size.get("height") and size.get("width"))):
            raise ValueError(f"{source}: preprocessor size {size} is neither shortest_edge nor height/width")
        self.resize = (size.get("shortest_edge"), size.get("height"), size.get("width")) if processor.do_resize \
            else None
        self.resample = int(processor.resample)
        self.crop = (crop["height"], crop["width"]) if processor.do_center_crop else None
        self.scale = float(processor.rescale_factor) if processor.do_rescale else None
        self.mean = torch.tensor(processor.image_mean, dtype=torch.float32).view(1, 3, 1, 1) \
            if processor.do_normalize else None
        self.std = torch.tensor(processor.image_std, dtype=torch.float32).view(1, 3, 1, 1) \
            if processor.do_normalize else None

    @property
    def description(self) -> str:
        return (f"DINOv2 {self.source} (transformers {type(self.model).__name__}): the CLS token of the last layer "
                f"after its layer norm, {self.num_features}-d")

    def _resize_to(self, h: int, w: int) -> tuple[int, int]:
        shortest, height, width = self.resize
        if not shortest:
            return height, width
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = shortest, int(shortest * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) -> float32 (N, 3, h, w) pixel values, as the checkpoint's image processor makes them."""
        out = []
        for image in images:
            pil = Image.fromarray(image, "RGB")
            if self.resize is not None:
                h, w = self._resize_to(*image.shape[:2])
                pil = pil.resize((w, h), resample=self.resample)
            out.append(np.asarray(pil))
        x = np.stack(out).transpose(0, 3, 1, 2)
        if self.crop is not None:
            ch, cw = self.crop
            top, left = (x.shape[2] - ch) // 2, (x.shape[3] - cw) // 2
            if top < 0 or left < 0:
                raise ValueError(f"{self.source}: centre crop {self.crop} is larger than the resized image")
            x = x[:, :, top:top + ch, left:left + cw]
        x = torch.from_numpy((x.astype(np.float64) * self.scale).astype(np.float32) if self.scale is not None
                             else x.astype(np.float32))
        return (x - self.mean) / self.std if self.mean is not None else x

    @torch.no_grad()
    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLS features (N, hidden_size) of pre-processed pixel values."""
        device = next(self.model.parameters()).device
        return self.model(pixel_values=pixel_values.to(device)).pooler_output.float().cpu()


def load_dinov2(source: str | Path, device: str | torch.device | None = None) -> DINOv2Features:
    """The DINOv2 model and pre-processing of ``source`` (a local folder or a hub id in the local cache), on
    ``device`` (default: CUDA when there is one, else the CPU)."""
    check_dinov2(source)
    from transformers import AutoImageProcessor, AutoModel
    from transformers.utils import logging as transformers_logging

    bar = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # its "Loading weights" bar, for a local read
    try:
        model = AutoModel.from_pretrained(str(source), local_files_only=True, dtype=torch.float32)
        processor = AutoImageProcessor.from_pretrained(str(source), local_files_only=True, backend="pil")
    except OSError as exc:
        raise DINOv2WeightsNotFound(f"DINOv2 {source}: {' '.join(str(exc).split())[:200]}") from None
    finally:
        if bar:
            transformers_logging.enable_progress_bar()
    if model.config.model_type != "dinov2":
        raise ValueError(f"{source} holds a {model.config.model_type!r} model, not DINOv2")
    device = device or default_device()
    return DINOv2Features(model.to(device), processor, str(source))


def extract_dinov2_features(images: Any, net: DINOv2Features, batch_size: int = 32,
                            value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """DINOv2 CLS features (N, hidden_size) in float64 of images as the sprite functions take them (uint8 NHWC,
    or floats in ``value_range``, rounded to the uint8 grid first as a PNG would be)."""
    from evaluation.features import to_uint8_nhwc

    arr = to_uint8_nhwc(images, value_range)
    out = [net(net.preprocess(arr[i:i + batch_size])).double() for i in range(0, len(arr), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.num_features))
