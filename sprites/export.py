"""``python -m sprites export --to DIR [--data PATH]``: an image set written as a PNG folder with one subfolder per
class (``DIR/<class name>/<row>.png``, the layout ``--train_data_dir`` and datasets' imagefolder read).

Read back with :func:`sprites.image_data.read_image_folder`, the folder gives the same images and labels (by class
name) as the source, up to order: PNG is lossless, and the rows are numbered so that sorted order is row order within
each class. The folder is written whole or not at all (:func:`pipelines.atomic.atomic_dir`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.atomic import atomic_dir
from sprites.data import SpritesDataError


def export_png(dest: str | Path, data_path: str | None = None) -> tuple[Path, int]:
    """Write the images of ``data_path`` (default: the course sprites) as PNGs into class subfolders of ``dest``
    (or straight into ``dest`` for unlabelled data); returns ``(dest, number of images)``."""
    from PIL import Image

    from sprites.image_data import load_image_set

    dest = Path(dest).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SpritesDataError(f"--to {dest}: already exists and is not an empty folder; choose a new folder")
    data = load_image_set(data_path)
    digits = len(str(len(data.images) - 1))
    with atomic_dir(dest) as tmp:
        for i, image in enumerate(data.images):
            folder = tmp / data.class_names[data.labels[i]] if data.labels is not None else tmp
            folder.mkdir(exist_ok=True)
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / f"{i:0{digits}d}.png")
    return dest, len(data.images)


def add_command(commands) -> None:
    """The ``export`` subcommand of ``python -m sprites``."""
    export = commands.add_parser(
        "export", help="write the sprites (or another image set) as a PNG folder, one subfolder per class",
        description="Write every image as DIR/<class>/<row>.png, the layout --train_data_dir reads.")
    export.add_argument("--to", metavar="DIR", required=True, help="a new (or empty) folder")
    export.add_argument("--data", default=None, help="sprites folder, .npz/.npy (default: the course sprites)")


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        dest, n = export_png(args.to, args.data)
    except SpritesDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} PNGs into {dest}")
    return 0
