"""Score one set of sprites against another in one or more feature spaces: sprite-FID, standard (Inception) FID and
FD-DINOv2, each with KID and improved precision/recall, each with its network named.

    python -m evaluation.score SAMPLES [REFERENCE] [--features sprite inception dinov2] [--json out.json]

Each set is a folder of images (as written by ``python -m evaluation.export``), a ``.npz``/``.npy`` of images,
or ``real`` for the real sprites from the loader (the default REFERENCE). Prints one row per feature space and,
with ``--json``, writes them all. The feature spaces (:mod:`evaluation.feature_spaces`, settings in
``configs/feature_spaces.yaml``): ``sprite`` (the default; the project's sprite network), ``inception``
(pytorch-fid's weights, ``--inception_weights``) and ``dinov2`` (a hub id in the local cache or a folder,
``--dinov2``; needs ``pip install -e ".[metrics]"``). Nothing is downloaded: when a network's files are missing
the command says in one line what to download and where to put it, exits with code 2 and writes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.feature_spaces import (
    FEATURE_SPACES,
    FeatureSpace,
    check_feature_space,
    load_feature_space,
    load_settings,
)
from evaluation.metrics import fid_from_features, kid_from_features, precision_recall
from sprites.cli import ArgumentParser

__all__ = ["load_image_set", "score", "score_features"]



def load_image_set(source: str | Path, data_path: str | None = None,
                   value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """uint8 (N, H, W, C) from ``real``, a folder of images (sorted by name; class subfolders allowed, read as
    ``--train_data_dir`` reads them) or a ``.npz``/``.npy`` file."""
    if str(source) == "real":
        from sprites.data import read_sprites_arrays

        return read_sprites_arrays(data_path)[0]
    source = Path(source)
    if source.is_dir():
        from sprites.image_data import read_image_folder

        return read_image_folder(source, setting="image folder").images
    from evaluation.export import load_generated_images

    return load_generated_images(source, value_range)


def score_features(generated: np.ndarray, reference: np.ndarray, kid_subset_size: int | None = None,
                   kid_subsets: int = 100, seed: int = 0, k: int = 3) -> dict[str, Any]:
    """FD, KID (mean, subset std) and improved precision/recall (k neighbours) of two feature sets (N, D)."""
    kid, kid_std = kid_from_features(generated, reference, subset_size=kid_subset_size, n_subsets=kid_subsets,
                                     seed=seed)
    out = {"fd": fid_from_features(generated, reference), "kid": kid, "kid_subset_std": kid_std}
    if min(len(generated), len(reference)) > k:
        out["precision"], out["recall"] = precision_recall(generated, reference, k)
    return out


def score(generated: np.ndarray, reference: np.ndarray, spaces: list[FeatureSpace], kid_subset_size: int | None = None,
          kid_subsets: int = 100, seed: int = 0, k: int = 3) -> dict[str, Any]:
    """Every number of two uint8 image sets in each feature space of ``spaces``."""
    result: dict[str, Any] = {"n_generated": int(len(generated)), "n_reference": int(len(reference)), "spaces": {}}
    for space in spaces:
        numbers = score_features(space.extract(generated), space.extract(reference), kid_subset_size, kid_subsets,
                                 seed, k)
        result["spaces"][space.name] = {"network": space.network, "distance": space.distance, **numbers}
    return result


def table(result: dict[str, Any]) -> str:
    """The result as aligned text: one row per feature space."""
    rows = [f"{result['n_generated']} images against {result['n_reference']}:"]
    for name, s in result["spaces"].items():
        pr = f"  precision {s['precision']:.3f}  recall {s['recall']:.3f}" if "precision" in s else ""
        rows.append(f"{name:9s} {s['distance']} {s['fd']:.4f}  KID {s['kid']:.5f} (subset sd {s['kid_subset_std']:.5f})"
                    f"{pr}\n          network: {s['network']}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = ArgumentParser(description="FD, KID and precision/recall of two image sets in feature spaces.")
    parser.add_argument("generated", help="folder of images, .npz/.npy, or 'real'")
    parser.add_argument("reference", nargs="?", default="real", help="the same kinds (default: the real sprites)")
    parser.add_argument("--features", nargs="+", choices=FEATURE_SPACES, default=None,
                        help="feature spaces, several allowed (default: sprite)")
    parser.add_argument("--data_path", default=None, help="sprites folder or file for 'real'")
    parser.add_argument("--value_range", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LO", "HI"),
                        help="range of float images in .npz/.npy files (default -1 1)")
    parser.add_argument("--kid_subset_size", type=int, default=None, help="default: min(1000, N1, N2)")
    parser.add_argument("--kid_subsets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inception", action="store_true", help="the same as adding 'inception' to --features")
    parser.add_argument("--inception_weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("--dinov2", default=None,
                        help=f"DINOv2 checkpoint: a hub id in the local cache or a folder (default "
                        f"{settings['dinov2']['model']})")
    parser.add_argument("--feature_net", default=None,
                        help="the 'sprite' space with another network: the .safetensors of python -m "
                             "evaluation.train_classifier on your own labelled data (docs/own_data.md)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys([*(args.features or ["sprite"]),
                                *(["inception"] if args.inception or args.inception_weights else []),
                                *(["dinov2"] if args.dinov2 else [])]))
    try:
        for name in names:  # fail before any work when a network's files are missing
            check_feature_space(name, args.inception_weights, args.dinov2)
        value_range = tuple(args.value_range)
        generated = load_image_set(args.generated, args.data_path, value_range)
        reference = load_image_set(args.reference, args.data_path, value_range)
        spaces = [load_feature_space(n, args.inception_weights, args.dinov2, settings=settings,
                                     feature_net=args.feature_net) for n in names]
        result = {"generated": str(args.generated), "reference": str(args.reference),
                  **score(generated, reference, spaces, args.kid_subset_size, args.kid_subsets, args.seed,
                          int(settings["precision_recall_k"]))}
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if args.json:
        from pipelines.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
