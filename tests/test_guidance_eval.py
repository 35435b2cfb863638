"""Classifier-free guidance evaluation: class-match computation, class predictions of the sprite network, label
helpers, and bench.guidance end to end on a tiny random-weight conditional pipeline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench import guidance
from evaluation.features import load_sprite_feature_net
from evaluation.scoring import class_match, predict_classes
from tests.test_bench_fid import save_tiny_pipeline


def test_class_match_hand_made_case():
    requested = [0, 1, 2, 2, 3, 0]
    predicted = [0, 1, 1, 2, 4, 0]
    m = class_match(predicted, requested)
    assert m["match"] == pytest.approx(4 / 6) and m["n"] == 6
    assert m["per_class"] == [1.0, 1.0, 0.5, 0.0, None]  # class 4 never requested
    assert m["balanced"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    confusion = np.array(m["confusion"])
    assert confusion[2, 1] == 1 and confusion[3, 4] == 1 and confusion.sum() == 6 and np.trace(confusion) == 4
    with pytest.raises(ValueError):
        class_match([0, 1], [0])
    with pytest.raises(ValueError):
        class_match([5], [0])


def test_predicted_classes_of_real_sprites(sprites_arrays):
    images, labels = sprites_arrays
    idx = np.arange(0, 1788, 36)
    predicted, probs = predict_classes(images[idx], load_sprite_feature_net())
    assert probs.shape == (len(idx), 5) and np.allclose(probs.sum(1), 1)
    assert class_match(predicted, labels[idx])["match"] >= 0.9
    as_float = images[idx].astype(np.float32) / 127.5 - 1  # floats in [-1, 1] give the same classes
    np.testing.assert_array_equal(predict_classes(as_float, load_sprite_feature_net())[0], predicted)


def test_label_helpers(sprites_arrays):
    _, labels = sprites_arrays
    req = guidance.labels_in_shares(np.bincount(labels, minlength=5) / len(labels), 100, seed=0)
    assert len(req) == 100 and np.bincount(req, minlength=5).tolist() == [9, 36, 7, 39, 9]
    assert guidance.mix_weights("hero", "food", 0.75) == [0.75, 0.0, 0.25, 0.0, 0.0]
    shares = guidance.mix_shares(np.array([0, 0, 2, 3]), "hero", "food")
    assert shares == {"hero": 0.5, "food": 0.25, "other": 0.25}


def test_guidance_end_to_end(tmp_path, capsys):
    pipeline = save_tiny_pipeline(tmp_path / "cond", conditional=True)
    out = tmp_path / "out"
    assert guidance.main(["--pipeline", str(pipeline), "--num_images", "6", "--num_per_class", "2", "--steps", "2",
                          "--scales", "0", "1", "2", "--batch_size", "8", "--kid_subsets", "3",
                          "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| w | match |" in table and "| hero 0.75 + food 0.25 |" in table
    result = json.loads((out / "results.json").read_text())
    assert [r["scale"] for r in result["rows"]] == [0, 1, 2]
    assert sum(result["requested_class_counts"]) == 6 and math.isfinite(result["chance_match_unconditional"])
    for row in result["rows"]:
        values = [row["match"]["match"], row["match"]["balanced"], row["vs_half_b"]["sprite_fid"],
                  row["vs_all"]["sprite_kid"], row["timing"]["wall_s"], row["grid_match"]["match"]]
        assert all(math.isfinite(v) for v in values)
        assert row["match"]["n"] == 6 and row["grid_match"]["n"] == 10
        share = row["memorisation"]["share_below_real_quantile"]["0.05"]
        assert 0 <= share <= 1 and f"{share:.1%}" in table
    assert len(result["mixes"]) == 6 and all(len(m["by_scale"]) == 3 for m in result["mixes"])
    shares = result["mixes"][0]["by_scale"][0]["shares"]
    assert set(shares) == {"hero", "food", "other"} and sum(shares.values()) == pytest.approx(1)
    assert set(result["figures"]) == {"classes.png", "mixes.png", "guidance.png"}
    assert all((out / f).stat().st_size > 0 for f in result["figures"])


def test_guidance_refuses_an_unconditional_pipeline(tmp_path):
    pipeline = save_tiny_pipeline(tmp_path / "uncond", conditional=False)
    with pytest.raises(SystemExit, match="class-conditional"):
        guidance.main(["--pipeline", str(pipeline), "--out", str(tmp_path / "out")])


def test_guidance_from_the_moments_prior(tmp_path, sprites_arrays):
    from pipelines.prior import DataMoments
    from sprites.data import images_to_tensor

    pipeline = save_tiny_pipeline(tmp_path / "cond", conditional=True)
    args = ["--pipeline", str(pipeline), "--num_images", "4", "--num_per_class", "1", "--steps", "2", "--scales",
            "1", "--batch_size", "8", "--kid_subsets", "2", "--no_mixes", "--prior", "moments"]
    with pytest.raises(SystemExit, match="error: prior='moments' needs .*data_moments"):  # one line, no traceback
        guidance.main([*args, "--out", str(tmp_path / "none")])
    images, _ = sprites_arrays
    DataMoments.from_images(images_to_tensor(images[:200]), hflip=False).save(pipeline)
    assert guidance.main([*args, "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["prior"] == "moments" and math.isfinite(result["rows"][0]["vs_half_b"]["sprite_fid"])
