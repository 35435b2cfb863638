"""FD-DINOv2 through transformers: a tiny randomly initialised DINOv2 saved with save_pretrained (and a
DINOv2-like image processor config) takes exactly the path of a real checkpoint; one command scores several
feature spaces; every space's FD and KID agree with torchmetrics' given the same feature extractor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from evaluation.dinov2 import DINOv2WeightsNotFound, extract_dinov2_features, load_dinov2  # noqa: E402
from evaluation.feature_spaces import FeatureSpaceModule, load_feature_space  # noqa: E402
from evaluation.metrics import fid_from_features  # noqa: E402
from evaluation.score import main as score_main  # noqa: E402
from evaluation.score import score_features  # noqa: E402


@pytest.fixture(scope="module")
def dinov2_folder(tmp_path_factory):
    """A 2-layer, 32-wide DINOv2 with facebook/dinov2-*'s pre-processing (bicubic to 256, crop 224, ImageNet)."""
    from transformers import Dinov2Config, Dinov2Model
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    folder = tmp_path_factory.mktemp("dinov2")
    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          patch_size=14, image_size=224)
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessorPil(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, resample=3,
                         image_mean=IMAGENET_DEFAULT_MEAN, image_std=IMAGENET_DEFAULT_STD).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def net(dinov2_folder):
    return load_dinov2(dinov2_folder, device="cpu")


@pytest.fixture(scope="module")
def sprites(sprites_arrays):
    return sprites_arrays[0][::37][:40]  # 40 sprites of every class


@pytest.mark.parametrize("shape", [(4, 16, 16, 3), (3, 16, 24, 3)])
def test_preprocessing_equals_the_checkpoints_image_processor(net, dinov2_folder, shape):
    from transformers import AutoImageProcessor

    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    theirs = AutoImageProcessor.from_pretrained(dinov2_folder, backend="pil")(list(images), return_tensors="pt")
    ours = net.preprocess(images)
    assert ours.shape == theirs["pixel_values"].shape == (shape[0], 3, 224, 224)
    assert (ours - theirs["pixel_values"]).abs().max() <= 1e-6


def test_features_are_the_cls_token_after_the_last_layer_norm(net, sprites):
    features = extract_dinov2_features(sprites[:3], net, batch_size=2)
    with torch.no_grad():
        hidden = net.model(pixel_values=net.preprocess(sprites[:3])).last_hidden_state
    assert features.shape == (3, 32) and features.dtype == np.float64
    np.testing.assert_allclose(features, hidden[:, 0].double().numpy(), rtol=0, atol=1e-6)


def test_fd_is_zero_for_a_set_with_itself_and_grows_with_pixel_noise(net, sprites):
    rng = np.random.default_rng(2)
    clean = extract_dinov2_features(sprites, net)
    # 0 to round-off: the square root of the covariance product's small eigenvalues keeps about half the digits
    assert abs(fid_from_features(clean, clean)) < 1e-6 * np.trace(np.cov(clean.T))
    fds = []
    for sd in (10, 40, 120):
        noisy = np.clip(sprites + rng.normal(0, sd, sprites.shape), 0, 255).round().astype(np.uint8)
        fds.append(fid_from_features(clean, extract_dinov2_features(noisy, net)))
    assert 0 < fds[0] < fds[1] < fds[2], fds


def test_missing_weights_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, dinov2_folder):
    out = tmp_path / "s.json"
    for source in ("spritediff-tests/no-such-dinov2", str(tmp_path / "empty")):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert score_main(["real", "real", "--features", "sprite", "dinov2", "--dinov2", source,
                           "--json", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: DINOv2") and "\n" not in err and not out.exists(), err
    with pytest.raises(DINOv2WeightsNotFound, match="hf download spritediff-tests/no-such-dinov2"):
        load_dinov2("spritediff-tests/no-such-dinov2")


def test_one_command_scores_several_feature_spaces(tmp_path, dinov2_folder, sprites, capsys):
    np.savez(tmp_path / "a.npz", images=sprites[::2])
    np.savez(tmp_path / "b.npz", images=sprites[1::2])
    assert score_main([str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--features", "sprite", "dinov2",
                       "--dinov2", str(dinov2_folder), "--kid_subsets", "5", "--json", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "s.json").read_text())
    assert list(result["spaces"]) == ["sprite", "dinov2"] and result["n_generated"] == 20
    dino = result["spaces"]["dinov2"]
    assert dino["distance"] == "FD-DINOv2" and "CLS token" in dino["network"] and str(dinov2_folder) in dino["network"]
    assert result["spaces"]["sprite"]["distance"] == "sprite-FID" and "sprite network v1" in printed
    expected = fid_from_features(*(extract_dinov2_features(s, load_dinov2(dinov2_folder)) for s in
                                   (sprites[::2], sprites[1::2])))
    assert dino["fd"] == pytest.approx(expected, rel=1e-9) and 0 <= dino["precision"] <= 1


class _Remembering(FeatureSpaceModule):
    """A feature space's module that extracts each image set once (torchmetrics' FID and KID and ours share it)."""

    def __init__(self, space):
        super().__init__(space)
        self.seen: dict[bytes, torch.Tensor] = {}

    def forward(self, images):
        key = np.ascontiguousarray(images).tobytes()
        if key not in self.seen:
            self.seen[key] = super().forward(images)
        return self.seen[key]


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
@pytest.mark.parametrize("name", ["sprite", "inception", "dinov2"])
def test_fd_and_kid_of_every_feature_space_equal_torchmetrics(name, dinov2_folder, sprites, tmp_path):
    """torchmetrics' FrechetInceptionDistance / KernelInceptionDistance with the space's network as their custom
    feature extractor give our FD to rel 1e-6 (1e-4 for Inception: 3 + 3 images, 2048-d, a singular product whose
    eigenvalues torchmetrics takes with a general eigensolver) and our KID to rel 1e-9."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    from evaluation.inception import FIDInceptionV3

    weights = None
    if name == "inception":  # random weights through the real loading path (pytorch-fid's file is not here)
        torch.manual_seed(0)
        weights = tmp_path / "inception.pth"
        torch.save(FIDInceptionV3().state_dict(), weights)
    n = 3 if name == "inception" else 12
    real, fake = torch.from_numpy(sprites[:n]), torch.from_numpy(sprites[-n:])
    module = _Remembering(load_feature_space(name, inception_weights=weights, dinov2=str(dinov2_folder)))
    fid, kid = FrechetInceptionDistance(feature=module), KernelInceptionDistance(feature=module, subsets=1,
                                                                                  subset_size=n)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    ours = score_features(module(fake).numpy(), module(real).numpy(), kid_subset_size=n, kid_subsets=1)
    assert ours["fd"] == pytest.approx(float(fid.compute()), rel=1e-4 if name == "inception" else 1e-6)
    assert ours["kid"] == pytest.approx(float(kid.compute()[0]), rel=1e-9)
