"""experiments.eval_noise: disjoint subsets are blocks of one seeded permutation, and the order count agrees with
the full sets' order."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.eval_noise import disjoint_subsets, order_agreement

SETTING = {"sampler": "ddim", "nfe": 50, "prior": None, "eta": 0.0}


def test_disjoint_subsets_cover_blocks_of_one_permutation():
    subsets = disjoint_subsets(1000, 300, seed=0)
    assert [len(s) for s in subsets] == [300, 300, 300]
    flat = np.concatenate(subsets)
    assert len(np.unique(flat)) == 900 and flat.max() < 1000
    assert all(np.array_equal(a, b) for a, b in zip(subsets, disjoint_subsets(1000, 300, seed=0), strict=True))
    with pytest.raises(SystemExit, match="subset size 0 .*subset_sizes"):
        disjoint_subsets(1000, 0, seed=0)


def test_order_agreement_counts_subsets_ordered_like_the_full_sets():
    full = {"a": 1.0, "b": 2.0}
    assert order_agreement(full, {"a": [1, 3, 0.5], "b": [2, 2, 0.7]}, "a", "b") == {"agree": 2, "subsets": 3}
