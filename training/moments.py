"""Write the data moments a pipeline folder needs for ``prior="moments"`` (training writes them itself).

    python -m training.moments --pipeline pretrained/sprites_ddpm [--data PATH] [--no_hflip]

The mean and covariance of the training sprites in [-1, 1] (with their mirror images when the run flipped,
which is read from the folder's ``training/config.yaml`` when it has one), fitted to the UNet's image shape,
saved as ``data_moments.safetensors`` beside ``model_index.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from pipelines.prior import DataMoments
from sprites.cli import ArgumentParser
from sprites.data import SpritesDataError, fit_images, images_to_tensor
from sprites.image_data import load_image_set


def data_moments(unet_config: dict, data_path: str | None = None, hflip: bool = True) -> DataMoments:
    """The moments of the images at ``data_path`` (default: the sprites; any source ``--data_path`` takes, such as
    an image folder or a ``.npz``) as a UNet of ``unet_config`` sees them."""
    images = load_image_set(data_path).images
    return DataMoments.from_images(fit_images(images_to_tensor(images), unet_config), hflip)


def folder_moments(folder: Path, data_path: str | None = None, hflip: bool | None = None) -> DataMoments:
    """The data moments for the pipeline in ``folder`` (hflip as its training record says, else True)."""
    unet_config = json.loads((Path(folder) / "unet" / "config.json").read_text())
    record = Path(folder) / "training" / "config.yaml"
    if hflip is None:
        hflip = bool((yaml.safe_load(record.read_text()) or {}).get("hflip", True)) if record.is_file() else True
    return data_moments(unet_config, data_path, hflip)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", required=True, help="a saved pipeline folder")
    p.add_argument("--data", default=None, help="the training data: sprites folder, .npz/.npy or image folder "
                   "(default: the sprites from $SPRITEDIFF_DATA or ../shared)")
    p.add_argument("--no_hflip", dest="hflip", action="store_false", default=None,
                   help="no mirror images (default: as the run's training/config.yaml says, else with them)")
    args = p.parse_args(argv)
    folder = Path(args.pipeline)
    if not (folder / "unet" / "config.json").is_file():
        print(f"error: {folder} is not a pipeline folder (no unet/config.json)", file=sys.stderr)
        return 2
    try:
        moments = folder_moments(folder, args.data, args.hflip)
    except SpritesDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = moments.save(folder)
    print(f"wrote {path} (mean and covariance of {moments.count} images of shape {moments.shape})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
