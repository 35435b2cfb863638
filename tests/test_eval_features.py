"""The committed sprite feature network, sprite-FID/KID, the pair split and the classifier training script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluation.features import (
    DEFAULT_WEIGHTS,
    SPRITE_FEATURES_VERSION,
    extract_sprite_features,
    load_sprite_feature_meta,
    load_sprite_feature_net,
    sprite_fid,
    sprite_kid,
    to_uint8_nhwc,
)
from evaluation.metrics import fid_from_features, kid_from_features
from evaluation.splits import data_sha256, halves_by_pairs, pair_ids, split_by_pairs
from sprites.data import images_to_tensor


@pytest.fixture(scope="module")
def net():
    return load_sprite_feature_net()


@pytest.fixture(scope="module")
def meta():
    return load_sprite_feature_meta()


def test_committed_weights_are_small_versioned_and_match_the_data(meta, sprites_arrays):
    images, labels = sprites_arrays
    assert DEFAULT_WEIGHTS.stat().st_size < 500 * 1024
    assert meta["version"] == SPRITE_FEATURES_VERSION == "v1"
    assert meta["feature_dim"] == 128
    assert meta["held_out_accuracy"] > 0.9
    assert meta["data_sha256"] == data_sha256(images, labels)  # the shared sprites are the training data
    held = np.asarray(meta["held_out_indices"])
    assert len(held) == meta["n_held_out"] and np.isin(held + 894, held).sum() + np.isin(held - 894, held).sum() \
        == len(held)  # every held-out sprite's mirror is held out too


def test_classifies_held_out_sprites_well_above_chance(net, meta, sprites_arrays):
    images, labels = sprites_arrays
    held = np.asarray(meta["held_out_indices"])
    with torch.no_grad():
        pred = net(images_to_tensor(images[held])).argmax(1).numpy()
    accuracy = (pred == labels[held]).mean()
    assert accuracy == pytest.approx(meta["held_out_accuracy"], abs=1e-6)  # the recorded number is reproducible
    assert accuracy > 0.9  # chance is 0.2 (0.39 always answering the largest class)


def test_features_of_a_mirrored_sprite_are_close(net, sprites_arrays):
    images, _ = sprites_arrays
    x = images[:200]
    f = extract_sprite_features(x, net)
    f_flip = extract_sprite_features(x[:, :, ::-1], net)
    flip_dist = np.linalg.norm(f - f_flip, axis=1)
    other_dist = np.linalg.norm(f - np.roll(f, 1, axis=0), axis=1)  # a different sprite
    assert np.median(flip_dist) < 0.25 * np.median(other_dist)


def test_input_formats_give_the_same_features(net, sprites_arrays):
    images, _ = sprites_arrays
    x = images[:16]
    ref = extract_sprite_features(x, net)
    assert ref.shape == (16, 128) and ref.dtype == np.float64
    np.testing.assert_array_equal(extract_sprite_features(torch.from_numpy(x), net), ref)
    np.testing.assert_array_equal(extract_sprite_features(images_to_tensor(x), net), ref)  # float NCHW [-1, 1]
    np.testing.assert_array_equal(extract_sprite_features(x / 255.0, net, value_range=(0, 1)), ref)  # float NHWC
    np.testing.assert_allclose(extract_sprite_features(x, net, batch_size=5), ref, atol=1e-5)  # float32 round-off
    with pytest.raises(ValueError, match="16x16"):
        extract_sprite_features(np.zeros((2, 32, 32, 3), np.uint8), net)


def test_to_uint8_quantises_and_clips():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.2]).reshape(1, 1, 5, 1).expand(1, 3, 5, 1)  # NCHW
    out = to_uint8_nhwc(x)
    assert out.shape == (1, 5, 1, 3) and out[0, :, 0, 0].tolist() == [0, 0, 128, 255, 255]
    with pytest.raises(ValueError, match="NaN"):
        to_uint8_nhwc(np.full((1, 4, 4, 3), np.nan))
    with pytest.raises(ValueError, match="colour channels"):
        to_uint8_nhwc(np.zeros((1, 4, 4, 2)))


def test_sprite_fid_floor_is_far_below_corrupted_sprites(net, sprites_arrays):
    images, labels = sprites_arrays
    a, b = halves_by_pairs(labels, seed=0)
    assert sprite_fid(images[a], images[a], net) == pytest.approx(0.0, abs=1e-9)  # dead units: singular cov
    noise = np.random.default_rng(0).integers(0, 256, images[a].shape, dtype=np.uint8)
    blurred = ((images[a].astype(np.uint16) + np.roll(images[a], 1, 1) + np.roll(images[a], 1, 2)) // 3)
    fa, fb, f_noise, f_blur = (extract_sprite_features(x, net) for x in (images[a], images[b], noise,
                                                                        blurred.astype(np.uint8)))
    floor = fid_from_features(fa, fb)
    assert floor < 0.1
    assert fid_from_features(f_noise, fb) > 100 * floor
    assert fid_from_features(f_blur, fb) > 20 * floor
    kid_floor, _ = kid_from_features(fa, fb, subset_size=200, n_subsets=10)
    kid_noise, _ = kid_from_features(f_noise, fb, subset_size=200, n_subsets=10)
    assert kid_noise > 0.1 and abs(kid_floor) < 0.01
    assert sprite_kid(images[a][:50], images[b][:50], net, subset_size=50) == kid_from_features(fa[:50], fb[:50])


def test_pair_split_keeps_mirrors_together_and_stratifies(sprites_arrays):
    _, labels = sprites_arrays
    train, held = split_by_pairs(labels, 0.2, seed=0)
    assert len(train) + len(held) == len(labels) and not np.intersect1d(train, held).size
    pairs = pair_ids(len(labels))
    assert not np.intersect1d(pairs[train], pairs[held]).size
    counts_all, counts_held = np.bincount(labels), np.bincount(labels[held], minlength=5)
    np.testing.assert_allclose(counts_held / counts_all, 0.2, atol=0.02)
    np.testing.assert_array_equal(split_by_pairs(labels, 0.2, seed=0)[1], held)
    assert not np.array_equal(split_by_pairs(labels, 0.2, seed=1)[1], held)
    a, b = halves_by_pairs(labels, seed=0)
    assert abs(len(a) - len(b)) <= 10
    assert pair_ids(10).tolist() == list(range(10))  # other sizes: unpaired
    with pytest.raises(ValueError):
        split_by_pairs(labels, 1.0, 0)


def test_missing_weights_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_classifier.py"):
        load_sprite_feature_net(tmp_path / "nope.safetensors")


def test_train_classifier_script_runs_and_its_output_loads(tmp_path, sprites_arrays):
    from evaluation.train_classifier import main

    rc = main(["--config", "configs/sprite_classifier.yaml", "--epochs", "1", "--output_dir", str(tmp_path),
               "--version", "test", "--widths", "[8, 8, 16]", "--feature_dim", "16"])
    assert rc == 0
    path = tmp_path / "sprite_features_test.safetensors"
    loaded = load_sprite_feature_net(path)
    meta = load_sprite_feature_meta(path)
    assert meta["version"] == "test" and meta["feature_dim"] == 16 and 0 <= meta["held_out_accuracy"] <= 1
    assert extract_sprite_features(sprites_arrays[0][:4], loaded).shape == (4, 16)


def test_train_classifier_rejects_bad_config(capsys):
    from evaluation.train_classifier import main

    assert main(["--config", "configs/sprite_classifier.yaml", "--epoch", "3"]) == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err
    assert main(["--config", "configs/sprite_classifier.yaml", "--held_out_fraction", "1.5"]) == 2


def test_calibrate_orders_corruptions_above_the_floor(tmp_path):
    """A small run of ``python -m experiments.calibrate``: mirrors stay at the floor, damage scores far above; its
    tables and numbers are written for the docs to quote."""
    from experiments.calibrate import calibrate, to_markdown, write_outputs

    names = ("uniform noise images", "Gaussian blur sigma=1 px", "10 sprites repeated", "mirrored (hflip)")
    result = calibrate(seeds=1, sizes=(100,), kid_subsets=5, only=names)
    assert result["data_matches_weights"] and result["weights_version"] == "v1"
    rows = {r["set"]: r["sprite_fid"] for r in result["rows"]}
    floor = rows["half A vs half B (no corruption)"]
    assert rows["mirrored (hflip)"] == pytest.approx(floor, rel=0.2)
    for name in names[:3]:
        assert rows[name] > 50 * floor, name
    assert "| 100 |" in to_markdown(result)
    out = write_outputs(result, tmp_path / "calibration")
    assert json.loads((out / "results.json").read_text()) == result
    for name in ("floor", "sanity"):
        assert (out / f"{name}.md").read_text().strip() in to_markdown(result)
    assert (out / "sanity.md").read_text().count("\n") == len(result["rows"]) + 2
