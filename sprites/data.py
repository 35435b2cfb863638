"""The sprites data set as a HuggingFace ``datasets.Dataset``.

Three sources are accepted (see :func:`load_sprites`):

* the original course files ``sprites_1788_16x16.npy`` + ``sprite_labels_nc_1788_16x16.npy`` in any folder;
* the compact ``.npz`` with arrays ``images`` (N,16,16,3) and ``labels`` (N,5), as in ``../shared/data/sprites``;
* a hub data set name (``user/name``) through ``datasets.load_dataset``, for users who are online.

The data is never shipped with the project; ``python -m sprites download [--to DIR]`` fetches the course
files from the Hugging Face Hub (``sprites/download.py``). With no source given, the loaders look in
(:func:`data_search_path`):

1. ``$SPRITEDIFF_DATA``, when it is set (and then only there);
2. ``../shared/data/sprites`` beside the project folder;
3. the user folder ``~/.cache/spritediff/sprites`` (``$XDG_CACHE_HOME/spritediff/sprites``), where ``download``
   puts the files by default.

Sprites by ElvGames, FrootsnVeggies and kyrise (research and education only).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from pipelines.labels import SPRITE_CLASSES
from sprites.images import to_uint8

IMAGE_SHAPE = (16, 16, 3)
COURSE_IMAGES = "sprites_1788_16x16.npy"
COURSE_LABELS = "sprite_labels_nc_1788_16x16.npy"
N_UNIQUE = 1788  # the course file repeats 1,788 base sprites 50 times (row i is sprite i % 1788)
DATA_ENV = "SPRITEDIFF_DATA"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sprites"  # the course's shared folder
DOWNLOAD_HINT = "python -m sprites download"


class SpritesDataError(ValueError):
    """Bad sprites input: the message names the file, the problem and the fix."""


def user_data_path() -> Path:
    """The per-user sprites folder, ``$XDG_CACHE_HOME/spritediff/sprites`` (default ``~/.cache/spritediff/sprites``):
    where ``python -m sprites download`` puts the course files unless told otherwise."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "spritediff" / "sprites"


def data_search_path() -> list[Path]:
    """Where the loaders look when no source is given: ``[$SPRITEDIFF_DATA]`` if it is set, else
    ``[../shared/data/sprites, user_data_path()]``."""
    env = os.environ.get(DATA_ENV)
    return [Path(env)] if env else [SHARED_DATA, user_data_path()]


def holds_sprites(path: Path) -> bool:
    """True for an existing file, or a folder with the course images file or a ``.npz``."""
    if path.is_file():
        return True
    return path.is_dir() and ((path / COURSE_IMAGES).is_file() or any(path.glob("*.npz")))


def default_data_path() -> Path:
    """The first place of :func:`data_search_path` that holds sprites (if none does, the first place)."""
    places = data_search_path()
    return next((p for p in places if holds_sprites(p)), places[0])


def no_default_data_error() -> SpritesDataError:
    """The error for "no source given and no sprites in any default place", with how to get them."""
    places = data_search_path()
    where = f"{places[0]} (${DATA_ENV})" if os.environ.get(DATA_ENV) else " or ".join(str(p) for p in places)
    return SpritesDataError(f"no sprites found in {where}. Get the course files with `{DOWNLOAD_HINT}`, or set "
                            f"${DATA_ENV} (or a command's --data_path) to a folder that holds them.")


def _load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise SpritesDataError(f"{path}: {what} file not found. Point --data_path (or ${DATA_ENV}) at the folder "
                               f"holding {COURSE_IMAGES} + {COURSE_LABELS} or the sprites .npz, or get the course "
                               f"files with `{DOWNLOAD_HINT}`.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise SpritesDataError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc}); the file is corrupt or "
                               "truncated. Copy it again from its source.") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    archive = _load_array(path, "sprites .npz")
    try:
        with archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise SpritesDataError(f"{path}: the .npz lacks array(s) {sorted(missing)}; it must hold 'images' "
                                       "(N,16,16,3) uint8 and 'labels' (N,5) one-hot.")
            return archive["images"], archive["labels"]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, SpritesDataError):
            raise
        raise SpritesDataError(f"{path}: cannot read the .npz ({type(exc).__name__}: {exc}); the file is corrupt "
                               "or truncated. Copy it again from its source.") from None


