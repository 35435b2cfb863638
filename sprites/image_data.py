"""Any small image set, decoded once and kept in memory as uint8: an image folder, a ``datasets.Dataset`` (the hub,
or a folder written by ``Dataset.save_to_disk``), ``.npy``/``.npz`` arrays, or the course sprites.

:func:`load_image_set` returns an :class:`ImageSet`: uint8 images ``(N, S, S, C)`` with ``S`` in 8..64 and ``C``
1 (grey) or 3 (RGB), int64 labels ``(N,)`` with their class names (or none: unconditional data), and the
conversions made on the way, one line each, for the log. The sources follow diffusers' ``train_unconditional.py``
and datasets' ``imagefolder``:

* ``train_data_dir``: a folder of images (every format Pillow reads). With subfolders, each subfolder is a class
  (its name the class name, in sorted order, images found at any depth below it); without, the set is unlabelled.
* ``dataset_name``: a hub data set name (a connected machine), a folder written by ``save_to_disk``, or a local
  data folder ``datasets.load_dataset`` reads; images from ``image_column``, labels from ``label_column``
  (default: the column ``label`` when there is one; none means unconditional). A ``ClassLabel`` gives the names.
* ``data_path``: the course sprites (:mod:`sprites.data`, read exactly as there: the default), a ``.npz`` with
  ``images`` (and optionally ``labels``, one-hot or integer, and ``class_names``), a ``.npy`` of images, or an image
  folder.

Images of another size are resized (shorter side, bilinear with Pillow's antialiasing) and centre-cropped to a
square, as ``train_unconditional.py`` does with ``--resolution``; without ``resolution`` the most common size is
kept. Palette, alpha (composited on white), 16-bit and CMYK images are converted; a set of grey images stays grey
(one channel), a set mixing grey and colour becomes RGB. Every conversion is said in :attr:`ImageSet.notes`. Bad
input raises :class:`~sprites.data.SpritesDataError` with one line naming the file or setting.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sprites.data import (
    COURSE_IMAGES,
    COURSE_LABELS,
    SpritesDataError,
    load_sprites,
    read_sprites_arrays,
)
from sprites.images import to_uint8

MIN_SIZE, MAX_SIZE = 8, 64  # square image sizes the package trains on
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")

__all__ = ["MAX_SIZE", "MIN_SIZE", "ImageSet", "check_labels_for_conditioning", "check_resolution", "image_files",
           "load_image_set", "read_array_file", "read_data_path", "read_dataset", "read_image_folder",
           "set_from_arrays"]


@dataclass
class ImageSet:
    """A decoded image set: uint8 ``images`` (N, S, S, C), int64 ``labels`` (N,) or None, and ``class_names``."""

    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    source: str
    notes: list[str] = field(default_factory=list)
    is_sprites: bool = False  # the course sprites, read by sprites.data

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def describe(self) -> str:
        """One line: the count, shape and classes."""
        kind = "grey" if self.channels == 1 else "RGB"
        classes = (f"{self.num_classes} classes ({', '.join(self.class_names[:8])}"
                   f"{', ...' if self.num_classes > 8 else ''})") if self.class_names else "no labels"
        return f"{len(self.images)} images {self.size}x{self.size} {kind}, {classes}, from {self.source}"


def check_resolution(resolution: int | None, where: str = "resolution") -> None:
    """Refuse a resolution outside 8..64 (one line naming the setting)."""
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                   or not MIN_SIZE <= resolution <= MAX_SIZE):
        raise SpritesDataError(f"{where} must be an integer from {MIN_SIZE} to {MAX_SIZE} (square images), "
                               f"got {resolution!r}")


# ------------------------------------------------------------------------------------------------ conversions


def _pil_to_array(image, name: str, counts: collections.Counter) -> np.ndarray:
    """A decoded Pillow image as uint8 (H, W) grey or (H, W, 3) RGB; conversions counted by kind."""
    from PIL import Image

    mode = image.mode
    if mode == "P":
        counts["palette"] += 1
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        counts["alpha"] += 1
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("L" if mode in ("LA", "La") else "RGB")
    elif mode in GREY_MODES and mode != "L":
        counts[f"mode {mode}"] += 1
        if mode.startswith("I;16") or mode in ("I", "F"):  # 16-bit / 32-bit grey: scale the range to 0..255
            a = np.asarray(image, dtype=np.float64)
            top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
            return to_uint8(a / top)
        image = image.convert("L")
    elif mode not in ("L", "RGB"):
        counts[f"mode {mode}"] += 1
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _square(array: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (bilinear, antialiased) and centre-crop to ``size`` x ``size``."""
    from PIL import Image

    h, w = array.shape[:2]
    if (h, w) == (size, size):
        return array
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = Image.fromarray(array).resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _assemble(arrays: list[np.ndarray], resolution: int | None, source: str, counts: collections.Counter,
              setting: str) -> tuple[np.ndarray, list[str]]:
    """Stack decoded images (H, W) / (H, W, 3) into uint8 (N, S, S, C), saying every conversion."""
    notes = [_conversion_note(kind, n) for kind, n in sorted(counts.items())]
    sizes = collections.Counter(a.shape[:2] for a in arrays)
    if resolution is None:
        (h, w), _ = sizes.most_common(1)[0]
        size = min(h, w)
        if not MIN_SIZE <= size <= MAX_SIZE:
            nearest = min(max(size, MIN_SIZE), MAX_SIZE)
            raise SpritesDataError(f"{source}: the images are {w}x{h}; this package trains on square images of "
                                   f"{MIN_SIZE} to {MAX_SIZE} pixels: set {setting} {nearest} to resize them")
    else:
        size = resolution
    other = sum(n for hw, n in sizes.items() if hw != (size, size))
    if other:
        examples = ", ".join(f"{w}x{h}" for (h, w) in list(sizes)[:3] if (h, w) != (size, size))
        notes.append(f"{other} of {len(arrays)} images of another size ({examples}) resized to {size}x{size} "
                     "(shorter side, then centre crop)")
    grey = [a.ndim == 2 for a in arrays]
    if all(grey):
        images = np.stack([_square(a, size) for a in arrays])[..., None]
    else:
        if any(grey):
            notes.append(f"{sum(grey)} grey images of {len(arrays)} converted to RGB (the set has colour images)")
        images = np.stack([_square(np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a, size) for a in arrays])
    return np.ascontiguousarray(images), notes


