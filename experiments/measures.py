"""Do the measures agree? Sample sets scored in several feature spaces.

    python -m experiments.measures [--config configs/bench/measures.yaml] [--out DIR]

Reads sample sets that ``bench.sampler_frontier`` drew into its sample cache (found by model hash and setting;
nothing is sampled here) and scores each against real half B in every feature space of the config: the sprite
network of sprite-FID, sprite networks of the same recipe with other seeds, split and widths (trained on first
use), and raw pixels. Per set and space: the Frechet distance split into its mean term ``|mu_g - mu_r|^2`` and its
covariance term (Dowson and Landau 1982; Heusel et al. 2017, eq. 6), and k-NN precision/recall (Kynkaanniemi et al.
2019) with the binomial standard error of precision. For the sprite network also the per-class terms: each sample's
predicted class, and the distance between the samples of a class and the real sprites of that class. Writes
``results.json`` and one Markdown table per view (distances, terms, precision/recall, pairs, classes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.common import ROOT, result_envelope, write_json
from pipelines.atomic import write_text_atomic
from sprites.cli import rel

CONFIG = ROOT / "configs" / "bench" / "measures.yaml"
PIXELS = "pixels"


def config_and_out(prog: str, description: str, default: Path,
                   argv: list[str] | None) -> tuple[Path, dict[str, Any], Path]:
    """``--config`` (``default``) and ``--out`` of a benchmark that reads one YAML config: the config's path, its
    contents and the output folder (``--out``, else the config's ``out`` under the project root)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", type=Path, default=default)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the config's out)")
    args = p.parse_args(argv)
    try:
        cfg = yaml.safe_load(args.config.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"error: {args.config}: {' '.join(str(exc).split())}") from None
    return args.config, cfg, args.out or ROOT / cfg["out"]


