"""Nearest-neighbour distances for the memorisation check: how close generated sprites come to training sprites.

Pixel distances are Euclidean over the 16 x 16 x 3 values on the [0, 1] scale (so two sprites differing by one
full-range value in one channel of one pixel are 1 apart; the largest possible distance is sqrt(768) = 27.7).
They are computed from the uint8 values in float64, where every partial sum is an integer below 2**53, so
equal sprites give exactly 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evaluation.features import SpriteFeatureNet, extract_sprite_features, to_uint8_nhwc
from evaluation.splits import pair_ids

__all__ = [
    "PIXEL_SCALE",
    "TrainingReference",
    "memorisation_summary",
    "nearest_neighbours",
    "pixel_nearest_neighbours",
    "training_reference",
]

PIXEL_SCALE = 255.0  # uint8 -> [0, 1]


def _as_rows(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"need an array of shape (N, ...) with N rows, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1).astype(np.float64)


def nearest_neighbours(queries: Any, references: Any, query_groups: Any = None, reference_groups: Any = None,
                       chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each query row to its nearest reference row, and that reference's index.

    Rows are flattened to vectors (float64). With ``query_groups`` and ``reference_groups`` (one integer per row),
    a reference of the same group as the query is skipped: give a sprite and its mirror the same group to get
    the distance from a real sprite to its nearest *other* sprite. A query whose every reference is skipped
    gets distance inf and index -1. For integer-valued input (uint8 pixels) the distances are exact.
    """
    q, r = _as_rows(queries), _as_rows(references)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per row, references {r.shape[1]}")
    if len(r) == 0:
        raise ValueError("no reference rows")
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give both query_groups and reference_groups, or neither")
    if query_groups is not None:
        qg, rg = np.asarray(query_groups), np.asarray(reference_groups)
        if qg.shape != (len(q),) or rg.shape != (len(r),):
            raise ValueError(f"groups need one value per row: {qg.shape} for {len(q)} queries, {rg.shape} for "
                             f"{len(r)} references")
    r_norm = (r * r).sum(1)
    dist, index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), chunk):
        block = q[s:s + chunk]
        d2 = (block * block).sum(1)[:, None] + r_norm[None, :] - 2.0 * block @ r.T
        np.maximum(d2, 0.0, out=d2)
        if query_groups is not None:
            d2[qg[s:s + chunk, None] == rg[None, :]] = np.inf
        i = d2.argmin(1)
        index[s:s + chunk] = i
        dist[s:s + chunk] = np.sqrt(d2[np.arange(len(block)), i])
    index[~np.isfinite(dist)] = -1
    return dist, index


def pixel_nearest_neighbours(queries: Any, references: Any, query_groups: Any = None,
                             reference_groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_neighbours` of uint8 sprites in pixel space, distances on the [0, 1] scale."""
    q = to_uint8_nhwc(queries, value_range=(0.0, 1.0), channels=None)
    r = to_uint8_nhwc(references, value_range=(0.0, 1.0), channels=None)
    dist, index = nearest_neighbours(q, r, query_groups, reference_groups)
    return dist / PIXEL_SCALE, index


def training_reference(images: np.ndarray, include_flips: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sprites a model trained on ``images`` has seen: ``(references, groups, source)``.

    With ``include_flips`` (training with ``hflip: true``), the exact horizontal flip of every sprite is added
    after the originals, so a generated copy of a flipped training sprite is at distance 0 even where the data
    set's own mirror (sprite ``i + 894``) differs from the exact flip by JPEG noise. ``groups`` is the mirror-pair
    id of each reference (``evaluation.splits.pair_ids``: sprite ``i``, its mirror ``i +- 894`` and both flips share
    one), ``source`` the index of the data-set sprite it comes from.
    """
    images = to_uint8_nhwc(images, channels=None)
    groups = pair_ids(len(images))
    source = np.arange(len(images))
    if not include_flips:
        return images, groups, source
    return (np.concatenate([images, images[:, :, ::-1]]), np.concatenate([groups, groups]),
            np.concatenate([source, source]))


class TrainingReference:
    """The training sprites (with their flips, see :func:`training_reference`) for nearest-neighbour queries in
    pixel space and, with ``net``, in the sprite network's feature space."""

    def __init__(self, images: np.ndarray, include_flips: bool = True, net: SpriteFeatureNet | None = None):
        self.real = to_uint8_nhwc(images, channels=None)
        self.images, self.groups, self.source = training_reference(self.real, include_flips)
        self.include_flips = include_flips
        self.features = extract_sprite_features(self.images, net) if net is not None else None

    def pixel(self, queries: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel distance ([0, 1] scale) of each query sprite to its nearest reference, and that reference."""
        return pixel_nearest_neighbours(queries, self.images)

    def feature(self, query_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature-space distance of each query to its nearest reference, and that reference."""
        if self.features is None:
            raise ValueError("this TrainingReference was built without a feature network")
        return nearest_neighbours(query_features, self.features)

    def real_leave_pair_out(self) -> dict[str, np.ndarray | None]:
        """Each real sprite against the reference without itself, its mirror and their flips: how far a real
        sprite the model never saw lies from the training set. ``{"pixel": (N,), "feature": (N,) or None}``."""
        groups = pair_ids(len(self.real))
        pixel, _ = pixel_nearest_neighbours(self.real, self.images, groups, self.groups)
        feature = None
        if self.features is not None:
            feature, _ = nearest_neighbours(self.features[:len(self.real)], self.features, groups, self.groups)
        return {"pixel": pixel, "feature": feature}


def memorisation_summary(generated: np.ndarray, real: np.ndarray, quantiles: Sequence[float] = (0.01, 0.05, 0.5),
                         generated_feature: np.ndarray | None = None,
                         real_feature: np.ndarray | None = None) -> dict:
    """Nearest-neighbour distances of generated samples to the training set beside the real reference.

    ``generated``, ``real``: pixel distances (generated -> training set; real held-out -> training set, see
    :meth:`TrainingReference.real_leave_pair_out`). For each quantile q of ``real``: the threshold and the share
    of generated samples closer than it (a model that copies has far more than q below the q-quantile; q = 0.5 is the
    median, the typical distance between a real sprite and its nearest other sprite). Also the share of exact
    copies (distance 0). The same for feature-space distances when given.
    """
    def block(gen: np.ndarray, ref: np.ndarray) -> dict:
        gen, ref = np.asarray(gen, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        ref = ref[np.isfinite(ref)]
        thresholds = {f"{q:g}": float(np.quantile(ref, q)) for q in quantiles}
        return {"generated_median": float(np.median(gen)), "generated_mean": float(gen.mean()),
                "generated_min": float(gen.min()), "real_median": float(np.median(ref)),
                "real_quantiles": thresholds,
                "share_below_real_quantile": {k: float((gen < v).mean()) for k, v in thresholds.items()},
                "share_exact_copies": float((gen == 0).mean()), "real_share_exact": float((ref == 0).mean())}

    out = {"pixel": block(generated, real)}
    if generated_feature is not None and real_feature is not None:
        out["feature"] = block(generated_feature, real_feature)
    return out
