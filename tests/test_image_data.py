"""The image-set layer: the default sprites as the course's arrays, image folders, saved data sets and arrays of
any small shape, the PNG exporter's round trip, and one line for each kind of bad input."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from sprites.data import (
    COURSE_IMAGES,
    COURSE_LABELS,
    SPRITE_CLASSES,
    SpritesDataError,
    default_data_path,
    fit_images,
    images_to_tensor,
    read_sprites_arrays,
)
from sprites.export import export_png
from sprites.image_data import load_image_set, read_dataset, read_image_folder, set_from_arrays
from training.config import load_config
from training.training_data import check_batch, check_halving, fit_unet_to_data, load_training_data

# sha256 of the default data as the loader gave it before image folders and data sets were added (computed on the
# shared sprites .npz, sha256 7415aee7...9387): uint8 images, int64 labels, and the trainer's float32 tensor.
OLD_IMAGES = "337caa0f2b9632be4863f14b3726b563d69990494a7716fc40730a823843c524"
OLD_LABELS = "622deee17c4ff2fc5282281fc46cc73421b2e2c2e5e64fdf2df44e7f0a8af399"
OLD_TENSOR = "a0f137cd4d3aa93d8ad631cb898e9bfb497eb8f044f8306af2edf3b55be3c482"


def sha(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("config", ["configs/sprites_ddpm.yaml", "configs/tiny.yaml",
                                    "configs/sprites_conditional.yaml"])
def test_default_data_loads_exactly_as_before(config):
    """Same images, order, dtype and labels, the same training tensor, and the config's UNet untouched."""
    cfg = load_config(config)
    unet_before = dict(cfg.unet)
    data = load_training_data(cfg)
    assert fit_unet_to_data(cfg, data) == [] and cfg.unet == unet_before
    assert data.images.dtype == np.uint8 and data.labels.dtype == np.int64
    assert (sha(data.images), sha(data.labels)) == (OLD_IMAGES, OLD_LABELS)
    assert sha(fit_images(images_to_tensor(data.images), cfg.unet).numpy()) == OLD_TENSOR
    assert data.class_names == list(SPRITE_CLASSES)


def test_course_pair_from_any_folder_loads_as_the_sprites_reader_reads_it(tmp_path, sprites_arrays):
    images, labels = sprites_arrays
    np.save(tmp_path / COURSE_IMAGES, np.tile(images, (50, 1, 1, 1)))
    shutil.copy(default_data_path() / COURSE_LABELS, tmp_path / COURSE_LABELS)
    for source in (tmp_path, tmp_path / COURSE_IMAGES):
        data = load_image_set(str(source))
        old_x, old_y = read_sprites_arrays(source)
        assert np.array_equal(data.images, old_x) and np.array_equal(data.labels, old_y)
        assert (sha(data.images), sha(data.labels)) == (OLD_IMAGES, OLD_LABELS)


def test_exported_png_folder_reads_back_as_the_same_sprites_and_labels(tmp_path, sprites_arrays):
    from sprites.download import main

    assert main(["export", "--to", str(tmp_path / "png")]) == 0
    folder = read_image_folder(tmp_path / "png")
    images, labels = sprites_arrays
    assert folder.notes == [] and folder.class_names == sorted(SPRITE_CLASSES)
    old = sorted((SPRITE_CLASSES[y], x.tobytes()) for x, y in zip(images, labels, strict=True))
    new = sorted((folder.class_names[y], x.tobytes()) for x, y in zip(folder.images, folder.labels, strict=True))
    assert old == new
    with pytest.raises(SpritesDataError, match="not an empty folder"):
        export_png(tmp_path / "png")


def write_folder(root, classes: dict[str, list[np.ndarray]], fmt: str = "png"):
    for name, arrays in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(root / name / f"{i:03d}.{fmt}")
    return root


