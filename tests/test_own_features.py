"""A feature network for any labelled image set (evaluation.train_classifier on a folder or a saved data set) and
scores in it (evaluation.score --feature_net), offline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.features import extract_sprite_features, load_sprite_feature_net
from evaluation.score import main as score_main
from evaluation.train_classifier import main as train_main

from .test_image_data import write_folder
from .test_train_own_data import squares

SMALL = ["--config", "configs/sprite_classifier.yaml", "--widths", "[8,8,8]", "--feature_dim", "16", "--epochs", "15",
         "--batch_size", "16"]


@pytest.fixture(scope="module")
def grey_folder(tmp_path_factory):
    """Two classes of 12x12 grey squares, dark and light: a network must tell them apart."""
    root = tmp_path_factory.mktemp("grey") / "data"
    return write_folder(root, {"dark": squares((40,), 20, 12, 0), "light": squares((200,), 20, 12, 1)})


def test_feature_network_of_a_grey_folder_learns_its_classes_and_scores_in_its_space(grey_folder, tmp_path, capsys):
    out = tmp_path / "features"
    assert train_main([*SMALL, "--train_data_dir", str(grey_folder), "--output_dir", str(out)]) == 0
    meta = json.loads((out / "features_v1.json").read_text())
    assert meta["classes"] == ["dark", "light"] and meta["n_images"] == 40 and meta["n_held_out"] == 8
    assert meta["architecture"]["in_channels"] == 1 and meta["architecture"]["image_size"] == 12
    assert meta["held_out_accuracy"] == 1.0  # the classes differ by 160 grey levels
    net = load_sprite_feature_net(out / "features_v1.safetensors")
    images = np.stack(squares((40,), 4, 12, 5))[..., None]
    assert extract_sprite_features(images, net).shape == (4, 16)
    capsys.readouterr()
    report = tmp_path / "score.json"
    assert score_main([str(grey_folder), str(grey_folder), "--feature_net", str(out / "features_v1.safetensors"),
                       "--json", str(report)]) == 0
    result = json.loads(report.read_text())["spaces"]["sprite"]
    assert result["fd"] == pytest.approx(0.0, abs=1e-6) and "features_v1.safetensors" in result["network"]


def test_unlabelled_data_is_refused_in_one_line(tmp_path, capsys):
    write_folder(tmp_path / "d", {"only": squares((1, 2, 3), 4, 8, 0)})
    assert train_main([*SMALL, "--train_data_dir", str(tmp_path / "d"), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "holds a single class" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
