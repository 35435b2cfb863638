"""torchmetrics versions of sprite-FID, sprite-KID and Inception FID, computed by :mod:`evaluation.metrics`.

    from experiments.tm_metrics import SpriteFID
    metric = SpriteFID()
    metric.update(real_images, real=True)    # uint8 (N, 16, 16, 3) or float in [-1, 1], tensor or array
    metric.update(generated_images, real=False)
    metric.compute()                          # float64 scalar tensor, equal to evaluation.sprite_fid(...)

They follow torchmetrics' ``FrechetInceptionDistance`` interface (``update(images, real)``, ``compute``,
``reset``, ``reset_real_features=False`` to keep the real set between resets) and store the features, which
are small here (128 numbers per sprite). torchmetrics is a development dependency: import this module only
where it is installed. ``InceptionFID`` needs pytorch-fid's weights on the machine (see
:mod:`evaluation.inception`); it gives standard FID, never to be mixed with sprite-FID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from evaluation.features import SpriteFeatureNet, extract_sprite_features, load_sprite_feature_net
from evaluation.inception import FIDInceptionV3, extract_inception_features, load_fid_inception
from evaluation.metrics import fid_from_features, kid_from_features

__all__ = ["InceptionFID", "SpriteFID", "SpriteKID"]


class _FeatureSetMetric(Metric):
    """Collects the features of real and generated images; subclasses turn the two sets into a number."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, net: torch.nn.Module, reset_real_features: bool = True,
                 value_range: tuple[float, float] = (-1.0, 1.0), **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(reset_real_features, bool):
            raise ValueError("reset_real_features must be a bool")
        self.net = net
        self.reset_real_features = reset_real_features
        self.value_range = value_range
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def _extract(self, images: Any) -> np.ndarray:
        if isinstance(self.net, FIDInceptionV3):
            return extract_inception_features(images, self.net, value_range=self.value_range)
        return extract_sprite_features(images, self.net, value_range=self.value_range)

    def update(self, images: Any, real: bool) -> None:
        features = torch.from_numpy(self._extract(images))
        (self.real_features if real else self.fake_features).append(features)

    def _feature_sets(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.real_features or not self.fake_features:
            raise RuntimeError("update() with both real=True and real=False images before compute()")
        return dim_zero_cat(self.real_features).numpy(), dim_zero_cat(self.fake_features).numpy()

    def reset(self) -> None:
        if self.reset_real_features:
            super().reset()
            return
        kept = list(self.real_features)
        super().reset()
        self.real_features = kept


class SpriteFID(_FeatureSetMetric):
    """sprite-FID as a torchmetrics ``Metric`` (the committed sprite feature network unless ``net`` is given)."""

    def __init__(self, net: SpriteFeatureNet | None = None, reset_real_features: bool = True, **kwargs: Any):
        super().__init__(net if net is not None else load_sprite_feature_net(), reset_real_features, **kwargs)

    def compute(self) -> torch.Tensor:
        real, fake = self._feature_sets()
        return torch.tensor(fid_from_features(real, fake), dtype=torch.float64)


class SpriteKID(_FeatureSetMetric):
    """sprite-KID ``(mean, std)`` as a torchmetrics ``Metric``; subset arguments as in ``kid_from_features``."""

    def __init__(self, net: SpriteFeatureNet | None = None, subset_size: int | None = None, n_subsets: int = 100,
                 seed: int = 0, reset_real_features: bool = True, **kwargs: Any):
        super().__init__(net if net is not None else load_sprite_feature_net(), reset_real_features, **kwargs)
        self.kid_kwargs = {"subset_size": subset_size, "n_subsets": n_subsets, "seed": seed}

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = self._feature_sets()
        mean, std = kid_from_features(real, fake, **self.kid_kwargs)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class InceptionFID(_FeatureSetMetric):
    """Standard FID (pytorch-fid's Inception features, our float64 Frechet distance) as a ``Metric``.

    ``weights`` is the path of ``pt_inception-2015-12-05-6726825d.pth`` (default: the torch hub cache);
    ``net`` may be given instead (tests use a randomly initialised one, whose numbers mean nothing).
    """

    def __init__(self, weights: str | Path | None = None, net: FIDInceptionV3 | None = None,
                 reset_real_features: bool = True, **kwargs: Any):
        super().__init__(net if net is not None else load_fid_inception(weights), reset_real_features, **kwargs)

    def compute(self) -> torch.Tensor:
        real, fake = self._feature_sets()
        return torch.tensor(fid_from_features(real, fake), dtype=torch.float64)
