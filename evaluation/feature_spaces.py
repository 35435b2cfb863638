"""The feature spaces an image set is scored in, each with its network named: ``sprite`` (the project's sprite
network: sprite-FID), ``inception`` (pytorch-fid's Inception-v3: standard FID) and ``dinov2`` (DINOv2's CLS token:
FD-DINOv2). Settings in ``configs/feature_spaces.yaml``; every network comes from local files.

    space = load_feature_space("dinov2", dinov2="facebook/dinov2-small")
    features = space.extract(images)              # (N, D) float64
    FeatureSpaceModule(space)                     # the same as a torch module, e.g. for torchmetrics' FID / KID

:func:`check_feature_space` fails in one line, before any work, when a network's files are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pipelines.shipped import config_file

__all__ = ["FEATURE_SPACES", "FeatureSpace", "FeatureSpaceModule", "check_feature_space", "load_feature_space",
           "load_settings"]

FEATURE_SPACES = ("sprite", "inception", "dinov2")
SETTINGS = config_file("feature_spaces.yaml")


def load_settings(path: str | Path = SETTINGS) -> dict[str, Any]:
    """``configs/feature_spaces.yaml``."""
    return yaml.safe_load(Path(path).read_text())


@dataclass(frozen=True)
class FeatureSpace:
    """A feature space: its name, the network (described for the output), what the distance is called there, and
    ``extract(images) -> (N, D) float64``."""

    name: str
    network: str
    distance: str
    dim: int
    extract: Callable[[Any], np.ndarray]


def check_feature_space(name: str, inception_weights: str | None = None, dinov2: str | None = None) -> None:
    """Raise the network's own one-line not-found error (a ``FileNotFoundError``) if its files are missing."""
    if name not in FEATURE_SPACES:
        raise ValueError(f"feature space {name!r} is not one of {', '.join(FEATURE_SPACES)}")
    if name == "inception":
        from evaluation.inception import find_fid_inception_weights

        find_fid_inception_weights(inception_weights)
    elif name == "dinov2":
        from evaluation.dinov2 import check_dinov2

        check_dinov2(dinov2 or load_settings()["dinov2"]["model"])


def load_feature_space(name: str, inception_weights: str | None = None, dinov2: str | None = None,
                       value_range: tuple[float, float] = (-1.0, 1.0), settings: dict | None = None,
                       feature_net: str | None = None) -> FeatureSpace:
    """The feature space ``name`` of :data:`FEATURE_SPACES` with its network loaded (``dinov2``: a local folder or a
    hub id in the local cache, default from the settings; ``feature_net``: another network of
    ``evaluation.train_classifier`` in the ``sprite`` space, for other data)."""
    check_feature_space(name, inception_weights, dinov2)
    settings = settings or load_settings()
    batch = int(settings[name]["batch_size"])
    if name == "sprite":
        from evaluation.features import DEFAULT_WEIGHTS, extract_sprite_features, load_sprite_feature_net

        net = load_sprite_feature_net(feature_net)
        file = Path(feature_net).name if feature_net else DEFAULT_WEIGHTS.name
        kind = "feature" if feature_net else "sprite"
        return FeatureSpace(name, f"spritediff {kind} network {net.version} ({file}), "
                            f"{net.config.feature_dim}-d penultimate layer", "FD" if feature_net else "sprite-FID",
                            net.config.feature_dim,
                            lambda images: extract_sprite_features(images, net, batch, value_range))
    if name == "inception":
        from evaluation.inception import (
            FID_WEIGHTS_FILENAME,
            FIDInceptionV3,
            extract_inception_features,
            load_fid_inception,
        )

        inet = load_fid_inception(inception_weights)
        return FeatureSpace(name, f"Inception-v3 of FID (pytorch-fid's {FID_WEIGHTS_FILENAME}), 2048-d pool",
                            "FID", FIDInceptionV3.num_features,
                            lambda images: extract_inception_features(images, inet, batch, value_range))
    from evaluation.dinov2 import extract_dinov2_features, load_dinov2

    dnet = load_dinov2(dinov2 or settings["dinov2"]["model"])
    return FeatureSpace(name, dnet.description, "FD-DINOv2", dnet.num_features,
                        lambda images: extract_dinov2_features(images, dnet, batch, value_range))


class FeatureSpaceModule(torch.nn.Module):
    """``forward(images) -> features`` (float64 tensor (N, D)) of a :class:`FeatureSpace`, with ``num_features``:
    what torchmetrics' ``FrechetInceptionDistance(feature=...)`` and ``KernelInceptionDistance`` take."""

    def __init__(self, space: FeatureSpace):
        super().__init__()
        self.space, self.num_features = space, space.dim

    def forward(self, images: Any) -> torch.Tensor:
        return torch.from_numpy(self.space.extract(images))