def _conversion_note(kind: str, n: int) -> str:
    what = {"palette": "palette (P) images converted to RGB", "alpha": "images with transparency composited on "
            "white"}.get(kind, f"{kind} images converted to {'grey' if kind[5:] in GREY_MODES else 'RGB'}")
    return f"{n} {what}"


def _labels_from_values(values: list, source: str, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer or string labels -> int64 indices into sorted class names."""
    names = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    index = {v: i for i, v in enumerate(names)}
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in names) and \
            list(names) == list(range(len(names))):
        return np.asarray(values, dtype=np.int64), [str(v) for v in names]
    if not all(isinstance(v, (int, np.integer, str)) for v in names):
        raise SpritesDataError(f"{source}: label column {column!r} holds {type(names[0]).__name__} values; labels "
                               "must be class indices, class names or a ClassLabel")
    return np.asarray([index[v] for v in values], dtype=np.int64), [str(v) for v in names]


# ------------------------------------------------------------------------------------------------ image folders


def _image_extensions() -> set[str]:
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def image_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` in sorted order, hidden files and folders (a leading dot) left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read_image_folder(folder: str | Path, resolution: int | None = None, setting: str = "--train_data_dir"
                      ) -> ImageSet:
    """Decode every image of an image folder (class subfolders give the labels, names in sorted order)."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder).expanduser()
    check_resolution(resolution)
    if not folder.is_dir():
        raise SpritesDataError(f"{setting} {folder}: no such folder")
    files = image_files(folder)
    if not files:
        raise SpritesDataError(f"{setting} {folder}: the folder is empty; put images (PNG, JPEG, ...) in it, "
                               "or one subfolder of images per class")
    extensions = _image_extensions()
    for path in files:
        if path.suffix.lower() not in extensions:
            raise SpritesDataError(f"{path}: not an image file (Pillow reads {', '.join(sorted(extensions)[:8])}, "
                                   f"...); move it out of {folder}")
    top = [p for p in files if p.parent == folder]
    nested = [p for p in files if p.parent != folder]
    if top and nested:
        raise SpritesDataError(f"{folder}: images both at the top ({top[0].name}) and in subfolders "
                               f"({nested[0].relative_to(folder)}); put every image in a class subfolder, or all "
                               "at the top for unlabelled data")
    classes = [p.relative_to(folder).parts[0] for p in files] if nested else None
    counts: collections.Counter = collections.Counter()
    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                arrays.append(_pil_to_array(image, str(path), counts))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise SpritesDataError(f"{path}: cannot decode the image ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); the file is corrupt or "
                                   f"not an image: replace it or move it out of {folder}") from None
    images, notes = _assemble(arrays, resolution, str(folder), counts, "--resolution")
    if classes is None:
        return ImageSet(images, None, None, str(folder), notes)
    labels, names = _labels_from_values(classes, str(folder), "folder")
    return ImageSet(images, labels, names, str(folder), notes)


# ------------------------------------------------------------------------------------------------ arrays


def set_from_arrays(images: np.ndarray, labels: np.ndarray | None, source: str, resolution: int | None = None,
                    class_names: list[str] | None = None) -> ImageSet:
    """An :class:`ImageSet` from an image array (N, H, W[, C]) with C in 1, 3 (uint8, integers in 0..255 or
    floats in [0, 1]) and optional labels (one-hot (N, K) or integer (N,))."""
    check_resolution(resolution)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise SpritesDataError(f"{source}: images have shape {images.shape}; expected (N, H, W, C) channels last "
                               "with C = 1 (grey) or 3 (RGB), or (N, H, W) grey")
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise SpritesDataError(f"{source}: float images must lie in [0, 1], found values in "
                                   f"[{np.nanmin(images):.3g}, {np.nanmax(images):.3g}]")
        images = to_uint8(images)
    elif np.issubdtype(images.dtype, np.integer) and not np.issubdtype(images.dtype, np.bool_):
        if images.min() < 0 or images.max() > 255:
            raise SpritesDataError(f"{source}: integer images must lie in [0, 255], found "
                                   f"[{images.min()}, {images.max()}]")
        images = images.astype(np.uint8)
    else:
        raise SpritesDataError(f"{source}: images have dtype {images.dtype}; expected uint8 or float in [0, 1]")
    notes: list[str] = []
    h, w = images.shape[1:3]
    if resolution is not None or h != w or not MIN_SIZE <= h <= MAX_SIZE:
        arrays = [a[..., 0] if a.shape[-1] == 1 else a for a in images]
        images, notes = _assemble(arrays, resolution, source, collections.Counter(), "--resolution")
    if labels is None:
        return ImageSet(images, None, None, source, notes)
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise SpritesDataError(f"{source}: {len(labels)} labels for {len(images)} images; the arrays must have the "
                               "same number of rows")
    if labels.ndim == 2:
        if not np.isin(labels, (0, 1)).all() or not (labels.sum(1) == 1).all():
            raise SpritesDataError(f"{source}: labels of shape {labels.shape} must be one-hot (a single 1 per row)")
        k = labels.shape[1]
        labels = labels.argmax(1).astype(np.int64)
        names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    elif labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        if class_names is not None:
            names = list(class_names)
            labels = labels.astype(np.int64)
        else:
            labels, names = _labels_from_values(labels.tolist(), source, "labels")
    else:
        raise SpritesDataError(f"{source}: labels have shape {labels.shape} and dtype {labels.dtype}; expected "
                               "one-hot (N, K) or integer class indices (N,)")
    if labels.min() < 0 or labels.max() >= len(names):
        raise SpritesDataError(f"{source}: labels must lie in 0..{len(names) - 1} (one per class name), found "
                               f"[{labels.min()}, {labels.max()}]")
    return ImageSet(images, labels, [str(n) for n in names], source, notes)


def _is_sprites_layout(images: np.ndarray, labels: np.ndarray | None) -> bool:
    """Arrays the course sprites' reader takes as they are: (N, 16, 16, 3) with 5-class labels."""
    if labels is None or images.ndim != 4 or images.shape[1:] != (16, 16, 3):
        return False
    return (labels.ndim == 2 and labels.shape[1] == 5) or (
        labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) and len(labels) > 0 and labels.min() >= 0
        and labels.max() < 5)