def check_images(images: np.ndarray, path: Path | str) -> np.ndarray:
    """Validate an image array and return it as uint8 (N,16,16,3). Float arrays must lie in [0, 1]."""
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise SpritesDataError(f"{path}: images have shape {images.shape}, expected (N, 16, 16, 3) (channels last).")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise SpritesDataError(f"{path}: float images must lie in [0, 1], found values in "
                                   f"[{np.nanmin(images):.3g}, {np.nanmax(images):.3g}].")
        return to_uint8(images)
    if np.issubdtype(images.dtype, np.integer):
        if images.min() < 0 or images.max() > 255:
            raise SpritesDataError(f"{path}: integer images must lie in [0, 255], found values in "
                                   f"[{images.min()}, {images.max()}].")
        return images.astype(np.uint8)
    raise SpritesDataError(f"{path}: images have dtype {images.dtype}, expected uint8 (or float in [0, 1]).")


def check_labels(labels: np.ndarray, n_images: int, path: Path | str) -> np.ndarray:
    """Validate labels, one-hot (N,5) or integer (N,), and return int64 class indices."""
    if labels.shape[0] != n_images:
        raise SpritesDataError(f"{path}: {labels.shape[0]} labels for {n_images} images; the two files must have "
                               "the same number of rows.")
    if labels.ndim == 2 and labels.shape[1] == len(SPRITE_CLASSES):
        if not np.isin(labels, (0, 1)).all() or not (labels.sum(1) == 1).all():
            raise SpritesDataError(f"{path}: labels of shape (N, 5) must be one-hot (a single 1 per row).")
        return labels.argmax(1).astype(np.int64)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        if labels.min() < 0 or labels.max() >= len(SPRITE_CLASSES):
            raise SpritesDataError(f"{path}: integer labels must lie in [0, 4], "
                                   f"found [{labels.min()}, {labels.max()}].")
        return labels.astype(np.int64)
    raise SpritesDataError(f"{path}: labels have shape {labels.shape} and dtype {labels.dtype}; expected one-hot "
                           "(N, 5) or integer class indices (N,).")