def random_images(n: int, size: int, channels: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (size, size, channels) if channels == 3 else (size, size)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def test_class_subfolders_are_the_classes_in_sorted_order(tmp_path):
    cats, dogs = random_images(3, 12, seed=1), random_images(2, 12, seed=2)
    data = read_image_folder(write_folder(tmp_path, {"dogs": dogs, "cats": cats}))
    assert data.class_names == ["cats", "dogs"] and data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.images.shape == (5, 12, 12, 3) and np.array_equal(data.images, np.stack(cats + dogs))
    assert data.notes == []


def test_grey_stays_grey_and_a_mixed_set_becomes_rgb_with_a_note(tmp_path):
    grey = random_images(3, 8, channels=1)
    data = read_image_folder(write_folder(tmp_path / "g", {"a": grey}))
    assert data.images.shape == (3, 8, 8, 1) and np.array_equal(data.images[..., 0], np.stack(grey))
    write_folder(tmp_path / "m", {"a": grey, "b": random_images(2, 8)})
    mixed = read_image_folder(tmp_path / "m")
    assert mixed.images.shape == (5, 8, 8, 3) and np.array_equal(mixed.images[0], np.repeat(grey[0][..., None], 3, -1))
    assert mixed.notes == ["3 grey images of 5 converted to RGB (the set has colour images)"]


def test_rgba_palette_and_mixed_sizes_are_converted_and_said(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:8, ..., 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(root / "a.png")
    Image.fromarray(random_images(1, 16)[0]).convert("P").save(root / "b.png")
    Image.fromarray(random_images(1, 32)[0]).save(root / "c.png")
    data = read_image_folder(root)
    assert data.images.shape == (3, 16, 16, 3) and data.labels is None
    assert data.images[0, 0, 0].tolist() == [255, 0, 0] and data.images[0, 15, 0].tolist() == [255, 255, 255]
    assert data.notes == ["1 images with transparency composited on white", "1 palette (P) images converted to RGB",
                          "1 of 3 images of another size (32x32) resized to 16x16 (shorter side, then centre crop)"]


def test_resolution_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    a = np.zeros((10, 20, 3), np.uint8)
    a[:, 5:15] = 200  # the centre 10x10 square is bright, the sides dark
    Image.fromarray(a).save(tmp_path / "wide.png")
    data = read_image_folder(tmp_path, resolution=8)
    assert data.images.shape == (1, 8, 8, 3) and data.images[0, :, 1:7].min() == 200  # the dark sides are cut off
    assert data.images.min() > 150  # only the antialiasing filter's edge reaches past the crop
    assert "resized to 8x8" in data.notes[0]


def test_saved_dataset_with_a_class_label(tmp_path):
    import datasets

    images = random_images(6, 8, channels=1)
    features = datasets.Features({"img": datasets.Image(), "kind": datasets.ClassLabel(names=["zero", "one"])})
    datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in images], "kind": [0, 1] * 3},
                               features=features).save_to_disk(tmp_path / "ds")
    data = load_image_set(dataset_name=str(tmp_path / "ds"), image_column="img", label_column="kind")
    assert data.images.shape == (6, 8, 8, 1) and np.array_equal(data.images[..., 0], np.stack(images))
    assert data.class_names == ["zero", "one"] and data.labels.tolist() == [0, 1] * 3
    unlabelled = load_image_set(dataset_name=str(tmp_path / "ds"), image_column="img")  # no "label" column
    assert unlabelled.labels is None and unlabelled.class_names is None
    with pytest.raises(SpritesDataError, match="no label column 'colour'.*img, kind"):
        load_image_set(dataset_name=str(tmp_path / "ds"), image_column="img", label_column="colour")
    with pytest.raises(SpritesDataError, match="no image column 'image'.*--image_column"):
        load_image_set(dataset_name=str(tmp_path / "ds"))


