"""Calibrate sprite-FID and sprite-KID: the real-vs-real floor and known corruptions of real sprites.

    python -m experiments.calibrate [--data_path DIR] [--weights FILE] [--seeds 5] [--json out.json] [--out DIR]

Prints Markdown tables; ``--out DIR`` also writes them (``floor.md``, ``sanity.md``) and the numbers
(``results.json``) into DIR, which docs/evaluation.md quotes (``--out docs/figures/calibration``):

* the *floor*: two halves of the real sprites (split by mirror pairs and class, so no sprite meets its mirror
  across the halves) compared with each other, for several sizes of the first set, over a few split seeds;
* the classifier's held-out sprites against its training sprites;
* corruptions of half A against half B: pure noise, blur, pixel noise, swapped colour channels, down-sampling,
  a single class, a few sprites repeated (mode collapse), and mirror images (which should stay at the floor).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from evaluation.features import (
    extract_sprite_features,
    load_sprite_feature_meta,
    load_sprite_feature_net,
    to_uint8_nhwc,
)
from evaluation.scoring import fid_kid
from evaluation.splits import halves_by_pairs
from pipelines.atomic import write_text_atomic
from sprites.data import read_sprites_arrays

KID_SUBSETS = 100


def _clip_uint8(x: np.ndarray) -> np.ndarray:
    """Pixel values on the 0..255 scale -> uint8 (rounded, clipped)."""
    return to_uint8_nhwc(x, value_range=(0.0, 255.0))


def corruptions(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Named functions uint8 (N,16,16,3) -> uint8 (N,16,16,3); the random ones draw from ``rng``."""
    return {
        "uniform noise images": lambda x: rng.integers(0, 256, x.shape, dtype=np.uint8),
        "Gaussian blur sigma=1 px": lambda x: _clip_uint8(ndimage.gaussian_filter(x.astype(float), (0, 1, 1, 0))),
        "Gaussian blur sigma=0.5 px": lambda x: _clip_uint8(ndimage.gaussian_filter(x.astype(float),
                                                                                     (0, 0.5, 0.5, 0))),
        "pixel noise sd=25 (of 255)": lambda x: _clip_uint8(x + rng.normal(0, 25, x.shape)),
        "pixel noise sd=8 (of 255)": lambda x: _clip_uint8(x + rng.normal(0, 8, x.shape)),
        "RGB -> BGR": lambda x: x[..., ::-1].copy(),
        "8x8 down, nearest up": lambda x: x[:, ::2, ::2].repeat(2, 1).repeat(2, 2),
        "10 sprites repeated": lambda x: x[rng.choice(len(x), 10, replace=False)][rng.integers(0, 10, len(x))],
        "mirrored (hflip)": lambda x: x[:, :, ::-1].copy(),
    }


def _row(name: str, fa: np.ndarray, fb: np.ndarray, seed: int, kid_subsets: int = KID_SUBSETS) -> dict:
    scores = fid_kid(fa, fb, kid_subsets, seed)
    return {"set": name, "n_a": len(fa), "n_b": len(fb), "sprite_fid": scores["sprite_fid"],
            "kid": scores["sprite_kid"], "kid_subset_std": scores["sprite_kid_subset_std"]}