def read_array_file(path: str | Path, resolution: int | None = None) -> ImageSet:
    """A ``.npz`` (``images``, optional ``labels`` and ``class_names``) or ``.npy`` (images only, or the course
    pair); arrays in the sprites' layout are read by the sprites' reader, exactly as the course data."""
    from sprites.data import SPRITE_CLASSES, _load_array

    path = Path(path)
    if path.suffix == ".npy":
        if path.with_name(COURSE_LABELS).is_file():
            return _sprites_set(path, resolution)
        return set_from_arrays(_load_array(path, "images"), None, str(path), resolution)
    archive = _load_array(path, ".npz")
    with archive:
        if "images" not in archive.files:
            raise SpritesDataError(f"{path}: the .npz has no array 'images' (it has {sorted(archive.files)}); it "
                                   "needs 'images' (N, H, W, C) and optionally 'labels' and 'class_names'")
        images = archive["images"]
        labels = archive["labels"] if "labels" in archive.files else None
        names = [str(n) for n in archive["class_names"]] if "class_names" in archive.files else None
    if names is None and _is_sprites_layout(images, labels):
        return _sprites_set(path, resolution)
    out = set_from_arrays(images, labels, str(path), resolution, names)
    if out.class_names is not None and names is None and labels is not None and labels.ndim == 2 \
            and labels.shape[1] == len(SPRITE_CLASSES):
        out.class_names = list(SPRITE_CLASSES)
    return out


