"""experiments.measures: sample sets found in a sample cache by model and setting, scored in several
feature spaces; on real sprites standing in for samples the numbers equal the metrics computed directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from evaluation.features import extract_sprite_features, load_sprite_feature_net
from evaluation.metrics import fid_from_features, precision_recall
from evaluation.splits import halves_by_pairs
from experiments.measures import find_samples, main

SETTING = {"sampler": "ddpm", "nfe": 500, "prior": None}


def cache_file(folder, name: str, images: np.ndarray, **meta) -> None:
    meta = {"model_sha256": "ab" * 32, "code_sha256": "c" * 64, "num_images": len(images), "seed": 0, **SETTING,
            **meta}
    np.savez(folder / f"{name}.npz", images=images, meta=json.dumps(meta), timing="{}")


def test_find_samples_matches_model_setting_and_n_and_names_the_fix(tmp_path, sprites_arrays):
    images = sprites_arrays[0][:30]
    cache_file(tmp_path, "moments", images, prior="moments")
    cache_file(tmp_path, "other_model", images, model_sha256="cd" * 32)
    cache_file(tmp_path, "learned", images, sigma_schedule="learned")
    cache_file(tmp_path, "wanted", images[::-1])
    found, source = find_samples([tmp_path], "abab", SETTING, 30, 0)
    assert source["file"] == "wanted.npz" and np.array_equal(found, images[::-1])
    with pytest.raises(SystemExit, match="no cached samples of model abab .*bench.sampler_frontier"):
        find_samples([tmp_path], "abab", SETTING, 31, 0)


def test_real_half_a_scored_as_a_sample_set(tmp_path, sprites_arrays):
    """Half A as the 'samples' of two models: each space's distance and precision/recall equal the metrics on the
    same features, the terms sum to the distance, and a pair of identical sets has ratio 1 and no precision gap."""
    real, labels = sprites_arrays
    half_a, half_b = halves_by_pairs(labels, 0)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache_file(cache, "a", real[half_a], num_images=len(half_a))
    cache_file(cache, "b", real[half_a], num_images=len(half_a), model_sha256="cd" * 32, seed=1)  # a set's own z
    cfg = {"out": str(tmp_path / "out"), "cache": [str(cache)], "classifier": "configs/sprite_classifier.yaml",
           "networks_dir": str(tmp_path / "nets"),
           "networks": [{"name": "sprite", "weights": "evaluation/weights/sprite_features_v1.safetensors"}],
           "models": {"m1": {"sha256": "abab"}, "m2": {"sha256": "cdcd"}}, "settings": {"ddpm_standard": SETTING},
           "sets": [{"model": "m1", "setting": "ddpm_standard"},
                    {"model": "m2", "setting": "ddpm_standard", "seed": 1}],
           "num_images": len(half_a), "seed": 0, "neighbours": 3}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(tmp_path / "c.yaml")]) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["spaces"] == ["sprite", "pixels"]
    net = load_sprite_feature_net()
    fa, fb = extract_sprite_features(real[half_a], net), extract_sprite_features(real[half_b], net)
    s = res["sets"][0]["scores"]
    assert s["sprite"]["fd"] == pytest.approx(fid_from_features(fa, fb), rel=1e-9)
    assert (s["sprite"]["precision"], s["sprite"]["recall"]) == pytest.approx(precision_recall(fa, fb, 3))
    px = real.reshape(len(real), -1) / 255.0
    assert s["pixels"]["fd"] == pytest.approx(fid_from_features(px[half_a], px[half_b]), rel=1e-9)
    for v in s.values():
        assert v["mean_term"] + v["covariance_term"] == pytest.approx(v["fd"]) and v["mean_term"] >= 0
    pair = res["pairs"][0]
    assert pair["fd_ratio"]["sprite"] == pytest.approx(1.0) and pair["precision_diff"]["pixels"] == 0
    assert pair["recall_diff"]["sprite"] == 0 and pair["recall_diff_se"]["sprite"] == 0
    r = s["sprite"]["recall"]
    assert s["sprite"]["recall_se"] == pytest.approx((r * (1 - r) / len(half_b)) ** 0.5)  # over the real points
    classes = res["sets"][0]["classes"]
    assert sum(c["share"] for c in classes.values()) == pytest.approx(1.0)
    assert classes == res["real_half_a"]["classes"]
    assert (tmp_path / "out" / "pairs.md").read_text().count("\n") == 3
