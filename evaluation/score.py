"""Score one set of sprites against another: sprite-FID and sprite-KID, and Inception FID when its weights exist.

    python -m evaluation.score GENERATED [REFERENCE] [--inception] [--inception-weights FILE] [--json out.json]

Each set is a folder of images (as written by ``python -m evaluation.export``), a ``.npz``/``.npy`` of images,
or ``real`` for the real sprites from the loader (the default REFERENCE). Prints one JSON object. Inception
FID is computed only with ``--inception`` and never downloads anything; without the weights it stops with the
message that says where to put them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.features import extract_sprite_features, load_sprite_feature_meta, load_sprite_feature_net
from evaluation.metrics import fid_from_features, kid_from_features

__all__ = ["load_image_set", "score"]

READABLE = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def load_image_set(source: str | Path, data_path: str | None = None,
                   value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """uint8 (N, H, W, 3) from ``real``, a folder of images (sorted by name) or a ``.npz``/``.npy`` file."""
    if str(source) == "real":
        from training.data import read_sprites_arrays

        return read_sprites_arrays(data_path)[0]
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in READABLE)
        if not files:
            raise ValueError(f"{source}: no image files")
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    from evaluation.export import load_generated_images

    return load_generated_images(source, value_range)


def score(generated: np.ndarray, reference: np.ndarray, inception: bool = False,
          inception_weights: str | None = None, kid_subset_size: int | None = None, kid_subsets: int = 100,
          seed: int = 0) -> dict[str, Any]:
    """sprite-FID, sprite-KID (and Inception FID/KID if asked) of uint8 image sets."""
    net = load_sprite_feature_net()
    fg, fr = extract_sprite_features(generated, net), extract_sprite_features(reference, net)
    kid, kid_std = kid_from_features(fg, fr, subset_size=kid_subset_size, n_subsets=kid_subsets, seed=seed)
    result: dict[str, Any] = {
        "n_generated": int(len(generated)), "n_reference": int(len(reference)),
        "sprite_features_version": load_sprite_feature_meta()["version"],
        "sprite_fid": fid_from_features(fg, fr), "sprite_kid": kid, "sprite_kid_subset_std": kid_std,
    }
    if inception:
        from evaluation.inception import extract_inception_features, load_fid_inception

        inet = load_fid_inception(inception_weights)
        ig, ir = extract_inception_features(generated, inet), extract_inception_features(reference, inet)
        ikid, ikid_std = kid_from_features(ig, ir, subset_size=kid_subset_size, n_subsets=kid_subsets, seed=seed)
        result.update({"inception_fid": fid_from_features(ig, ir), "inception_kid": ikid,
                       "inception_kid_subset_std": ikid_std})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sprite-FID / sprite-KID (and Inception FID) of two image sets.")
    parser.add_argument("generated", help="folder of images, .npz/.npy, or 'real'")
    parser.add_argument("reference", nargs="?", default="real", help="the same kinds (default: the real sprites)")
    parser.add_argument("--data_path", default=None, help="sprites folder or file for 'real'")
    parser.add_argument("--value-range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LO", "HI"),
                        help="range of float images in .npz/.npy files (default -1 1)")
    parser.add_argument("--kid-subset-size", type=int, default=None, help="default: min(1000, N1, N2)")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception", action="store_true", help="also Inception FID/KID (needs local weights)")
    parser.add_argument("--inception-weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    try:
        if args.inception or args.inception_weights:  # fail before any work when the weights are missing
            from evaluation.inception import find_fid_inception_weights

            find_fid_inception_weights(args.inception_weights)
        value_range = tuple(args.value_range)
        generated = load_image_set(args.generated, args.data_path, value_range)
        reference = load_image_set(args.reference, args.data_path, value_range)
        result = score(generated, reference, args.inception or bool(args.inception_weights), args.inception_weights,
                       args.kid_subset_size, args.kid_subsets, args.seed)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