def _sprites_set(path: str | Path | None, resolution: int | None) -> ImageSet:
    """The course sprites read by :func:`sprites.data.read_sprites_arrays`, unchanged unless ``resolution``."""
    from sprites.data import SPRITE_CLASSES, default_data_path

    images, labels = read_sprites_arrays(path)
    source = str(path) if path is not None else str(default_data_path())
    out = ImageSet(images, labels, list(SPRITE_CLASSES), source, is_sprites=True)
    if resolution is not None and resolution != images.shape[1]:
        out.images, out.notes = _assemble(list(images), resolution, source, collections.Counter(), "--resolution")
    return out


def read_data_path(path: str | Path | None, resolution: int | None = None) -> ImageSet:
    """``data_path``: the course sprites (the default, and any folder holding the course pair or a sprites
    ``.npz``), other ``.npy``/``.npz`` arrays, or an image folder."""
    if path is None:
        return _sprites_set(None, resolution)
    p = Path(path).expanduser()
    if not p.exists() and "/" in str(path) and not str(path).startswith((".", "/", "~")) and p.suffix == "":
        ds = load_sprites(str(path))  # a sprites data set on the hub, as sprites.data reads it
        arrays = ds.with_format("numpy")[:]
        out = ImageSet(arrays["image"].astype(np.uint8), arrays["label"].astype(np.int64),
                       list(ds.features["label"].names), str(path), is_sprites=True)
        if resolution is not None and resolution != 16:
            out.images, out.notes = _assemble(list(out.images), resolution, str(path), collections.Counter(),
                                              "--resolution")
        return out
    if p.is_dir():
        npz = sorted(p.glob("*.npz"))
        if (p / COURSE_IMAGES).exists():
            return _sprites_set(p, resolution)
        if npz:
            return read_array_file(npz[0], resolution)
        if image_files(p):
            return read_image_folder(p, resolution, setting="--data_path")
        return _sprites_set(p, resolution)  # the sprites reader's "no sprites found" line
    if p.suffix in (".npz", ".npy") and p.is_file():
        return read_array_file(p, resolution)
    return _sprites_set(p, resolution)  # its one line for a missing file or an unknown type


# ------------------------------------------------------------------------------------------------ datasets


def _open_dataset(name: str, split: str):
    """A ``datasets.Dataset`` from a ``save_to_disk`` folder, a local data folder or the hub."""
    import datasets

    path = Path(name).expanduser()
    if path.is_dir() and any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - arrow and fsspec raise many kinds for a damaged folder
            raise SpritesDataError(f"--dataset_name {path}: cannot read the saved data set ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:150] if str(exc) else ''})") from None
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise SpritesDataError(f"--dataset_name {path}: no split {split!r}; it has {', '.join(ds)}")
            ds = ds[split]
        return ds
    if path.exists():
        try:
            return datasets.load_dataset(str(path), split=split)
        except Exception as exc:  # noqa: BLE001 - datasets raises many kinds for a folder it cannot read
            raise SpritesDataError(f"--dataset_name {path}: datasets cannot read this folder "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}); "
                                   "for a folder of images use --train_data_dir") from None
    from pipelines.hub import hub_unreachable_reason

    reason = hub_unreachable_reason()
    if reason:
        raise SpritesDataError(f"--dataset_name {name!r}: no such local folder, and the hub is out of reach "
                               f"({reason}); pass a local folder (save_to_disk, or images with --train_data_dir)")
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - network and hub errors come in many types
        raise SpritesDataError(f"--dataset_name {name!r}: could not load it ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:150] if str(exc) else ''})") from None


