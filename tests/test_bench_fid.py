"""bench.fid_vs_steps end to end on a tiny random-weight pipeline, the memorisation helpers of
evaluation.neighbours (nearest neighbours, mirror handling, summaries) and the output folders of evaluation.output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bench import fid_vs_steps
from evaluation.neighbours import (
    TrainingReference,
    memorisation_summary,
    nearest_neighbours,
    pixel_nearest_neighbours,
    training_reference,
)
from evaluation.output import check_output_dir, output_dir
from evaluation.splits import pair_ids

ROOT = Path(__file__).resolve().parents[1]


def save_tiny_pipeline(path: Path, conditional: bool) -> Path:
    """A random-weight pipeline with the tiny config's UNet (conditional: 5 classes + the null class)."""
    from pipelines import SpritesDDPMPipeline
    from pipelines.schedule import make_scheduler
    from training.config import load_config
    from training.model import build_unet

    cfg = load_config(ROOT / "configs" / "tiny.yaml")
    torch.manual_seed(0)
    unet = build_unet(cfg.unet, conditional)
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(cfg.num_train_timesteps)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipeline", conditional=False)


# ------------------------------------------------------------------------------------------ nearest neighbours


def test_exact_copies_are_at_distance_zero():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    novel = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    generated = np.concatenate([train[[7, 3, 29]], novel])
    dist, index = pixel_nearest_neighbours(generated, train)
    assert dist[:3].tolist() == [0.0, 0.0, 0.0]  # exactly: integer arithmetic in float64
    assert index[:3].tolist() == [7, 3, 29]
    assert (dist[3:] > 1).all()
    brute = np.sqrt(((novel[:, None].astype(float) - train[None].astype(float)) ** 2).sum((2, 3, 4))) / 255
    np.testing.assert_allclose(dist[3:], brute.min(1), rtol=1e-12)
    np.testing.assert_array_equal(index[3:], brute.argmin(1))


def test_one_pixel_difference_is_one_over_255_per_unit():
    a = np.zeros((1, 16, 16, 3), np.uint8)
    b = a.copy()
    b[0, 5, 5, 1] = 255
    c = a.copy()
    c[0, 0, 0, 0] = 3
    dist, _ = pixel_nearest_neighbours(np.concatenate([b, c]), a)
    np.testing.assert_allclose(dist, [1.0, 3 / 255])


def test_mirrored_samples_match_the_flipped_reference():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    flipped = train[[2, 5], :, ::-1]
    refs, groups, source = training_reference(train, include_flips=True)
    assert len(refs) == 20 and source.tolist() == [*range(10), *range(10)]
    np.testing.assert_array_equal(groups[:10], groups[10:])
    dist, index = pixel_nearest_neighbours(flipped, refs)
    assert dist.tolist() == [0.0, 0.0] and source[index].tolist() == [2, 5] and (index >= 10).all()
    without, _ = pixel_nearest_neighbours(flipped, training_reference(train, include_flips=False)[0])
    assert (without > 1).all()


def test_groups_exclude_self_and_mirror():
    """Leave-one-pair-out on a set shaped like the sprites (second half = mirrors of the first)."""
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    images = np.concatenate([base, base[:, :, ::-1]])
    images[3] = images[0] // 2 + 100  # something near sprite 0 but from another pair
    groups = np.arange(12) % 6  # what pair_ids gives for the 1,788 sprites
    dist, index = pixel_nearest_neighbours(images, images, groups, groups)
    assert (dist > 0).all()  # never itself, never its (here exact) mirror
    assert (groups[index] != groups).all()
    assert index[0] in (3, 9)  # the near sprite or its mirror, never sprite 6 (the mirror of 0)
    d_all, _ = nearest_neighbours(images[:1], images[:1], [0], [0])
    assert math.isinf(d_all[0])


def test_pair_ids_pair_each_sprite_with_its_mirror():
    ids = pair_ids(1788)
    assert ids[0] == ids[894] and ids[893] == ids[1787] and len(set(ids.tolist())) == 894


def test_training_reference_on_real_sprites(sprites_arrays):
    images, _ = sprites_arrays
    ref = TrainingReference(images[:1788], include_flips=True, net=None)
    dist, index = ref.pixel(images[[10, 900]])
    assert dist.tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(ref.images[index], images[[10, 900]])  # 900 equals the flip of 6 exactly
    real = ref.real_leave_pair_out()
    assert real["feature"] is None and real["pixel"].shape == (1788,)
    assert np.isfinite(real["pixel"]).all() and np.median(real["pixel"]) > 1  # not its own JPEG-noisy mirror


