"""``python -m training.sample --invert / --inpaint``: the files they write, and their one-line errors."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from pipelines import SpritesDDIMPipeline
from pipelines.schedule import make_scheduler
from training.sample import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory, unet):
    path = tmp_path_factory.mktemp("cli") / "pipeline"
    SpritesDDIMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, sprites_arrays):
    d = tmp_path_factory.mktemp("inputs")
    PIL.Image.fromarray(sprites_arrays[0][7]).save(d / "sprite.png")
    np.save(d / "sprites.npy", sprites_arrays[0][:3])
    mask = np.full((16, 16), 255, np.uint8)
    mask[:, 8:] = 0
    PIL.Image.fromarray(mask).save(d / "mask.png")
    return d


def test_invert_writes_latents_that_sample_back(folder, files, tmp_path):
    out = tmp_path / "latents.npy"
    assert main(["--pipeline", str(folder), "--invert", str(files / "sprites.npy"), "--nfe", "5", "--out",
                 str(out)]) == 0
    latents = np.load(out)
    assert latents.shape == (3, 3, 16, 16) and latents.dtype == np.float32
    pipe = SpritesDDIMPipeline.from_pretrained(folder)
    want = pipe.invert(np.load(files / "sprites.npy"), 5)
    np.testing.assert_array_equal(latents, want.numpy())
    grid = tmp_path / "back.png"
    assert main(["--pipeline", str(folder), "--invert", str(files / "sprite.png"), "--nfe", "5", "--out",
                 str(grid)]) == 0
    assert PIL.Image.open(grid).size[0] > 0


def test_inpaint_keeps_the_known_half(folder, files, tmp_path):
    out = tmp_path / "filled.npy"
    assert main(["--pipeline", str(folder), "--inpaint", str(files / "sprite.png"), "--mask", str(files / "mask.png"),
                 "--num_images", "2", "--nfe", "4", "--jump_length", "2", "--jump_n_sample", "2", "--out",
                 str(out)]) == 0
    filled = np.load(out)
    sprite = np.asarray(PIL.Image.open(files / "sprite.png").convert("RGB"))
    assert filled.shape == (2, 16, 16, 3) and (filled[:, :, :8] == sprite[:, :8]).all()


@pytest.mark.parametrize(("extra", "message"), [
    (["--inpaint", "SPRITE"], "--inpaint IMAGE needs --mask MASK"),
    (["--invert", "SPRITE", "--inpaint", "SPRITE", "--mask", "SPRITE"], "give --invert or --inpaint, not both"),
    (["--invert", "missing.png"], "--invert missing.png: no such file"),
    (["--inpaint", "SPRITE", "--mask", "SPRITES"], "mask_image: shape (3, 16, 16, 3)"),
])
def test_edit_errors_are_one_line(folder, files, tmp_path, capsys, extra, message):
    extra = [str(files / "sprite.png") if e == "SPRITE" else str(files / "sprites.npy") if e == "SPRITES" else e
             for e in extra]
    with pytest.raises(SystemExit) as info:
        main(["--pipeline", str(folder), *extra, "--nfe", "2", "--out", str(tmp_path / "x.png")])
    text = str(info.value) if info.value.code not in (0, 2) else capsys.readouterr().err.strip().splitlines()[-1]
    assert message in text
