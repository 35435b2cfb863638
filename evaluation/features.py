"""The sprite feature network and sprite-FID / sprite-KID.

:class:`SpriteFeatureNet` is a small CNN trained by ``evaluation/train_classifier.py`` to tell the five sprite
classes apart. Its penultimate layer (128 values after a ReLU) is the feature space of *sprite-FID*, the
project's default offline metric. The trained weights ship with the package as
``evaluation/weights/sprite_features_v1.safetensors`` beside a JSON file that records the version, the data hash,
the held-out split and the held-out accuracy. Numbers are comparable only between runs that use the same weights
version, and never with Inception FID.

Images are accepted as uint8 ``(N, 16, 16, 3)`` (the loader's layout) or as float ``(N, 3, 16, 16)`` /
``(N, 16, 16, 3)`` in ``value_range`` (default ``(-1, 1)``, the model's convention). Float images are first
rounded to the uint8 grid, exactly as saving them to PNG would, so generated and real sprites go through
the same quantisation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluation.metrics import fid_from_features, kid_from_features
from pipelines.atomic import atomic_file, write_text_atomic
from sprites.images import to_uint8

__all__ = [
    "DEFAULT_WEIGHTS",
    "SPRITE_FEATURES_VERSION",
    "SpriteFeatureExtractor",
    "SpriteFeatureNet",
    "SpriteNetConfig",
    "extract_sprite_features",
    "load_sprite_feature_net",
    "load_sprite_feature_meta",
    "save_sprite_feature_net",
    "sprite_fid",
    "sprite_kid",
    "to_uint8_nhwc",
]

SPRITE_FEATURES_VERSION = "v1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / f"sprite_features_{SPRITE_FEATURES_VERSION}.safetensors"
SPRITE_SIZE = 16


@dataclass(frozen=True)
class SpriteNetConfig:
    """Architecture of :class:`SpriteFeatureNet` (stored in the weights' JSON so that the file rebuilds it)."""

    widths: tuple[int, int, int] = (24, 48, 96)
    feature_dim: int = 128
    num_classes: int = 5
    in_channels: int = 3  # 1 for a network of grey images
    image_size: int = SPRITE_SIZE  # the square size it is trained on (from 8 up: the body ends in a global pool)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SpriteFeatureNet(nn.Module):
    """A small CNN for 16x16 sprites: 5 conv layers, global average pooling, a 128-d hidden layer, 5 logits.

    Input: float (N, 3, 16, 16) in [-1, 1]. ``features(x)`` returns the hidden layer (N, feature_dim), the
    sprite-FID feature space; ``forward(x)`` returns class logits (N, num_classes).
    """

    def __init__(self, config: SpriteNetConfig | None = None):
        super().__init__()
        self.config = config or SpriteNetConfig()
        w1, w2, w3 = self.config.widths
        self.body = nn.Sequential(
            *_conv_bn_relu(self.config.in_channels, w1), *_conv_bn_relu(w1, w1), nn.MaxPool2d(2),  # 16 -> 8
            *_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2), nn.MaxPool2d(2),  # 8 -> 4
            *_conv_bn_relu(w2, w3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.hidden = nn.Sequential(nn.Linear(w3, self.config.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(self.config.feature_dim, self.config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def _meta_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_sprite_feature_net(net: SpriteFeatureNet, path: str | Path, meta: dict[str, Any]) -> None:
    """Write the weights (safetensors) and ``<same name>.json`` with ``meta`` plus the architecture, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {**meta, "architecture": asdict(net.config), "num_parameters": sum(p.numel() for p in net.parameters())}
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata={"version": str(meta.get("version", "")), "format": "pt"})
    write_text_atomic(_meta_path(path), json.dumps(meta, indent=1) + "\n")


def load_sprite_feature_meta(path: str | Path | None = None) -> dict[str, Any]:
    """The JSON beside the weights: version, data sha256, held-out split and accuracy, architecture."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    meta_file = _meta_path(path)
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file}: the sprite feature network's metadata file is missing; it must sit "
                                f"beside {path.name} (both are written by evaluation/train_classifier.py)")
    return json.loads(meta_file.read_text())


_CACHE: dict[tuple[str, float], SpriteFeatureNet] = {}


def load_sprite_feature_net(path: str | Path | None = None) -> SpriteFeatureNet:
    """Load the sprite feature network in eval mode; ``None`` means the committed ``sprite_features_v1`` file.

    The loaded network is cached per file (the same object is returned again), so do not train it in place.
    """
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sprite feature weights not found (the committed file is {DEFAULT_WEIGHTS}; "
                                "retrain with evaluation/train_classifier.py: python -m evaluation.train_classifier "
                                "--config configs/sprite_classifier.yaml)")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    meta = load_sprite_feature_meta(path)
    arch = meta.get("architecture", {})
    config = SpriteNetConfig(widths=tuple(arch.get("widths", SpriteNetConfig.widths)),
                             feature_dim=int(arch.get("feature_dim", SpriteNetConfig.feature_dim)),
                             num_classes=int(arch.get("num_classes", SpriteNetConfig.num_classes)),
                             in_channels=int(arch.get("in_channels", SpriteNetConfig.in_channels)),
                             image_size=int(arch.get("image_size", SpriteNetConfig.image_size)))
    net = SpriteFeatureNet(config)
    net.load_state_dict(load_file(str(path)))
    net.version = meta.get("version", "unknown")
    net.eval().requires_grad_(False)
    _CACHE[key] = net
    return net


def to_uint8_nhwc(images: Any, value_range: tuple[float, float] = (-1.0, 1.0), channels: int | None = 3
                  ) -> np.ndarray:
    """Images as uint8 (N, H, W, channels). uint8 input is only re-laid-out; float input in ``value_range`` is
    clipped and rounded to the uint8 grid. The layout (channels first or last) is read from which axis has size
    ``channels`` (3: RGB, 1: grey; None: either, RGB first)."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, 3) or (N, 3, H, W), got {arr.shape}")
    if channels is None and arr.ndim == 4:
        channels = 3 if 3 in (arr.shape[1], arr.shape[-1]) else 1
    if arr.shape[-1] != channels and arr.shape[1] == channels:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] != channels:
        what = "3 colour channels" if channels == 3 else "1 (grey) channel"
        raise ValueError(f"images must have {what} first or last, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("integer images must lie in [0, 255]")
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("images contain NaN or infinity")
    lo, hi = value_range
    return to_uint8((arr.astype(np.float64) - lo) / (hi - lo))


@torch.no_grad()
def extract_sprite_features(images: Any, net: SpriteFeatureNet | None = None, batch_size: int = 1024,
                            value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Features (N, feature_dim) as float64 of images of the network's size and channels (16x16 RGB for the sprite
    network; see the module doc for accepted inputs)."""
    from sprites.data import images_to_tensor

    net = net if net is not None else load_sprite_feature_net()
    arr = to_uint8_nhwc(images, value_range, net.config.in_channels)
    size = net.config.image_size
    if arr.shape[1:3] != (size, size):
        raise ValueError(f"the feature network takes {size}x{size} images, got {arr.shape[1]}x{arr.shape[2]}")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    out = [net.features(images_to_tensor(arr[i:i + batch_size]).to(device)).cpu().double()
           for i in range(0, arr.shape[0], batch_size)]
    net.train(was_training)
    if not out:
        return np.zeros((0, net.config.feature_dim))
    return torch.cat(out).numpy()


class SpriteFeatureExtractor(nn.Module):
    """``forward(images) -> features`` (float64 tensor (N, feature_dim)) for code that wants a feature module,
    such as torchmetrics' ``FrechetInceptionDistance(feature=SpriteFeatureExtractor())``; images as
    :func:`extract_sprite_features` takes them."""

    def __init__(self, net: SpriteFeatureNet | None = None, value_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        self.net = net if net is not None else load_sprite_feature_net()
        self.value_range = value_range
        self.num_features = self.net.config.feature_dim  # read by torchmetrics

    def forward(self, images: Any) -> torch.Tensor:
        return torch.from_numpy(extract_sprite_features(images, self.net, value_range=self.value_range))


def sprite_fid(images_a: Any, images_b: Any, net: SpriteFeatureNet | None = None,
               value_range: tuple[float, float] = (-1.0, 1.0)) -> float:
    """sprite-FID: the Frechet distance between two image sets in the sprite network's feature space."""
    net = net if net is not None else load_sprite_feature_net()
    return fid_from_features(extract_sprite_features(images_a, net, value_range=value_range),
                             extract_sprite_features(images_b, net, value_range=value_range))


def sprite_kid(images_a: Any, images_b: Any, net: SpriteFeatureNet | None = None,
               value_range: tuple[float, float] = (-1.0, 1.0), **kid_kwargs: Any) -> tuple[float, float]:
    """sprite-KID ``(mean, std)``: :func:`evaluation.kid_from_features` on sprite network features."""
    net = net if net is not None else load_sprite_feature_net()
    return kid_from_features(extract_sprite_features(images_a, net, value_range=value_range),
                             extract_sprite_features(images_b, net, value_range=value_range), **kid_kwargs)