def read_dataset(name: str, image_column: str = "image", label_column: str | None = None,
                 resolution: int | None = None, split: str = "train") -> ImageSet:
    """A data set's images and labels (``label_column`` None: ``label`` when the set has it, else none)."""
    import datasets

    check_resolution(resolution)
    ds = _open_dataset(str(name), split) if not isinstance(name, datasets.Dataset) else name
    source = str(name) if not isinstance(name, datasets.Dataset) else "a datasets.Dataset"
    columns = list(ds.column_names)
    if image_column not in columns:
        raise SpritesDataError(f"{source}: no image column {image_column!r} (set --image_column to one of "
                               f"{', '.join(columns)})")
    if label_column is not None and label_column not in columns:
        raise SpritesDataError(f"{source}: no label column {label_column!r} (--label_column); it has "
                               f"{', '.join(columns)}")
    if len(ds) == 0:
        raise SpritesDataError(f"{source}: the data set (split {split!r}) is empty")
    label_column = label_column or ("label" if "label" in columns else None)
    feature = ds.features[image_column]
    if isinstance(feature, datasets.Image):
        counts: collections.Counter = collections.Counter()
        arrays = [_pil_to_array(im, source, counts) for im in ds[image_column]]
        images, notes = _assemble(arrays, resolution, source, counts, "--resolution")
        out = ImageSet(images, None, None, source, notes)
    else:
        out = set_from_arrays(np.asarray(ds.with_format("numpy")[image_column]), None, source, resolution)
    if label_column is None:
        return out
    values = ds[label_column]
    label_feature = ds.features[label_column]
    if isinstance(label_feature, datasets.ClassLabel):
        out.labels = np.asarray(values, dtype=np.int64)
        out.class_names = list(label_feature.names)
        if out.labels.min() < 0:
            raise SpritesDataError(f"{source}: label column {label_column!r} has unlabelled rows (-1)")
    else:
        out.labels, out.class_names = _labels_from_values(list(values), source, label_column)
    return out


# ------------------------------------------------------------------------------------------------ the entry point


def load_image_set(data_path: str | None = None, train_data_dir: str | None = None, dataset_name: str | None = None,
                   image_column: str = "image", label_column: str | None = None, resolution: int | None = None,
                   split: str = "train") -> ImageSet:
    """The training images from one source (at most one of ``train_data_dir``, ``dataset_name``, ``data_path``;
    none: the course sprites from their default place)."""
    given = [k for k, v in (("train_data_dir", train_data_dir), ("dataset_name", dataset_name),
                            ("data_path", data_path)) if v]
    if len(given) > 1:
        raise SpritesDataError(f"give one data source, not {' and '.join(given)}")
    if train_data_dir:
        return read_image_folder(train_data_dir, resolution)
    if dataset_name:
        return read_dataset(dataset_name, image_column, label_column, resolution, split)
    out = read_data_path(data_path, resolution)
    if label_column is not None and out.labels is None:
        raise SpritesDataError(f"--label_column {label_column!r}: {out.source} has no labels")
    return out


def check_labels_for_conditioning(data: ImageSet) -> None:
    """Refuse conditional training on data without labels or with a single class (one line each)."""
    if data.labels is None:
        raise SpritesDataError(f"conditional: {data.source} has no labels; use class subfolders (--train_data_dir), "
                               "--label_column, or conditional: false")
    used = np.unique(data.labels)
    if len(used) < 2:
        name = data.class_names[int(used[0])] if data.class_names else str(used[0])
        raise SpritesDataError(f"conditional: the labels of {data.source} hold a single class ({name!r}); "
                               "conditioning needs two or more: train with conditional: false")