def find_samples(caches: list[Path], model: str, setting: dict, num_images: int, seed: int) -> tuple[np.ndarray, dict]:
    """The cached uint8 samples of the model (hash prefix) at ``setting`` (sampler, nfe, prior[, eta]), N and seed,
    with where they came from; one line naming the command that draws them when none is cached."""
    wanted = {"sampler": setting["sampler"], "nfe": setting["nfe"], "num_images": num_images, "seed": seed}
    for cache in caches:
        for file in sorted(cache.glob("*.npz")):
            with np.load(file, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if (str(meta.get("model_sha256")).startswith(model) and all(meta.get(k) == v for k, v in wanted.items())
                        and meta.get("prior") == setting.get("prior") and meta.get("sigma_schedule") is None
                        and ("eta" not in setting or meta.get("eta") == setting["eta"])):
                    return z["images"], {"file": file.name, "model_sha256": meta["model_sha256"],
                                         "code_sha256": meta["code_sha256"]}
    raise SystemExit(f"error: no cached samples of model {model} at {setting} (N = {num_images}, seed {seed}) in "
                     f"{', '.join(map(str, caches))}; draw them with python -m bench.sampler_frontier --config "
                     "configs/bench/candidates.yaml --pipeline FOLDER --only SETTING --cache outputs/cache/samples")


def load_networks(cfg: dict) -> dict[str, tuple[Any, Path]]:
    """name -> (sprite feature network, its weights file); a network with ``train`` overrides is trained first when
    its file is missing (configs/sprite_classifier.yaml plus the overrides, into ``networks_dir``)."""
    from evaluation.features import load_sprite_feature_net
    from evaluation.train_classifier import load_classifier_config, train

    nets = {}
    for spec in cfg["networks"]:
        if "weights" in spec:
            path = ROOT / spec["weights"]
        else:
            path = ROOT / cfg["networks_dir"] / f"sprite_features_{spec['train']['version']}.safetensors"
            if not path.is_file():
                overrides = [x for k, v in spec["train"].items() for x in (f"--{k}", json.dumps(v))]
                train(load_classifier_config(ROOT / cfg["classifier"],
                                             [*overrides, "--output_dir", str(path.parent)]))
        nets[spec["name"]] = load_sprite_feature_net(path), path
    return nets


def space_scores(generated: np.ndarray, real: np.ndarray, k: int) -> dict[str, float]:
    """Frechet distance with its terms, precision/recall and their binomial standard errors (over the generated
    points for precision, the real ones for recall)."""
    from evaluation.metrics import frechet_terms, precision_recall

    out = frechet_terms(generated, real)
    out["precision"], out["recall"] = precision_recall(generated, real, k)
    out["precision_se"] = float(np.sqrt(out["precision"] * (1 - out["precision"]) / len(generated)))
    out["recall_se"] = float(np.sqrt(out["recall"] * (1 - out["recall"]) / len(real)))
    return out


def difference(sa: dict, sb: dict, measure: str, spaces: list[str]) -> dict[str, dict[str, float]]:
    """``a - b`` of one measure per space, and that difference in standard errors (``diff``, ``diff_se``)."""
    return {"diff": {sp: sa[sp][measure] - sb[sp][measure] for sp in spaces},
            "diff_se": {sp: (sa[sp][measure] - sb[sp][measure]) / np.hypot(sa[sp][f"{measure}_se"],
                                                                           sb[sp][f"{measure}_se"]) for sp in spaces}}


def class_scores(features: np.ndarray, predicted: np.ndarray, real: np.ndarray, real_labels: np.ndarray,
                 min_count: int = 20) -> dict[str, dict]:
    """Per class: the share of samples predicted in it and the Frechet distance between those samples and the real
    sprites of the class (None under ``min_count`` samples)."""
    from evaluation.metrics import fid_from_features
    from pipelines.labels import SPRITE_CLASSES

    out = {}
    for c, name in enumerate(SPRITE_CLASSES):
        mine = features[predicted == c]
        out[name] = {"share": float(np.mean(predicted == c)), "data_share": float(np.mean(real_labels == c)),
                     "fd": fid_from_features(mine, real[real_labels == c]) if len(mine) >= min_count else None}
    return out


def set_name(s: dict) -> str:
    return f"{s['model']}, {s['setting']}"


def table(header: list[str], rows: list[list[str]], align: str = "---:") -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "| --- |" + f" {align} |" * (len(header) - 1),
                      *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def markdown(res: dict) -> dict[str, str]:
    """The tables: distances, mean-term shares, precision/recall, same-setting pairs and classes."""
    spaces, sets = res["spaces"], res["sets"]
    head = ["set", *spaces]
    fd = table(head, [[set_name(s)] + [f"{s['scores'][sp]['fd']:.3g}" for sp in spaces] for s in sets])
    terms = table(head, [[set_name(s)] + [f"{100 * s['scores'][sp]['mean_term'] / s['scores'][sp]['fd']:.0f}%"
                                          for sp in spaces] for s in sets])
    pr = table(head, [[set_name(s)] + [f"{s['scores'][sp]['precision']:.2f} / {s['scores'][sp]['recall']:.2f}"
                                       for sp in spaces] for s in sets])
    pairs = table(["pair (same setting)", *spaces],
                  [[f"{p['a']} / {p['b']}, {p['setting']}"] + [
                      f"{p['fd_ratio'][sp]:.2f}; {p['precision_diff'][sp]:+.2f} ({p['precision_diff_se'][sp]:+.1f} se)"
                      for sp in spaces] for p in res["pairs"]])
    classes = list(sets[0]["classes"])
    cls = table(["set", *classes], [[set_name(s)] + [
        f"{100 * v['share']:.0f}% ({100 * v['data_share']:.0f}%); " + ("n/a" if v["fd"] is None else f"{v['fd']:.3g}")
        for v in s["classes"].values()] for s in sets] + [["reference: real half A"] + [
            f"{100 * v['share']:.0f}% ({100 * v['data_share']:.0f}%); {v['fd']:.3g}"
            for v in res["real_half_a"]["classes"].values()]])
    return {"distances.md": fd, "mean_terms.md": terms, "precision_recall.md": pr, "pairs.md": pairs,
            "classes.md": cls}


def main(argv: list[str] | None = None) -> int:
    config, cfg, out = config_and_out("python -m experiments.measures", __doc__.split("\n\n")[0], CONFIG, argv)
    from evaluation.features import extract_sprite_features
    from evaluation.scoring import predict_classes
    from evaluation.splits import halves_by_pairs
    from sprites.data import read_sprites_arrays

    caches = [ROOT / c for c in cfg["cache"]]
    samples = {}
    for s in cfg["sets"]:  # every set first: a missing one stops the run before any network is trained
        model = cfg["models"][s["model"]]["sha256"]
        samples[set_name(s)] = find_samples(caches, model, cfg["settings"][s["setting"]], cfg["num_images"],
                                            s.get("seed", cfg["seed"]))  # a set's own seed: another z
    real, labels = read_sprites_arrays()
    half_a, half_b = halves_by_pairs(labels, 0)
    from evaluation.features import load_sprite_feature_meta

    loaded = load_networks(cfg)
    nets = {name: net for name, (net, _) in loaded.items()}

    def features(images: np.ndarray) -> dict[str, np.ndarray]:
        f = {name: extract_sprite_features(images, net) for name, net in nets.items()}
        f[PIXELS] = images.reshape(len(images), -1).astype(np.float64) / 255.0
        return f

    real_all = features(real)
    real_f = {k: v[half_b] for k, v in real_all.items()}
    first = next(iter(nets))
    sets = []
    for s in cfg["sets"]:
        images, source = samples[set_name(s)]
        f = features(images)
        scores = {sp: space_scores(f[sp], real_f[sp], cfg["neighbours"]) for sp in f}
        predicted = predict_classes(images, nets[first])[0]
        sets.append({**s, **source, "scores": scores,
                     "classes": class_scores(f[first], predicted, real_f[first], labels[half_b])})
        print(f"{set_name(s)}: " + ", ".join(f"{sp} {v['fd']:.3g}" for sp, v in scores.items()), flush=True)
    half_a_classes = class_scores(real_all[first][half_a], predict_classes(real[half_a], nets[first])[0],
                                  real_f[first], labels[half_b])
    spaces = [*nets, PIXELS]
    pairs = []
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            if a["setting"] == b["setting"]:
                sa, sb = a["scores"], b["scores"]
                pairs.append({"a": a["model"], "b": b["model"], "setting": a["setting"],
                              "fd_ratio": {sp: sa[sp]["fd"] / sb[sp]["fd"] for sp in spaces},
                              **{f"{m}_{k}": v for m in ("precision", "recall")
                                 for k, v in difference(sa, sb, m, spaces).items()}})
    res = {**result_envelope("experiments.measures", argv), "config": rel(config), "spaces": spaces,
           "networks": {name: {"file": rel(path), "version": net.version,
                               "widths": list(net.config.widths), "feature_dim": net.config.feature_dim,
                               "held_out_accuracy": load_sprite_feature_meta(path)["held_out_accuracy"]}
                        for name, (net, path) in loaded.items()},
           "models": cfg["models"], "sets": sets, "pairs": pairs,
           "real_half_a": {"classes": half_a_classes}}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", res)
    for name, text in markdown(res).items():
        write_text_atomic(out / name, text)
        print(f"\n{name}\n{text}")
    print(f"wrote {out}/results.json and its tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
