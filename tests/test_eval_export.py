"""PNG export for pytorch-fid, and the torchmetrics wrappers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.export import export_png_folder, export_real_sprites, load_generated_images, main
from evaluation.features import sprite_fid, sprite_kid, to_uint8_nhwc


def _read_folder(directory) -> np.ndarray:
    files = sorted(directory.glob("*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_png_folder_round_trips_exactly(tmp_path, sprites_arrays):
    images = sprites_arrays[0][:20]
    out = export_png_folder(images, tmp_path / "real")
    np.testing.assert_array_equal(_read_folder(out), images)
    floats = torch.rand(5, 3, 16, 16) * 2 - 1
    out2 = export_png_folder(floats, tmp_path / "gen")
    np.testing.assert_array_equal(_read_folder(out2), to_uint8_nhwc(floats))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


def test_existing_folders_are_protected(tmp_path, sprites_arrays):
    images = sprites_arrays[0][:3]
    out = export_png_folder(images, tmp_path / "d")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_png_folder(images, out)
    export_png_folder(images[:2], out, overwrite=True)
    assert len(list(out.glob("*.png"))) == 2  # replaced, not merged
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not images"):
        export_png_folder(images, out, overwrite=True)
    assert (out / "notes.txt").exists()


def test_interrupted_export_leaves_no_folder(tmp_path, sprites_arrays, monkeypatch):
    calls = {"n": 0}
    original = Image.Image.save

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_png_folder(sprites_arrays[0][:5], tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_real_sprites_and_generated_npz_through_the_command_line(tmp_path, sprites_arrays, capsys):
    gen = np.random.default_rng(0).uniform(-1, 1, (7, 3, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "samples.npz", images=gen)
    rc = main(["--real", str(tmp_path / "real"), "--generated", str(tmp_path / "gen"),
               "--generated_from", str(tmp_path / "samples.npz")])
    assert rc == 0
    assert "python -m pytorch_fid" in capsys.readouterr().out
    np.testing.assert_array_equal(_read_folder(tmp_path / "real"), sprites_arrays[0])
    np.testing.assert_array_equal(_read_folder(tmp_path / "gen"), to_uint8_nhwc(gen))
    assert main(["--generated", str(tmp_path / "g2"), "--generated_from", str(tmp_path / "none.npz")]) == 2


def test_real_subsets_follow_the_feature_network_split(tmp_path):
    from evaluation.features import load_sprite_feature_meta

    out = export_real_sprites(tmp_path / "held", subset="held_out")
    assert len(list(out.glob("*.png"))) == len(load_sprite_feature_meta()["held_out_indices"])
    with pytest.raises(ValueError, match="subset"):
        export_real_sprites(tmp_path / "x", subset="test")


def test_generated_sources(tmp_path):
    u8 = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", u8)
    np.testing.assert_array_equal(load_generated_images(tmp_path / "a.npy"), u8)
    np.savez(tmp_path / "two.npz", x=u8, y=u8)
    with pytest.raises(ValueError, match="'images'"):
        load_generated_images(tmp_path / "two.npz")
    np.testing.assert_array_equal(load_generated_images(tmp_path / "a.npy", value_range=(0, 1)), u8)


def test_sampling_a_saved_pipeline_folder(tmp_path):
    from diffusers import DDPMScheduler, UNet2DModel

    import pipelines

    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    scheduler = DDPMScheduler(num_train_timesteps=20)
    pipelines.SpritesDDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    for sampler in ("ddpm", "ddim"):
        images = load_generated_images(tmp_path / "pipe", num_images=3, sampler=sampler, steps=2, batch_size=2)
        assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    again = load_generated_images(tmp_path / "pipe", num_images=3, sampler="ddim", steps=2, batch_size=2)
    np.testing.assert_array_equal(again, images)  # seeded


# ---- torchmetrics wrappers ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_sprite_fid_metric_matches_the_function(sprites_arrays):
    pytest.importorskip("torchmetrics")  # the wrappers' optional third-party base
    from experiments import tm_metrics as tm
    images = sprites_arrays[0]
    real, fake = images[::4], images[1::4][:200]
    metric = tm.SpriteFID()
    metric.update(torch.from_numpy(real[:200]), real=True)
    metric.update(real[200:], real=True)
    metric.update(fake, real=False)
    value = metric.compute()
    assert value.dtype == torch.float64
    assert float(value) == pytest.approx(sprite_fid(real, fake), rel=1e-9)
    kept = tm.SpriteFID(reset_real_features=False)
    kept.update(real, real=True)
    kept.update(fake, real=False)
    kept.reset()
    with pytest.raises(RuntimeError, match="update"):
        kept.compute()
    kept.update(images[1::4][200:], real=False)
    assert float(kept.compute()) == pytest.approx(sprite_fid(real, images[1::4][200:]), rel=1e-9)


def test_sprite_kid_metric_matches_the_function(sprites_arrays):
    pytest.importorskip("torchmetrics")  # the wrappers' optional third-party base
    from experiments import tm_metrics as tm
    images = sprites_arrays[0]
    metric = tm.SpriteKID(subset_size=100, n_subsets=5, seed=2)
    metric.update(images[:400], real=True)
    metric.update(images[400:600], real=False)
    mean, std = metric.compute()
    ref = sprite_kid(images[:400], images[400:600], subset_size=100, n_subsets=5, seed=2)
    assert (float(mean), float(std)) == pytest.approx(ref, rel=1e-9)


def test_score_command_on_a_png_folder_and_an_npz(tmp_path, sprites_arrays, capsys):
    from evaluation.score import main as score_main

    images = sprites_arrays[0]
    export_png_folder(images[::6], tmp_path / "a")
    np.savez(tmp_path / "b.npz", images=images[1::6])
    assert score_main([str(tmp_path / "a"), str(tmp_path / "b.npz"), "--kid_subsets", "5",
                       "--json", str(tmp_path / "s.json")]) == 0
    result = json.loads((tmp_path / "s.json").read_text())
    sprite = result["spaces"]["sprite"]
    assert sprite["fd"] == pytest.approx(sprite_fid(images[::6], images[1::6]), rel=1e-9)
    assert result["n_generated"] == 298 and "sprite network v1" in sprite["network"]
    assert list(result["spaces"]) == ["sprite"]  # the default: the offline space only
    capsys.readouterr()
    assert score_main([str(tmp_path / "a"), "--inception_weights", str(tmp_path / "none.pth")]) == 2
    assert "nothing is downloaded" in capsys.readouterr().err


def test_torchmetrics_own_fid_with_the_sprite_feature_module_agrees(sprites_arrays):
    """torchmetrics' FrechetInceptionDistance with our feature module = our sprite-FID on the same sprites."""
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    from evaluation.features import SpriteFeatureExtractor

    images = torch.from_numpy(sprites_arrays[0])
    metric = fid_module.FrechetInceptionDistance(feature=SpriteFeatureExtractor())
    metric.update(images[::3], real=True)
    metric.update(images[1::3], real=False)
    assert float(metric.compute()) == pytest.approx(sprite_fid(images[::3], images[1::3]), rel=1e-6)
