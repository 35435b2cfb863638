"""Leak-free splits of the 1,788 unique sprites.

Base sprites 894..1787 are horizontal mirrors of 0..893, so sprite ``i`` and sprite ``i + 894`` always go to the
same side of a split (a *pair*). Any other sprite count is treated as unpaired (each sprite its own pair).
"""

from __future__ import annotations

import hashlib

import numpy as np

from sprites.data import N_UNIQUE

__all__ = ["data_sha256", "halves_by_pairs", "pair_ids", "split_by_pairs"]


def pair_ids(n: int) -> np.ndarray:
    """Pair index of each of ``n`` sprites: ``i % 894`` for the 1,788 unique sprites, else ``i``."""
    return np.arange(n) % (N_UNIQUE // 2) if n == N_UNIQUE else np.arange(n)


def split_by_pairs(labels: np.ndarray, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted index arrays ``(train, held_out)``, stratified by class, never separating a sprite from its mirror."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must lie in (0, 1), got {held_out_fraction}")
    labels = np.asarray(labels)
    pairs = pair_ids(len(labels))
    n_pairs = pairs.max() + 1
    pair_label = np.zeros(n_pairs, dtype=np.int64)
    pair_label[pairs] = labels  # a pair shares one label (checked below)
    if not (pair_label[pairs] == labels).all():
        raise ValueError("a sprite and its mirror have different labels; cannot split by pairs")
    rng = np.random.default_rng(seed)
    held_pairs = []
    for c in np.unique(pair_label):
        members = np.flatnonzero(pair_label == c)
        k = int(round(held_out_fraction * len(members)))
        held_pairs.append(rng.permutation(members)[:k])
    held = np.isin(pairs, np.concatenate(held_pairs))
    return np.flatnonzero(~held), np.flatnonzero(held)


def halves_by_pairs(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two class-stratified halves of the sprites, mirrors kept together: the real-vs-real floor's sets."""
    return split_by_pairs(labels, 0.5, seed)


def data_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the uint8 image bytes followed by the int64 label bytes (identifies the training data)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()