def _dedupe_tiled(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The course file is ``np.tile(base, (50,1,1,1))``: keep the 1,788 base sprites when that holds exactly."""
    n = images.shape[0]
    if n <= N_UNIQUE or n % N_UNIQUE:
        return images, labels
    reps = n // N_UNIQUE
    base_x, base_y = images[:N_UNIQUE], labels[:N_UNIQUE]
    same = (images.reshape(reps, N_UNIQUE, *IMAGE_SHAPE) == base_x).all() and \
        (labels.reshape(reps, N_UNIQUE) == base_y).all()
    return (base_x, base_y) if same else (images, labels)


def read_sprites_arrays(path: str | Path | None = None, unique: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read sprites from a folder or file; return (uint8 images (N,16,16,3), int64 labels (N,)).

    A folder may hold the course pair (``sprites_1788_16x16.npy`` + ``sprite_labels_nc_1788_16x16.npy``,
    preferred when present) or one ``.npz`` with ``images`` and ``labels``. ``unique`` keeps only the 1,788
    base sprites when the file is the course's 50-fold tiling of them.
    """
    if path is None:
        path = default_data_path()
        if not holds_sprites(path):
            raise no_default_data_error()
    path = Path(path)
    if path.is_dir():
        if (path / COURSE_IMAGES).exists():
            images_file, labels_file = path / COURSE_IMAGES, path / COURSE_LABELS
        else:
            npz = sorted(path.glob("*.npz"))
            if not npz:
                raise SpritesDataError(f"{path}: no sprites found; the folder needs {COURSE_IMAGES} + {COURSE_LABELS} "
                                       f"or a .npz with 'images' and 'labels'. Set --data_path or ${DATA_ENV}, or "
                                       f"get the course files with `{DOWNLOAD_HINT} --to {path}`.")
            images_file, labels_file = npz[0], None
    elif path.suffix == ".npz":
        images_file, labels_file = path, None
    elif path.suffix == ".npy":
        images_file, labels_file = path, path.with_name(COURSE_LABELS)
    elif not path.exists():
        raise SpritesDataError(f"{path}: no such file or folder. Set --data_path or ${DATA_ENV} to the sprites folder, "
                               f"or get the course files with `{DOWNLOAD_HINT}`.")
    else:
        raise SpritesDataError(f"{path}: unknown sprites file type {path.suffix!r}; "
                               "use the course .npy pair or a .npz.")

    if labels_file is None:
        raw_images, raw_labels = _read_npz(images_file)
    else:
        raw_images = _load_array(images_file, "images")
        raw_labels = _load_array(labels_file, "labels")
    images = check_images(raw_images, images_file)
    labels = check_labels(raw_labels, images.shape[0], labels_file or images_file)
    return _dedupe_tiled(images, labels) if unique else (images, labels)


def sprites_dataset_from_arrays(images: np.ndarray, labels: np.ndarray):
    """Wrap validated arrays as a ``datasets.Dataset`` with ``image`` (uint8 16x16x3) and ``label`` (ClassLabel)."""
    import datasets

    features = datasets.Features({
        "image": datasets.Array3D(shape=IMAGE_SHAPE, dtype="uint8"),
        "label": datasets.ClassLabel(names=list(SPRITE_CLASSES)),
    })
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def _load_hub(name: str, split: str):
    import datasets

    from pipelines.hub import hub_unreachable_reason

    reason = hub_unreachable_reason()
    if reason:
        raise SpritesDataError(f"hub data set {name!r}: {reason}. Pass a local folder "
                               f"with {COURSE_IMAGES} + {COURSE_LABELS} or the sprites .npz instead.")
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as exc:  # network errors come in many types; all mean the same to the user
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise SpritesDataError(f"hub data set {name!r}: could not load it ({reason}). If this machine is offline, "
                               "pass a local folder with the sprites files instead.") from None
    columns = set(ds.column_names)
    if not {"image", "label"} <= columns:
        raise SpritesDataError(f"hub data set {name!r}: needs columns 'image' and 'label', has {sorted(columns)}.")
    images = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im) for im in ds["image"]])
    images = check_images(images, name)
    labels = check_labels(np.asarray(ds["label"]), images.shape[0], name)
    return sprites_dataset_from_arrays(images, labels)


def load_sprites(source: str | Path | None = None, *, unique: bool = True, split: str = "train"):
    """Load the sprites as a ``datasets.Dataset`` (columns ``image``, ``label``).

    ``source`` is a folder, a ``.npz``/``.npy`` file, or a hub data set name such as ``user/sprites``;
    ``None`` means the first place of :func:`data_search_path` that holds sprites.
    """
    if source is not None and not Path(source).exists() and "/" in str(source) and not str(source).startswith(
            (".", "/", "~")) and Path(source).suffix == "":
        return _load_hub(str(source), split)
    return sprites_dataset_from_arrays(*read_sprites_arrays(source, unique=unique))


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N,H,W,C) -> float32 (N,C,H,W) in [-1, 1] (the model's input, and the sprite network's)."""
    x = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def fit_images(x: torch.Tensor, unet_config: dict) -> torch.Tensor:
    """Training images (N, C, H, W) in [-1, 1] made to fit the UNet: RGB to grey (the channel mean) for
    ``in_channels: 1``, grey to RGB (the channel repeated) for ``in_channels: 3``, resized (nearest, whole pixels
    for integer factors) to ``sample_size``. Images that fit already are returned as they are."""
    channels = unet_config.get("in_channels", 3)
    size = unet_config.get("sample_size", 16)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if channels == 1 and x.shape[1] == 3:
        x = x.mean(1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif channels != x.shape[1]:
        raise ValueError(f"unet.in_channels is {channels}; the images have {x.shape[1]} channels: use 3 (RGB) or "
                         "1 (grey)")
    if tuple(x.shape[-2:]) != size:
        x = torch.nn.functional.interpolate(x, size=size, mode="nearest-exact")
    return x