def test_string_labels_and_arrays_of_any_shape(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"image": np.zeros((4, 8, 8, 3), np.uint8), "label": ["b", "a", "b", "c"]})
    data = read_dataset(ds)
    assert data.class_names == ["a", "b", "c"] and data.labels.tolist() == [1, 0, 1, 2]
    grey = np.random.default_rng(0).random((7, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "digits.npz", images=grey, labels=np.arange(7), class_names=[f"d{i}" for i in range(7)])
    arrays = load_image_set(str(tmp_path / "digits.npz"))
    assert arrays.images.shape == (7, 32, 32, 1) and arrays.class_names == [f"d{i}" for i in range(7)]
    assert np.array_equal(arrays.images[..., 0], (grey * 255).round().astype(np.uint8))
    np.save(tmp_path / "faces.npy", np.zeros((3, 24, 24, 3), np.uint8))
    assert load_image_set(str(tmp_path / "faces.npy")).labels is None


def test_a_data_folder_given_as_data_path_is_read_as_an_image_folder(tmp_path):
    write_folder(tmp_path, {"x": random_images(2, 8), "y": random_images(2, 8, seed=3)})
    assert load_image_set(str(tmp_path)).class_names == ["x", "y"]


@pytest.mark.parametrize("case, match", [
    ("empty", "--train_data_dir .*: the folder is empty"),
    ("corrupt", r"bad\.png: cannot decode the image"),
    ("not_image", r"notes\.txt: not an image file"),
    ("mixed_layout", "images both at the top"),
    ("too_large", "the images are 128x128.*set --resolution 64"),
    ("two_sources", "give one data source"),
])
def test_bad_folders_give_one_line_naming_the_file(tmp_path, case, match):
    root = tmp_path / "data"
    root.mkdir()
    if case == "corrupt":
        write_folder(root, {"a": random_images(2, 8)})
        (root / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif case == "not_image":
        write_folder(root, {"a": random_images(2, 8)})
        (root / "a" / "notes.txt").write_text("hello")
    elif case == "mixed_layout":
        write_folder(root, {"a": random_images(2, 8)})
        Image.fromarray(random_images(1, 8)[0]).save(root / "top.png")
    elif case == "too_large":
        write_folder(root, {"a": random_images(1, 128)})
    (root / ".hidden").write_text("skipped")  # hidden files are left out, never an error
    with pytest.raises(SpritesDataError, match=match) as err:
        load_image_set(train_data_dir=str(root), data_path="x" if case == "two_sources" else None)
    assert "\n" not in str(err.value)


def test_conditioning_needs_two_classes_and_the_batch_needs_enough_images(tmp_path):
    write_folder(tmp_path / "one", {"only": random_images(4, 8)})
    cfg = load_config("configs/tiny_conditional.yaml", ["--train_data_dir", str(tmp_path / "one")])
    data = load_training_data(cfg)
    with pytest.raises(SpritesDataError, match="single class \\('only'\\).*conditional: false"):
        fit_unet_to_data(cfg, data)
    unlabelled = set_from_arrays(np.zeros((4, 8, 8, 3), np.uint8), None, "arrays")
    with pytest.raises(SpritesDataError, match="arrays has no labels"):
        fit_unet_to_data(cfg, unlabelled)
    with pytest.raises(SpritesDataError, match="4 images, fewer than one batch \\(train_batch_size 64\\)"):
        check_batch(cfg, data)


def test_the_unet_follows_the_data_unless_the_config_sets_it(tmp_path):
    write_folder(tmp_path / "d", {"a": random_images(3, 12, channels=1), "b": random_images(3, 12, channels=1),
                                  "c": random_images(3, 12, channels=1)})
    cfg = load_config("configs/tiny_conditional.yaml", ["--train_data_dir", str(tmp_path / "d")])
    assert fit_unet_to_data(cfg, load_training_data(cfg)) == []
    assert (cfg.unet["sample_size"], cfg.unet["in_channels"], cfg.unet["num_class_embeds"]) == (12, 1, 4)
    cfg = load_config("configs/tiny.yaml", ["--train_data_dir", str(tmp_path / "d"), "--unet.sample_size", "16",
                                            "--unet.in_channels", "3", "--unet.out_channels", "3"])
    notes = fit_unet_to_data(cfg, load_training_data(cfg))
    assert len(notes) == 2 and "resized to 16x16" in notes[0] and "converted to RGB" in notes[1]


@pytest.mark.parametrize("size, setting, nearest", [(10, "--resolution", 12), (30, "unet.sample_size", 32),
                                                    (9, "--resolution", 8)])
def test_a_size_the_down_blocks_cannot_halve_names_the_nearest_that_works(size, setting, nearest):
    unet = load_config("configs/tiny.yaml").unet  # 3 down blocks: sizes must be multiples of 4
    with pytest.raises(Exception, match=f"{setting} {size}: .* multiple of 4; the nearest size that works is "
                                        f"{nearest}: set {setting} {nearest}"):
        check_halving(size, unet, setting)
    check_halving(nearest, unet, setting)


def test_evaluation_during_training_is_refused_on_other_data(tmp_path):
    """eval_every scores against the course sprites: on another data set it would measure the wrong thing."""
    write_folder(tmp_path / "d", {"a": random_images(2, 16), "b": random_images(2, 16, seed=4)})
    with pytest.raises(Exception, match="eval_every on your own data needs eval_feature_net.*train_classifier"):
        load_config("configs/tiny.yaml", ["--train_data_dir", str(tmp_path / "d"), "--eval_every", "10"])
    np.save(tmp_path / "d.npy", random_images(4, 16))
    cfg = load_config("configs/tiny.yaml", ["--data_path", str(tmp_path / "d.npy"), "--eval_every", "10"])
    with pytest.raises(Exception, match="not the course sprites.*needs eval_feature_net.*train_classifier"):
        fit_unet_to_data(cfg, load_training_data(cfg))
    sprites = load_config("configs/tiny.yaml", ["--eval_every", "10"])
    assert fit_unet_to_data(sprites, load_training_data(sprites)) == []


def test_moments_command_reads_any_data_source(tmp_path, sprites_arrays):
    """training.moments' data moments of an image folder are those of its decoded images; of the sprites, those of
    the course's arrays."""
    import torch

    from pipelines.prior import DataMoments
    from training.moments import data_moments

    write_folder(tmp_path / "d", {"a": random_images(3, 8, channels=1), "b": random_images(3, 8, channels=1, seed=5)})
    unet = {"sample_size": 8, "in_channels": 1}
    moments = data_moments(unet, str(tmp_path / "d"), hflip=False)
    expected = DataMoments.from_images(images_to_tensor(read_image_folder(tmp_path / "d").images))
    assert moments.shape == (1, 8, 8) and torch.equal(moments.cov, expected.cov)
    sprites = data_moments({"sample_size": 16, "in_channels": 3}, None, hflip=True)
    assert torch.equal(sprites.mean, DataMoments.from_images(images_to_tensor(sprites_arrays[0]), True).mean)


def test_a_local_data_folder_through_datasets_gives_what_the_folder_reader_gives(tmp_path):
    write_folder(tmp_path / "d", {"x": random_images(3, 8), "y": random_images(2, 8, seed=6)})
    mine, theirs = read_image_folder(tmp_path / "d"), load_image_set(dataset_name=str(tmp_path / "d"))
    assert theirs.class_names == mine.class_names == ["x", "y"]
    key = sorted((int(y), x.tobytes()) for x, y in zip(theirs.images, theirs.labels, strict=True))
    assert key == sorted((int(y), x.tobytes()) for x, y in zip(mine.images, mine.labels, strict=True))
