"""Scores of generated sprites against real ones with the sprite network: sprite-FID/KID between feature sets,
the real-vs-real floor, class predictions and the share of samples that show the requested class."""

from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.features import SpriteFeatureNet, to_uint8_nhwc
from evaluation.metrics import fid_from_features, kid_from_features
from pipelines.labels import NUM_CLASSES
from sprites.data import images_to_tensor

__all__ = ["class_match", "fid_kid", "floor_subset", "predict_classes", "real_floor"]


def fid_kid(generated_features: np.ndarray, reference_features: np.ndarray, kid_subsets: int = 100,
            seed: int = 0) -> dict:
    """sprite-FID and sprite-KID (subsets of min(1000, N_gen, N_ref)) between two feature sets."""
    m = min(1000, len(generated_features), len(reference_features))
    kid, kid_std = kid_from_features(generated_features, reference_features, subset_size=m, n_subsets=kid_subsets,
                                     seed=seed)
    return {"sprite_fid": fid_from_features(generated_features, reference_features), "sprite_kid": kid,
            "sprite_kid_subset_std": kid_std, "n": int(len(generated_features)),
            "n_reference": int(len(reference_features)), "kid_subset_size": int(m)}


def floor_subset(half_a: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The real sprites of the floor at N: all of half A when ``n >= |A|``, else a seeded random ``n`` of them
    (sorted)."""
    rng = np.random.default_rng(seed)
    return half_a if n >= len(half_a) else np.sort(rng.choice(half_a, n, replace=False))


def real_floor(features: np.ndarray, half_a: np.ndarray, half_b: np.ndarray, n: int, seed: int = 0,
               kid_subsets: int = 100) -> dict:
    """The real-vs-real floor at N: ``min(n, |A|)`` sprites of half A (a seeded random subset) against all of B."""
    return fid_kid(features[floor_subset(half_a, n, seed)], features[half_b], kid_subsets, seed)


def predict_classes(images: Any, net: SpriteFeatureNet, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted class (N,), softmax probabilities (N, classes))`` of the sprite network (or another network of
    evaluation.train_classifier) for uint8 images (or floats in [-1, 1]); images are rounded to uint8 first, as for
    sprite-FID."""
    import torch

    arr = to_uint8_nhwc(images, channels=net.config.in_channels)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    with torch.no_grad():
        logits = [net(images_to_tensor(arr[i:i + batch_size]).to(device)).cpu().double()
                  for i in range(0, len(arr), batch_size)]
    net.train(was_training)
    probs = torch.cat(logits).softmax(1).numpy() if logits else np.zeros((0, net.config.num_classes))
    return probs.argmax(1), probs


def class_match(predicted: Any, requested: Any, num_classes: int = NUM_CLASSES) -> dict:
    """Share of samples whose predicted class is the requested one: overall, per requested class, and the
    balanced mean over the classes that were requested; plus the confusion counts (rows requested, columns
    predicted)."""
    p, r = np.asarray(predicted, dtype=np.int64), np.asarray(requested, dtype=np.int64)
    if p.shape != r.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"predicted and requested must be equal-length 1-D label arrays, got {p.shape}, {r.shape}")
    if min(p.min(), r.min()) < 0 or max(p.max(), r.max()) >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (r, p), 1)
    counts = confusion.sum(1)
    per_class = [float(confusion[c, c] / counts[c]) if counts[c] else None for c in range(num_classes)]
    present = [v for v in per_class if v is not None]
    return {"match": float((p == r).mean()), "per_class": per_class, "balanced": float(np.mean(present)),
            "n": int(len(p)), "confusion": confusion.tolist()}
