"""Write real and generated sprites as PNG folders for standard FID with pytorch-fid.

    python -m evaluation.export --real outputs/fid/real
    python -m evaluation.export --generated outputs/fid/ddim50 --generated_from runs/sprites_ddpm/pipeline \\
        --sampler ddim --steps 50 --num_images 1788 --seed 0
    python -m evaluation.export --generated outputs/fid/gen --generated_from samples.npz

and then, on a machine that has pytorch-fid and its Inception weights:

    python -m pytorch_fid outputs/fid/real outputs/fid/ddim50 --device cpu

Each folder is written to a temporary sibling and renamed into place when complete, so a folder that exists
is whole (an interrupted export leaves no half folder under the final name). PNGs are lossless 16x16 RGB:
pytorch-fid reads them back to exactly the uint8 values written here, then resizes them to 299x299 itself.
``--generated_from`` takes a ``.npz`` (array ``images``, or its only array) or ``.npy`` of images (uint8
``(N, 16, 16, 3)``, or float ``(N, 3, 16, 16)`` / ``(N, 16, 16, 3)`` in ``--value_range``, default -1 1), or a
saved pipeline folder (``model_index.json`` + ``unet/`` + ``scheduler/``) that is sampled here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.features import to_uint8_nhwc
from pipelines.atomic import atomic_dir
from sprites.cli import ArgumentParser

__all__ = ["export_png_folder", "export_real_sprites", "load_generated_images", "sample_pipeline"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def export_png_folder(images: Any, directory: str | Path, overwrite: bool = False,
                      value_range: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """Write images as ``00000.png``, ``00001.png``, ... into ``directory`` (created atomically) and return it.

    ``images``: uint8 (N, H, W, 3), or float in ``value_range`` (channels first or last). An existing
    ``directory`` is an error unless ``overwrite``, which replaces it only if it holds nothing but image files
    (so a mistyped path cannot wipe unrelated data).
    """
    arr = to_uint8_nhwc(images, value_range)
    if arr.shape[0] == 0:
        raise ValueError("no images to export")
    directory = Path(directory)
    check_image_folder(directory, overwrite)
    width = max(5, len(str(arr.shape[0] - 1)))
    with atomic_dir(directory) as tmp:
        for i, image in enumerate(arr):
            Image.fromarray(np.ascontiguousarray(image)).save(tmp / f"{i:0{width}d}.png", format="PNG")
    return directory


def check_image_folder(directory: Path, overwrite: bool) -> None:
    """Refuse (``FileExistsError``) an existing ``directory`` unless ``overwrite``, and even then one that holds
    anything but image files."""
    if not directory.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{directory} exists; pass overwrite=True (--overwrite) to replace it")
    if not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    others = [p.name for p in directory.iterdir() if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise FileExistsError(f"{directory} holds files that are not images ({others[:3]}); refusing to replace "
                              "it, choose an empty or new folder")


def export_real_sprites(directory: str | Path, data_path: str | Path | None = None, subset: str = "all",
                        overwrite: bool = False) -> Path:
    """Export the real sprites from the project loader: ``subset`` is ``all`` (the 1,788 unique sprites),
    ``held_out`` or ``train`` (the sprite feature network's split, read from its weights' JSON)."""
    from sprites.data import read_sprites_arrays

    images, labels = read_sprites_arrays(data_path)
    if subset != "all":
        from evaluation.features import load_sprite_feature_meta

        held = np.asarray(load_sprite_feature_meta()["held_out_indices"])
        if subset == "held_out":
            images = images[held]
        elif subset == "train":
            images = images[np.setdiff1d(np.arange(len(images)), held)]
        else:
            raise ValueError(f"subset must be 'all', 'held_out' or 'train', got {subset!r}")
    return export_png_folder(images, directory, overwrite=overwrite)


def sample_pipeline(pipeline_dir: str | Path, num_images: int, sampler: str = "ddpm", steps: int | None = None,
                    seed: int = 0, batch_size: int = 256, **call_kwargs: Any) -> np.ndarray:
    """Sample uint8 (N, 16, 16, 3) sprites from a saved pipeline folder with the project's pipeline for
    ``sampler`` (``pipelines.loading.SAMPLERS``) in ``steps`` UNet evaluations (None: the pipeline's default).

    Batch ``b`` uses ``torch.Generator().manual_seed(seed + b)`` (:func:`evaluation.sampling.sample_in_batches`),
    so a run is reproducible for a fixed ``batch_size``. ``call_kwargs`` go to the pipeline call (for example
    ``eta``, or ``class_labels`` with one label per image).
    """
    from evaluation.sampling import sample_in_batches
    from pipelines.loading import load_pipeline, sampler_arguments

    pipe = load_pipeline(pipeline_dir, sampler)
    images, _ = sample_in_batches(pipe, num_images, batch_size, seed, **sampler_arguments(sampler, steps,
                                                                                          **call_kwargs))
    return images


def load_generated_images(source: str | Path, value_range: tuple[float, float] = (-1.0, 1.0),
                          **sample_kwargs: Any) -> np.ndarray:
    """uint8 (N, H, W, C) images (C = 3, or 1 for grey) from a ``.npz``/``.npy`` file or a pipeline folder (see
    :func:`sample_pipeline`)."""
    source = Path(source)
    if source.is_dir():
        if not sample_kwargs.get("num_images"):
            raise ValueError(f"{source}: sampling a pipeline needs num_images (--num_images)")
        return sample_pipeline(source, **sample_kwargs)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if source.suffix == ".npy":
        arr = np.load(source, allow_pickle=False)
    elif source.suffix == ".npz":
        with np.load(source, allow_pickle=False) as archive:
            if "images" in archive.files:
                arr = archive["images"]
            elif len(archive.files) == 1:
                arr = archive[archive.files[0]]
            else:
                raise ValueError(f"{source}: the .npz holds {archive.files}; name the image array 'images'")
    else:
        raise ValueError(f"{source}: expected a .npz, a .npy or a pipeline folder")
    return to_uint8_nhwc(arr, value_range, channels=None)


def main(argv: list[str] | None = None) -> int:
    from pipelines.loading import SAMPLERS

    parser = ArgumentParser(description="Export real and generated sprites as PNG folders for "
                                                 "`python -m pytorch_fid DIR1 DIR2`.")
    parser.add_argument("--real", help="folder to write the real sprites to")
    parser.add_argument("--real_subset", default="all", choices=["all", "held_out", "train"],
                        help="which real sprites (held_out/train: the sprite feature network's split)")
    parser.add_argument("--data_path", default=None, help="sprites folder or file (default: $SPRITEDIFF_DATA or "
                        "../shared/data/sprites)")
    parser.add_argument("--generated", help="folder to write the generated sprites to")
    parser.add_argument("--generated_from", help=".npz / .npy of images, or a saved pipeline folder to sample")
    parser.add_argument("--value_range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LO", "HI"),
                        help="range of float images in a .npz/.npy (default -1 1)")
    parser.add_argument("--num_images", type=int, default=None, help="images to sample from a pipeline")
    parser.add_argument("--sampler", default="ddpm", choices=SAMPLERS)
    parser.add_argument("--steps", type=int, default=None, help="UNet evaluations (default: all T for DDPM, "
                        "50 for DDIM, 10 for the solvers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output folders of images")
    args = parser.parse_args(argv)
    if not args.real and not args.generated:
        parser.error("give --real DIR and/or --generated DIR --generated_from SOURCE")
    if bool(args.generated) != bool(args.generated_from):
        parser.error("--generated and --generated_from go together")
    try:
        if args.real:
            out = export_real_sprites(args.real, args.data_path, args.real_subset, args.overwrite)
            print(f"wrote {len(list(out.glob('*.png')))} real sprites to {out}")
        if args.generated:
            kwargs = {}
            if Path(args.generated_from).is_dir():
                kwargs = {"num_images": args.num_images, "sampler": args.sampler, "steps": args.steps,
                          "seed": args.seed, "batch_size": args.batch_size}
            images = load_generated_images(args.generated_from, tuple(args.value_range), **kwargs)
            out = export_png_folder(images, args.generated, overwrite=args.overwrite)
            print(f"wrote {len(images)} generated sprites to {out}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.real and args.generated:
        print(f"on a machine with pytorch-fid and its weights: python -m pytorch_fid {args.real} {args.generated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
