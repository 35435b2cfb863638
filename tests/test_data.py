"""The sprites loader: sources, the datasets.Dataset wrapping, transforms, and bad input."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from pipelines.common import to_output
from sprites.data import (
    COURSE_IMAGES,
    COURSE_LABELS,
    SPRITE_CLASSES,
    SpritesDataError,
    default_data_path,
    images_to_tensor,
    load_sprites,
    read_sprites_arrays,
)
from sprites.images import to_uint8


def test_default_data_is_the_1788_unique_sprites_with_course_labels():
    ds = load_sprites()
    assert len(ds) == 1788
    assert ds.features["label"].names == list(SPRITE_CLASSES)
    assert np.asarray(ds.with_format("numpy")["image"]).shape == (1788, 16, 16, 3)
    counts = np.bincount(np.asarray(ds["label"]), minlength=5)
    # The course label file has counts [8000, 32400, 6000, 35000, 8000] over 50 repetitions.
    assert counts.tolist() == [160, 648, 120, 700, 160]
    # The README says base sprites 894..1787 mirror 0..893 (JPEG noise aside).
    images = np.asarray(ds.with_format("numpy")["image"]).astype(int)
    assert np.abs(images[894:] - images[:894, :, ::-1]).mean() < 8


def test_course_files_from_any_folder_equal_the_npz(tmp_path, sprites_arrays):
    images, labels = sprites_arrays
    real_labels = np.load(default_data_path() / COURSE_LABELS)  # the exact course file, (89400, 5)
    np.save(tmp_path / COURSE_IMAGES, np.tile(images, (50, 1, 1, 1)))
    shutil.copy(default_data_path() / COURSE_LABELS, tmp_path / COURSE_LABELS)
    x, y = read_sprites_arrays(tmp_path)
    assert x.shape == (1788, 16, 16, 3) and np.array_equal(x, images) and np.array_equal(y, labels)
    x_all, y_all = read_sprites_arrays(tmp_path / COURSE_IMAGES, unique=False)
    assert x_all.shape[0] == 89400 and np.array_equal(y_all, real_labels.argmax(1))


def test_images_to_tensor_range_and_round_trip(sprites_arrays):
    """The model's input (images_to_tensor) back through the pipelines' output path (to_output "np", then
    sprites.images.to_uint8, as sample.py saves images): every pixel comes back."""
    images = sprites_arrays[0][:64]
    x = images_to_tensor(images)
    assert x.shape == (64, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(to_output(x, "np", None)), images)


def _write_npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return path


@pytest.mark.parametrize("case, match", [
    ("missing", "not found|no such file"),
    ("shape", r"shape \(10, 3, 16, 16\)"),
    ("dtype", "dtype complex"),
    ("range", r"\[0, 1\]"),
    ("mismatch", "9 labels for 10 images"),
    ("not_onehot", "one-hot"),
    ("truncated", "corrupt or truncated"),
    ("no_arrays", "lacks array"),
])
def test_bad_input_names_the_file_and_the_problem(tmp_path, case, match):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    onehot = np.eye(5)[rng.integers(0, 5, 10)]
    target = tmp_path / "sprites.npz"
    if case == "missing":
        target = tmp_path / "nothing.npz"
    elif case == "shape":
        _write_npz(target, images.transpose(0, 3, 1, 2), onehot)
    elif case == "dtype":
        _write_npz(target, images.astype(np.complex64), onehot)
    elif case == "range":
        _write_npz(target, images.astype(np.float32), onehot)  # floats must be in [0, 1]
    elif case == "mismatch":
        _write_npz(target, images, onehot[:9])
    elif case == "not_onehot":
        _write_npz(target, images, onehot * 2)
    elif case == "truncated":
        _write_npz(target, images, onehot)
        target.write_bytes(target.read_bytes()[:300])
    elif case == "no_arrays":
        np.savez(target, x=images)
    with pytest.raises(SpritesDataError, match=match) as err:
        read_sprites_arrays(target)
    assert str(target) in str(err.value)


def test_truncated_course_npy_is_reported(tmp_path, sprites_arrays):
    np.save(tmp_path / COURSE_IMAGES, sprites_arrays[0])
    (tmp_path / COURSE_IMAGES).write_bytes((tmp_path / COURSE_IMAGES).read_bytes()[:5000])
    shutil.copy(default_data_path() / COURSE_LABELS, tmp_path / COURSE_LABELS)
    with pytest.raises(SpritesDataError, match=f"{COURSE_IMAGES}.*corrupt or truncated"):
        read_sprites_arrays(tmp_path)


def test_folder_without_sprites_says_what_it_needs(tmp_path):
    with pytest.raises(SpritesDataError, match="no sprites found"):
        read_sprites_arrays(tmp_path)


def test_float_images_in_unit_range_are_accepted(tmp_path, sprites_arrays):
    images, labels = sprites_arrays
    _write_npz(tmp_path / "f.npz", images[:20].astype(np.float32) / 255, np.eye(5)[labels[:20]])
    x, y = read_sprites_arrays(tmp_path / "f.npz")
    assert np.array_equal(x, images[:20]) and np.array_equal(y, labels[:20])


def test_hub_name_offline_fails_fast_with_one_line():
    start = time.perf_counter()
    with pytest.raises(SpritesDataError, match="hub data set 'someone/sprites'") as err:
        load_sprites("someone/sprites")
    assert time.perf_counter() - start < 15
    assert "\n" not in str(err.value)
