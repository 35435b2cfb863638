"""Every quality number of a set of generated sprites, against the real ones, in one call.

:class:`SpriteScorer` loads the real sprites and the sprite network once, then ``score(images)`` gives

* sprite-FID and sprite-KID against real half B (the pair-aware held-out half, docs/evaluation.md);
* improved precision and recall (Kynkaanniemi et al. 2019, k = 3) against half B in the same feature space;
* the class mix: the share of samples the sprite network puts in each class, beside the data's shares, and the
  largest gap in percentage points.

``floor(n)`` gives the same numbers for n real sprites of half A: what a perfect sampler would score.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from evaluation.features import extract_sprite_features, load_sprite_feature_net
from evaluation.metrics import precision_recall
from evaluation.scoring import fid_kid, floor_subset, predict_classes
from evaluation.splits import halves_by_pairs
from pipelines.labels import SPRITE_CLASSES

PR_NEIGHBOURS = 3  # k of the precision/recall manifolds (the paper's default)


def feature_net_on(path: str | None, device: str | torch.device) -> Any:
    """The feature network of ``path`` (None: the sprite network) on ``device``: the loaded (cached) one on the
    CPU, a copy of it elsewhere."""
    net = load_sprite_feature_net(path)
    return net if torch.device(device).type == "cpu" else copy.deepcopy(net).to(device)


class SpriteScorer:
    """sprite-FID, KID, precision/recall and class mix of generated sprites (uint8 (N, 16, 16, 3)); the feature
    network runs on ``device`` (the statistics on the CPU in float64)."""

    def __init__(self, data_path: str | None = None, split_seed: int = 0, kid_subsets: int = 100,
                 device: str | torch.device = "cpu"):
        from sprites.data import read_sprites_arrays

        self.real, self.labels = read_sprites_arrays(data_path)
        labels = self.labels
        self.net = feature_net_on(None, device)
        self.real_features = extract_sprite_features(self.real, self.net)
        self.half_a, self.half_b = halves_by_pairs(labels, split_seed)
        self.classes = list(SPRITE_CLASSES)
        self.data_shares = np.bincount(labels, minlength=len(SPRITE_CLASSES)) / len(labels)
        self.kid_subsets, self.split_seed = kid_subsets, split_seed

    @classmethod
    def own_data(cls, images: np.ndarray, labels: np.ndarray | None, feature_net: str, class_names: list[str] | None,
                 seed: int = 0, kid_subsets: int = 100, device: str | torch.device = "cpu") -> SpriteScorer:
        """The same numbers for any image set in a network of ``python -m evaluation.train_classifier``: the
        reference is every training image (no held-out half), so the floor is in-sample; the class shares need
        labels whose classes the network predicts."""
        self = cls.__new__(cls)
        self.real, self.labels = images, labels
        self.net = feature_net_on(feature_net, device)
        self.real_features = extract_sprite_features(images, self.net)
        self.half_a = self.half_b = np.arange(len(images))
        num = self.net.config.num_classes
        self.classes = list(class_names) if class_names and len(class_names) == num else [str(i) for i in range(num)]
        self.data_shares = None if labels is None or labels.max() >= num else np.bincount(labels, minlength=num) / len(
            labels)
        self.kid_subsets, self.split_seed = kid_subsets, seed
        return self

    def score_features(self, features: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
        """The numbers from the sprite network's features (N, D) and predicted classes (N,) of a sample set."""
        reference = self.real_features[self.half_b]
        out = fid_kid(features, reference, self.kid_subsets, self.split_seed)
        out["precision"], out["recall"] = precision_recall(features, reference, PR_NEIGHBOURS)
        shares = np.bincount(predicted, minlength=len(self.classes)) / len(predicted)
        out["class_shares"] = {c: float(s) for c, s in zip(self.classes, shares, strict=True)}
        if self.data_shares is not None:
            out["class_gap_points"] = float(100 * np.abs(shares - self.data_shares).max())
        return out

    def score(self, images: Any) -> dict[str, Any]:
        """The numbers of generated sprites (uint8 NHWC, or floats in [-1, 1])."""
        features = extract_sprite_features(images, self.net)
        predicted, _ = predict_classes(images, self.net)
        return self.score_features(features, predicted)

    def floor(self, n: int) -> dict[str, Any]:
        """The numbers of min(n, |A|) real sprites of half A (a seeded subset): the real-vs-real floor."""
        return self.score(self.real[floor_subset(self.half_a, n, self.split_seed)])

    def data_shares_dict(self) -> dict[str, float]:
        return {c: float(s) for c, s in zip(SPRITE_CLASSES, self.data_shares, strict=True)}
