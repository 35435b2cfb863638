"""Training and sampling end to end on small data made here: an image folder with class subfolders (colour) and a
``Dataset`` saved to disk with a ``ClassLabel`` (grey); bad data stops the trainer with one line and writes nothing."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines import SpritesDDIMPipeline
from pipelines.prior import MOMENTS_FILE, DataMoments

from .test_image_data import write_folder
from .train_helpers import ROOT, train

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def squares(colour, n: int, size: int, seed: int) -> list[np.ndarray]:
    """``n`` noisy images of a coloured square on white."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.full((size, size, len(colour)), 255, np.int64)
        a[size // 4:3 * size // 4, size // 4:3 * size // 4] = colour
        a = np.clip(a + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
        out.append(a[..., 0] if len(colour) == 1 else a)
    return out


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour") / "shapes"
    return write_folder(root, {name: squares(c, 8, 12, i) for i, (name, c) in enumerate(COLOURS.items())})


def sample_cli(pipeline, out, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.sample", "--pipeline", str(pipeline), "--sampler", "ddim",
                           "--nfe", "2", "--num_images", "3", "--out", str(out), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_colour_folder_trains_at_its_own_size_and_samples(colour_folder, tmp_path):
    out = tmp_path / "run"
    r = train(out, "--train_data_dir", str(colour_folder))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "data: 24 images 12x12 RGB, 3 classes (blue, green, red)" in (out / "log.txt").read_text()
    assert DataMoments.load(out / "pipeline" / MOMENTS_FILE).shape == (3, 12, 12)
    pipe = SpritesDDIMPipeline.from_pretrained(out / "pipeline")
    assert (pipe.unet.config.sample_size, pipe.unet.config.in_channels) == (12, 3)
    grid = Image.open(out / "samples" / "final.png")
    assert grid.mode == "RGB"
    r = sample_cli(out / "pipeline", tmp_path / "s.npy", "--prior", "moments")
    assert r.returncode == 0, r.stderr[-1000:]
    assert np.load(tmp_path / "s.npy").shape == (3, 12, 12, 3)


def test_grey_saved_dataset_trains_grey_and_saves_grey_grids(tmp_path):
    import datasets

    images = [Image.fromarray(a) for a in squares((40,), 8, 8, 0) + squares((160,), 8, 8, 1)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["dark", "light"])})
    datasets.Dataset.from_dict({"image": images, "label": [0] * 8 + [1] * 8}, features=features).save_to_disk(
        tmp_path / "ds")
    out = tmp_path / "run"
    r = train(out, "--dataset_name", str(tmp_path / "ds"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert DataMoments.load(out / "pipeline" / MOMENTS_FILE).shape == (1, 8, 8)
    assert Image.open(out / "samples" / "final.png").mode == "L"
    r = sample_cli(out / "pipeline", tmp_path / "g.png", "--prior", "moments")
    assert r.returncode == 0, r.stderr[-1000:]
    assert Image.open(tmp_path / "g.png").mode == "L"


@pytest.mark.parametrize("case, match", [
    ("empty", "the folder is empty"),
    ("small", "8 images, fewer than one batch \\(train_batch_size 16\\)"),
    ("label_column", "no label column 'kind'"),
    ("halving", "--resolution 10: .* the nearest size that works is 12: set --resolution 12"),
])
def test_bad_data_stops_the_trainer_with_one_line_and_writes_nothing(tmp_path, case, match, capsys):
    from training.train import main

    from .train_helpers import MICRO

    data = tmp_path / "data"
    data.mkdir()
    extra = ["--train_data_dir", str(data)]
    if case in ("small", "halving"):
        write_folder(data, {"a": squares((1, 2, 3), 8 if case == "small" else 16, 12, 0)})
        extra += ["--resolution", "10"] if case == "halving" else []
    elif case == "label_column":
        import datasets

        datasets.Dataset.from_dict({"image": np.zeros((20, 8, 8, 3), np.uint8)}).save_to_disk(data / "ds")
        extra = ["--dataset_name", str(data / "ds"), "--label_column", "kind"]
    out = tmp_path / "run"
    capsys.readouterr()  # the data set's own progress lines
    assert main([*MICRO, "--output_dir", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and re.search(match, err)
    assert not out.exists()


@pytest.mark.slow  # a training run and three sampling commands: over a minute on a busy 2-core machine
def test_class_subfolders_train_a_conditional_model_sampled_by_name(colour_folder, tmp_path):
    """The folder's names reach the pipeline folder; a name samples exactly what its index samples, from Python and
    from the command line, with and without guidance."""
    out = tmp_path / "run"
    r = train(out, "--train_data_dir", str(colour_folder), "--conditional", "true")
    assert r.returncode == 0, r.stderr[-2000:]
    pipe = SpritesDDIMPipeline.from_pretrained(out / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.num_class_embeds == 4 and tuple(pipe.class_names) == ("blue", "green", "red")

    def draw(label, scale=1.0):
        return pipe(batch_size=2, num_inference_steps=2, class_labels=label, guidance_scale=scale,
                    generator=torch.Generator().manual_seed(0), output_type="np").images

    for scale in (1.0, 2.0):
        assert np.array_equal(draw("red", scale), draw(2, scale))
    assert not np.array_equal(draw("red"), draw("blue"))
    for label in ("red", "2"):
        r = sample_cli(out / "pipeline", tmp_path / f"{label}.npy", "--class_labels", label)
        assert r.returncode == 0, r.stderr[-1000:]
    assert np.array_equal(np.load(tmp_path / "red.npy"), np.load(tmp_path / "2.npy"))
    r = sample_cli(out / "pipeline", tmp_path / "x.npy", "--class_labels", "purple")
    assert r.returncode != 0 and "purple" in r.stderr
