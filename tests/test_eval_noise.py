"""experiments.eval_noise: the spread of small-subset scores of cached sample sets. Real half A stands
in for a model's samples: the full set's numbers equal SpriteScorer's, small subsets score worse than the full set
(the distance's bias in N), and a clearly corrupted copy is ordered behind the real one in every subset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from evaluation.quality import SpriteScorer
from evaluation.splits import halves_by_pairs
from experiments.eval_noise import disjoint_subsets, main, order_agreement
from tests.test_measures import cache_file

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


def test_real_half_a_and_a_darkened_copy(tmp_path, sprites_arrays):
    real, labels = sprites_arrays
    half_a, _ = halves_by_pairs(labels, 0)
    images = real[half_a]
    cache = tmp_path / "cache"
    cache.mkdir()
    cache_file(cache, "real", images, **SETTING)
    cache_file(cache, "dark", images // 2, **{**SETTING, "prior": "moments"})
    cfg = {"out": str(tmp_path / "out"), "cache": [str(cache)], "model": {"name": "m", "sha256": "abab"},
           "settings": {"real": SETTING, "dark": {**SETTING, "prior": "moments"}}, "pairs": [["real", "dark"]],
           "num_images": len(images), "seed": 0, "subset_sizes": [100, 400], "subset_seed": 0}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(tmp_path / "c.yaml")]) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    full = SpriteScorer().score(images)
    got = res["settings"]["real"]
    assert got["full"]["sprite_fid"] == pytest.approx(full["sprite_fid"], rel=1e-9)
    assert got["full"]["precision"] == pytest.approx(full["precision"])
    assert got["subsets"]["100"]["count"] == len(images) // 100
    assert got["subsets"]["100"]["sprite_fid"]["min"] > got["full"]["sprite_fid"]  # biased upwards at small n
    assert got["subsets"]["100"]["sprite_fid"]["median"] > got["subsets"]["400"]["sprite_fid"]["median"]
    assert res["pairs"][0]["agreement"]["100"] == {"agree": len(images) // 100, "subsets": len(images) // 100}
    assert "in 8 of 8 subsets of 100" in (tmp_path / "out" / "table.md").read_text()
