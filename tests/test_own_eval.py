"""Evaluation during training on your own data: scored in a feature network trained on that data."""

from __future__ import annotations

import json
import math

import pytest

from evaluation.train_classifier import main as train_classifier

from .test_image_data import write_folder
from .test_own_features import SMALL
from .test_train_own_data import COLOURS, squares
from .train_helpers import train

GREYS = {"dark": (40,), "light": (200,)}


@pytest.fixture(scope="module", params=["rgb", "grey"])
def folder_and_net(request, tmp_path_factory):
    """A folder of coloured (or grey) squares and a feature network trained on it."""
    root = tmp_path_factory.mktemp(f"own_eval_{request.param}")
    colours = COLOURS if request.param == "rgb" else GREYS
    folder = write_folder(root / "shapes", {name: squares(c, 8, 12, i) for i, (name, c) in enumerate(colours.items())})
    assert train_classifier([*SMALL, "--epochs", "3", "--train_data_dir", str(folder),
                             "--output_dir", str(root / "net")]) == 0
    return folder, root / "net" / "features_v1.safetensors"


def test_eval_every_on_own_data_writes_finite_rows(folder_and_net, tmp_path):
    folder, net = folder_and_net
    out = tmp_path / "run"
    r = train(out, "--train_data_dir", str(folder), "--eval_every", "6", "--eval_samples", "8",
              "--eval_batch_size", "8", "--eval_feature_net", str(net))
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [6, 12]
    for row in rows:
        for key in ("fid_ddim50_moments", "fid_ddim50_standard", "floor_fid"):
            assert math.isfinite(row[key]) and row[key] >= 0
        assert 0 <= row["precision_ddim50_moments"] <= 1 and 0 <= row["memorised_ddim50_moments"] <= 1
    assert (out / "best" / "model_index.json").is_file()


@pytest.mark.parametrize("net", [None, "missing.safetensors"])
def test_own_data_without_a_feature_network_is_refused_in_one_line(folder_and_net, tmp_path, net):
    folder, _ = folder_and_net
    out = tmp_path / "run"
    r = train(out, "--train_data_dir", str(folder), "--eval_every", "6",
              *(["--eval_feature_net", net] if net else []))
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "eval_feature_net" in err[0] and "evaluation.train_classifier" in err[0]
    assert not out.exists()