def calibrate(data_path: str | None = None, weights: str | None = None, seeds: int = 5,
              sizes: tuple[int | None, ...] = (100, 250, 500, None), kid_subsets: int = KID_SUBSETS,
              only: tuple[str, ...] | None = None) -> dict:
    """The floor for each size in ``sizes`` (``None``: all of half A) and the sanity rows; see the module doc.

    ``only`` restricts the corruptions to those names (tests use it to stay fast).
    """
    images, labels = read_sprites_arrays(data_path)
    net = load_sprite_feature_net(weights)
    meta = load_sprite_feature_meta(weights)
    feats = extract_sprite_features(images, net)
    floor = []
    for n in sizes:
        fids, kids = [], []
        for seed in range(seeds):
            a, b = halves_by_pairs(labels, seed)
            rng = np.random.default_rng(seed)
            a_sub = a if n is None else rng.choice(a, min(n, len(a)), replace=False)
            r = _row("", feats[a_sub], feats[b], seed, kid_subsets)
            fids.append(r["sprite_fid"])
            kids.append(r["kid"])
        floor.append({"n_a": "all" if n is None else int(min(n, len(a))), "n_b": int(len(b)),
                      "sprite_fid_mean": float(np.mean(fids)),
                      "sprite_fid_std": float(np.std(fids)), "kid_mean": float(np.mean(kids)),
                      "kid_std": float(np.std(kids))})
    held = np.asarray(meta["held_out_indices"])
    train = np.setdiff1d(np.arange(len(labels)), held)
    rows = [_row("classifier held-out vs its training sprites", feats[held], feats[train], 0, kid_subsets)]
    a, b = halves_by_pairs(labels, 0)
    rows.append(_row("half A vs half B (no corruption)", feats[a], feats[b], 0, kid_subsets))
    rng = np.random.default_rng(0)
    for name, fn in corruptions(rng).items():
        corrupted = fn(images[a])  # always drawn, so that ``only`` does not change the random corruptions
        if only is None or name in only:
            rows.append(_row(name, extract_sprite_features(corrupted, net), feats[b], 0, kid_subsets))
    return {"weights_version": meta["version"], "data_sha256": meta["data_sha256"],
            "data_matches_weights": bool(meta["data_sha256"] == _sha(images, labels)),
            "floor": floor, "rows": rows, "seeds": seeds}


def _sha(images: np.ndarray, labels: np.ndarray) -> str:
    from evaluation.splits import data_sha256

    return data_sha256(images, labels)


def floor_table(result: dict) -> str:
    """The real-vs-real floor: N sprites of half A against all of half B, mean +- sd over the pair splits."""
    lines = ["| N of half A | half B (N) | sprite-FID | sprite-KID |", "| ---: | ---: | ---: | ---: |"]
    for f in result["floor"]:
        lines.append(f"| {f['n_a']} | {f['n_b']} | {f['sprite_fid_mean']:.3f} +- {f['sprite_fid_std']:.3f} | "
                     f"{f['kid_mean']:.5f} +- {f['kid_std']:.5f} |")
    return "\n".join(lines)


def sanity_table(result: dict) -> str:
    """The classifier's held-out sprites and each corruption of half A, against half B (split seed 0)."""
    lines = ["| set | N | vs N | sprite-FID | sprite-KID |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['set']} | {r['n_a']} | {r['n_b']} | {r['sprite_fid']:.3f} | {r['kid']:.5f} |")
    return "\n".join(lines)


def to_markdown(result: dict) -> str:
    return "\n".join([f"sprite feature network {result['weights_version']}; data matches the weights' training "
                      f"data: {result['data_matches_weights']}", "",
                      f"Floor: N sprites of half A vs all of half B (mean +- sd over {result['seeds']} pair splits)",
                      "", floor_table(result), "",
                      "Sanity checks (split seed 0; corruptions applied to half A, compared with half B)", "",
                      sanity_table(result)])


def write_outputs(result: dict, out: str | Path) -> Path:
    """``results.json``, ``floor.md`` and ``sanity.md`` in ``out``, each written whole (atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(result, indent=1) + "\n")
    write_text_atomic(out / "floor.md", floor_table(result) + "\n")
    write_text_atomic(out / "sanity.md", sanity_table(result) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Real-vs-real floor and corruption checks of sprite-FID/KID.")
    parser.add_argument("--data_path", default=None, help="sprites folder or file (default: $SPRITEDIFF_DATA or "
                        "../shared/data/sprites)")
    parser.add_argument("--weights", default=None, help="sprite feature weights (default: the committed v1)")
    parser.add_argument("--seeds", type=int, default=5, help="number of pair splits for the floor")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument("--out", default=None, help="also write results.json, floor.md and sanity.md here")
    args = parser.parse_args(argv)
    result = calibrate(args.data_path, args.weights, args.seeds)
    print(to_markdown(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    if args.out:
        print(f"wrote {write_outputs(result, args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
