"""The FID Inception-v3 wiring, tested with random weights (pytorch-fid's weights are not on this machine).

A random network's features mean nothing: these tests check shapes, determinism, pre-processing, state-dict
loading and the error messages, never an FID value.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.inception import (
    FID_WEIGHTS_FILENAME,
    FIDInceptionV3,
    InceptionWeightsNotFound,
    extract_inception_features,
    find_fid_inception_weights,
    load_fid_inception,
)


@pytest.fixture(scope="module")
def random_net():
    torch.manual_seed(0)
    return FIDInceptionV3()


@pytest.fixture(scope="module")
def sprites_batch(sprites_arrays):
    return sprites_arrays[0][[0, 1500]]


@pytest.fixture(scope="module")
def batch_features(random_net, sprites_batch):
    """Features of two sprites, computed once (a forward pass at 299x299 costs about a second per image)."""
    return extract_inception_features(sprites_batch, random_net, batch_size=2)


def test_architecture_matches_inception_v3_without_classifier(random_net):
    n_params = sum(p.numel() for p in random_net.parameters())
    # torchvision's inception_v3 has 27,161,264 parameters; less AuxLogits (3,326,696) and fc (2,049,000):
    assert n_params == 21_785_568
    keys = random_net.state_dict().keys()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
                "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight"):
        assert key in keys
    assert random_net.Mixed_7b.pool == "avg" and random_net.Mixed_7c.pool == "max"


def test_features_shape_and_batch_independence(random_net, sprites_batch, batch_features):
    f = batch_features
    assert f.shape == (2, 2048) and f.dtype == np.float64 and np.isfinite(f).all()
    assert f.std() > 0 and (f > 0).mean() > 0.1  # random init: activations neither dead nor constant
    alone = extract_inception_features(sprites_batch[1:], random_net, batch_size=1)
    np.testing.assert_allclose(alone, f[1:], rtol=1e-4, atol=1e-5)  # eval-mode BN: per image, batch-independent


def test_preprocessing_resizes_bilinearly_to_299_and_scales_to_minus_one_one():
    x = torch.rand(2, 3, 16, 16)
    y = FIDInceptionV3.preprocess(x)
    assert y.shape == (2, 3, 299, 299)
    assert y.min() >= -1 and y.max() <= 1
    expected = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    torch.testing.assert_close(y, expected)
    const = FIDInceptionV3.preprocess(torch.full((1, 3, 16, 16), 0.25))
    torch.testing.assert_close(const, torch.full((1, 3, 299, 299), -0.5))


def test_train_mode_is_refused(random_net):
    random_net.train()
    assert not random_net.training and not random_net.Mixed_5b.branch1x1.bn.training


def test_state_dict_round_trip_through_a_pytorch_fid_style_file(random_net, sprites_batch, batch_features,
                                                                tmp_path):
    """Save a random instance as pytorch-fid's file would be, load it into a fresh network: same features
    (which also shows the forward pass is deterministic)."""
    state = dict(random_net.state_dict())
    state["fc.weight"] = torch.zeros(1008, 4)  # pytorch-fid's file has a classifier, which is not used
    state["fc.bias"] = torch.zeros(1008)
    path = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(state, path)
    torch.manual_seed(123)  # the loaded network starts from different random weights
    loaded = load_fid_inception(path)
    np.testing.assert_array_equal(extract_inception_features(sprites_batch, loaded, batch_size=2), batch_features)


def test_inception_fid_metric_collects_inception_features(random_net, sprites_batch, batch_features):
    """torchmetrics wrapper: the features it stores are the extractor's (its compute is SpriteFID's code path;
    a 2048-d Frechet distance costs about 10 s on a loaded CPU, so it is not run here)."""
    pytest.importorskip("torchmetrics")  # the wrappers' optional third-party base
    from experiments import tm_metrics as tm
    metric = tm.InceptionFID(net=random_net)
    metric.update(torch.from_numpy(sprites_batch), real=True)
    metric.update(sprites_batch[::-1].copy(), real=False)
    real, fake = metric._feature_sets()
    np.testing.assert_array_equal(real, batch_features)
    np.testing.assert_allclose(fake, batch_features[::-1], rtol=1e-4, atol=1e-5)


def test_hub_cache_location_and_environment_variable(random_net, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("SPRITEDIFF_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(InceptionWeightsNotFound) as info:
        load_fid_inception()
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME) in message
    cached = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    torch.save(random_net.state_dict(), cached)
    assert find_fid_inception_weights() == cached
    other = tmp_path / "elsewhere.pth"
    monkeypatch.setenv("SPRITEDIFF_INCEPTION_WEIGHTS", str(other))
    with pytest.raises(InceptionWeightsNotFound, match="elsewhere.pth"):
        find_fid_inception_weights()
    with pytest.raises(InceptionWeightsNotFound, match="nothing is downloaded"):
        load_fid_inception(tmp_path / "missing.pth")


def test_wrong_files_fail_loudly(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="not an FID Inception-v3 state dict"):
        load_fid_inception(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_fid_inception(junk)
