"""How far to trust one evaluation row: the spread of the scores of small sample sets.

    python -m experiments.eval_noise [--config configs/bench/eval_noise.yaml] [--out DIR]

An evaluation during training scores ``eval_samples`` sprites (100 by default) per sample set. This reads a model's
1,000-sample sets that ``bench.sampler_frontier`` drew (found in the sample cache by model hash and setting, as
``experiments.measures`` finds them; nothing is sampled here), cuts each, after one seeded permutation, into disjoint
subsets of n sprites for every n of ``subset_sizes``, and scores every subset against real half B with
``evaluation.quality.SpriteScorer`` (sprite-FID, KID, precision/recall). Per setting and n it reports the median and
range over the subsets beside the score of all 1,000; per pair of settings (``pairs``), in how many subsets the two
are ordered by sprite-FID as all 1,000 order them (subset i of both settings holds the same sample indices, so the
same initial noise z). Writes ``results.json`` and ``table.md``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from bench.common import ROOT, result_envelope
from experiments.measures import config_and_out, find_samples
from pipelines.atomic import write_text_atomic
from sprites.cli import rel

CONFIG = ROOT / "configs" / "bench" / "eval_noise.yaml"
METRICS = ("sprite_fid", "sprite_kid", "precision", "recall")


def disjoint_subsets(num_images: int, n: int, seed: int) -> list[np.ndarray]:
    """``num_images // n`` disjoint index sets of size ``n``: consecutive blocks of one seeded permutation."""
    if not 1 <= n <= num_images:
        raise SystemExit(f"error: subset size {n} must be in 1..{num_images} (the sample sets' size); fix "
                         "subset_sizes in the config")
    order = np.random.default_rng(seed).permutation(num_images)
    return [order[i * n:(i + 1) * n] for i in range(num_images // n)]


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of one metric over the subsets."""
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def order_agreement(full: dict[str, float], subsets: dict[str, list[float]], a: str, b: str) -> dict[str, int]:
    """In how many subsets settings ``a`` and ``b`` are ordered by sprite-FID as their full sets are."""
    sign = np.sign(full[a] - full[b])
    agree = [bool(np.sign(x - y) == sign) for x, y in zip(subsets[a], subsets[b], strict=True)]
    return {"agree": int(sum(agree)), "subsets": len(agree)}


def markdown(res: dict[str, Any]) -> str:
    """One row per setting and n (median and range over the subsets), the full set last; then the pairs."""
    head = ["setting", "n", "subsets", *(f"{m} median (min-max)" for m in METRICS)]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    fmt = {"sprite_fid": ".3f", "sprite_kid": ".4f", "precision": ".2f", "recall": ".2f"}
    for name, s in res["settings"].items():
        for n, sub in s["subsets"].items():
            cells = [f"{sub[m]['median']:{fmt[m]}} ({sub[m]['min']:{fmt[m]}} to {sub[m]['max']:{fmt[m]}})"
                     for m in METRICS]
            lines.append(f"| {name} | {n} | {sub['count']} | " + " | ".join(cells) + " |")
        lines.append(f"| {name} | {s['full']['n']} | 1 | " + " | ".join(f"{s['full'][m]:{fmt[m]}}" for m in METRICS)
                     + " |")
    for p in res["pairs"]:
        for n, agree in p["agreement"].items():
            lines.append(f"\nsprite-FID orders {p['a']} and {p['b']} as all {res['num_images']} do in "
                         f"{agree['agree']} of {agree['subsets']} subsets of {n}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    config, cfg, out = config_and_out("python -m experiments.eval_noise", __doc__.split("\n\n")[0], CONFIG, argv)
    caches = [ROOT / c for c in cfg["cache"]]
    samples = {name: find_samples(caches, cfg["model"]["sha256"], setting, cfg["num_images"], cfg["seed"])
               for name, setting in cfg["settings"].items()}
    from evaluation.features import extract_sprite_features
    from evaluation.quality import SpriteScorer
    from evaluation.scoring import predict_classes

    scorer = SpriteScorer()
    res: dict[str, Any] = {**result_envelope("experiments.eval_noise", argv, None), "config": rel(config),
                           "model": cfg["model"], "num_images": cfg["num_images"], "settings": {}, "pairs": []}
    fids: dict[int, dict[str, list[float]]] = {n: {} for n in cfg["subset_sizes"]}
    for name, (images, source) in samples.items():
        features, predicted = extract_sprite_features(images, scorer.net), predict_classes(images, scorer.net)[0]
        full = scorer.score_features(features, predicted)  # the network runs once per set; subsets slice its output
        entry = {"source": source, "full": {"n": int(full["n"]), **{m: float(full[m]) for m in METRICS}},
                 "subsets": {}}
        for n in cfg["subset_sizes"]:
            scores = [scorer.score_features(features[idx], predicted[idx])
                      for idx in disjoint_subsets(len(images), n, cfg["subset_seed"])]
            fids[n][name] = [float(s["sprite_fid"]) for s in scores]
            entry["subsets"][str(n)] = {"count": len(scores),
                                        **{m: spread([float(s[m]) for s in scores]) for m in METRICS}}
        res["settings"][name] = entry
        print(f"{name}: sprite-FID {full['sprite_fid']:.3f} at N = {full['n']}", flush=True)
    full_fid = {name: e["full"]["sprite_fid"] for name, e in res["settings"].items()}
    for a, b in cfg.get("pairs", []):
        res["pairs"].append({"a": a, "b": b, "agreement": {str(n): order_agreement(full_fid, fids[n], a, b)
                                                           for n in cfg["subset_sizes"]}})
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(res, indent=1) + "\n")
    table = markdown(res)
    write_text_atomic(out / "table.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