def test_memorisation_summary_shares():
    real = np.arange(1, 101, dtype=float)  # quantiles 0.05 -> 5.95, 0.5 -> 50.5
    generated = np.array([0.0, 0.0, 3.0, 60.0, 70.0])
    s = memorisation_summary(generated, real, (0.05, 0.5))["pixel"]
    assert s["share_below_real_quantile"] == {"0.05": 0.6, "0.5": 0.6}
    assert s["share_exact_copies"] == 0.4 and s["generated_median"] == 3.0
    assert s["real_median"] == 50.5 and s["real_quantiles"]["0.05"] == pytest.approx(5.95)
    with_feat = memorisation_summary(generated, real, (0.5,), generated * 2, real * 2)
    assert with_feat["feature"]["share_below_real_quantile"]["0.5"] == 0.6


# ---------------------------------------------------------------------------------------------- output folders


def test_output_folder_refuses_others(tmp_path):
    target = tmp_path / "out"
    with output_dir(target, "results.json", overwrite=False) as tmp:
        (tmp / "results.json").write_text("{}")
    assert (target / "results.json").is_file()
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_output_dir(target, "results.json", overwrite=False)
    check_output_dir(target, "results.json", overwrite=True)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an output"):
        check_output_dir(other, "results.json", overwrite=True)
    with pytest.raises(RuntimeError), output_dir(tmp_path / "never", "results.json", overwrite=False):
        raise RuntimeError("fails before the marker")
    assert not (tmp_path / "never").exists() and not list(tmp_path.glob(".never*"))


# ---------------------------------------------------------------------------------------------- end to end


def test_settings_order_and_names():
    cfg = fid_vs_steps.BenchConfig(ddim_steps=[20, 10], etas=[0.0, 1.0])
    names = [s["name"] for s in fid_vs_steps.settings_of(cfg, 500)]
    assert names == ["DDPM 500", "DDIM 10 eta=0", "DDIM 20 eta=0", "DDIM 10 eta=1", "DDIM 20 eta=1"]


def test_fid_vs_steps_end_to_end(tiny_pipeline, tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({"num_images": 6, "batch_size": 4, "ddpm_steps": 3, "ddim_steps": [2],
                                      "etas": [0.0, 1.0], "kid_subsets": 3, "grid_images": 6, "closest_pairs": 3}))
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--pipeline", str(tiny_pipeline), "--config", str(config), "--out", str(out), "--cache", str(cache)]
    assert fid_vs_steps.main(args) == 0
    table = capsys.readouterr().out
    assert "| DDPM 3 | 3 |" in table and "| DDIM 2 eta=1 | 2 |" in table and "real half A (6) vs B" in table
    result = json.loads((out / "results.json").read_text())
    assert {"date", "command", "pipeline", "config", "machine", "floor", "real_nn", "rows", "figures"} <= set(result)
    assert [r["name"] for r in result["rows"]] == ["DDPM 3", "DDIM 2 eta=0", "DDIM 2 eta=1"]
    for row in result["rows"]:
        values = [row["timing"]["wall_s"], row["timing"]["images_per_s"], row["time_ratio_to_ddpm"]]
        for ref in ("vs_half_b", "vs_all"):
            values += [row[ref]["sprite_fid"], row[ref]["sprite_kid"]]
        for space in ("pixel", "feature"):
            m = row["memorisation"][space]
            values += [m["generated_median"], *m["share_below_real_quantile"].values()]
        assert all(math.isfinite(v) for v in values), row["name"]
        assert row["vs_half_b"]["n"] == 6 and row["vs_all"]["n_reference"] == 1788
    assert result["floor"]["n"] == 6 and result["real_nn"]["pixel"]["n"] == 1788
    for name in ("fid_vs_steps.png", "nn_histograms.png", "same_noise.png", "grid_ddpm_003.png",
                 "closest_ddim_002_eta1.png"):
        assert name in result["figures"] and (out / name).stat().st_size > 0
    assert (out / "table.md").read_text().startswith("| setting |")
    assert len(list(cache.glob("*.npz"))) == 3

    with pytest.raises(SystemExit, match="--overwrite"):
        fid_vs_steps.main(args)
    assert fid_vs_steps.main([*args, "--overwrite"]) == 0  # samples come from the cache this time
    again = json.loads((out / "results.json").read_text())
    assert all(r["timing"]["from_cache"] for r in again["rows"])
    assert [r["vs_all"]["sprite_fid"] for r in again["rows"]] == [r["vs_all"]["sprite_fid"] for r in result["rows"]]
