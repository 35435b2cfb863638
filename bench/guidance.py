"""Classifier-free guidance of the class-conditional model: does the sample show the requested class, and at
what cost in sprite-FID, for guidance scales w = 0 (unconditional), 1 (plain conditional), 2, 4.

    python -m bench.guidance --pipeline runs/sprites_conditional/pipeline [--scales 0 1 2 4] [--num_per_class 10]
        [--num_images 1000] [--sampler ddim] [--steps 50] [--eta 0] [--prior standard|moments] [--batch_size 250]
        [--seed 0]
        [--threads N] [--out outputs/bench/guidance] [--overwrite]

For each scale w (eps = eps_uncond + w (eps_cond - eps_uncond)), with the same seeds (the same x_T) at every w:

* evaluation set: ``--num_images`` samples whose requested classes follow the real class mix (9% hero,
  36% non-hero, 7% food, 39% spell, 9% side-facing; sprite-FID punishes a wrong mix, see docs/evaluation.md).
  The sprite network (``load_sprite_feature_net()``; its logits, held-out accuracy 0.978) predicts each
  sample's class: the share that matches the requested class, per class and balanced. Against real half B,
  :class:`evaluation.quality.SpriteScorer` gives sprite-FID, sprite-KID, improved precision and recall (k = 3)
  and the class-mix gap (percentage points); sprite-FID/KID also against all 1,788, and the real floor (half A
  vs B at the same N). At w = 0 the label is ignored, so the match there is the chance level of the
  unconditional class mix. The memorisation share (:func:`bench.sampler_frontier.memorisation_scorer`: samples
  closer in pixels to a training sprite than 95% of real sprites are to their nearest other one) shows copying.
* a grid per class (rows = classes, ``--num_per_class`` columns) and a grid of mixed contexts (soft labels:
  hero+food, non-hero+spell, food+spell at 0.5/0.5 and 0.75/0.25), with the predicted class shares of the
  mixed samples.

Outputs in --out (complete or not at all; replaced only with --overwrite): ``results.json``, ``table.md``,
``classes.png``, ``mixes.png`` (one panel per scale), ``guidance.png`` (match share and sprite-FID against w).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import quality_cells, refuse_existing_output, result_envelope
from bench.sampler_frontier import memorisation_scorer
from evaluation.features import extract_sprite_features, load_sprite_feature_meta
from evaluation.output import output_dir
from evaluation.plots import plain_log_ticks, pyplot, save_figure, save_labelled_grids
from evaluation.quality import SpriteScorer
from evaluation.sampling import sample_in_batches
from evaluation.scoring import class_match, fid_kid, predict_classes
from pipelines.atomic import write_text_atomic
from pipelines.labels import SPRITE_CLASSES
from pipelines.loading import PipelineFolderError, load_pipeline
from pipelines.prior import MissingMomentsError
from sprites.cli import ArgumentParser

MARKER = "results.json"
SHORT = {"hero": "hero", "non-hero": "non-hero", "food": "food", "spell": "spell", "side-facing": "side"}
# (first class, second class, weight of the first)
DEFAULT_MIXES = [("hero", "food", 0.5), ("non-hero", "spell", 0.5), ("food", "spell", 0.5),
                 ("hero", "food", 0.75), ("non-hero", "spell", 0.75), ("food", "spell", 0.75)]


def mix_weights(first: str, second: str, w: float) -> list[float]:
    """Five class weights with ``w`` on ``first`` and ``1 - w`` on ``second``."""
    weights = [0.0] * len(SPRITE_CLASSES)
    weights[SPRITE_CLASSES.index(first)] += w
    weights[SPRITE_CLASSES.index(second)] += 1 - w
    return weights


def labels_in_shares(shares: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` class labels in the class ``shares`` (largest remainders), in a seeded random order."""
    counts = shares * n
    whole = np.floor(counts).astype(int)
    order = np.argsort(-(counts - whole), kind="stable")
    whole[order[:n - whole.sum()]] += 1
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(whole)), whole))


def mix_shares(predicted: np.ndarray, first: str, second: str) -> dict[str, float]:
    """Shares of the samples predicted as ``first``, as ``second`` and as any other class."""
    a, b = SPRITE_CLASSES.index(first), SPRITE_CLASSES.index(second)
    return {first: float((predicted == a).mean()), second: float((predicted == b).mean()),
            "other": float(((predicted != a) & (predicted != b)).mean())}


def plot_guidance(rows: list[dict], floor: dict, chance: float | None, path: Path) -> None:
    """Left: the share of samples showing the requested class against w; right: sprite-FID against w."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    w = [r["scale"] for r in rows]
    ax.plot(w, [r["match"]["match"] for r in rows], "o-", color="k", lw=2, label="all samples")
    ax.plot(w, [r["match"]["balanced"] for r in rows], "s--", color="k", label="balanced over classes")
    for c, name in enumerate(SPRITE_CLASSES):
        ax.plot(w, [r["match"]["per_class"][c] for r in rows], ".-", alpha=0.7, label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label="chance (class mix)")
    ax.set(xlabel="guidance scale w", ylabel="share predicted = requested", ylim=(0, 1.02),
           title="Requested class recognised by the sprite network")
    ax.set_xticks(w)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    bx.plot(w, [r["vs_half_b"]["sprite_fid"] for r in rows], "o-", label="vs real half B")
    bx.plot(w, [r["vs_all"]["sprite_fid"] for r in rows], "s--", label="vs all 1,788")
    bx.axhline(floor["sprite_fid"], color="grey", ls=":", label=f"floor: real A ({floor['n']}) vs B")
    bx.set(xlabel="guidance scale w", ylabel="sprite-FID (log)", yscale="log",
           title=f"sprite-FID, {rows[0]['vs_half_b']['n']} samples per scale")
    bx.set_xticks(w)
    plain_log_ticks(bx.yaxis)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def markdown_tables(rows: list[dict], floor: dict, mixes: list[dict]) -> str:
    """One row per scale and the floor row; then the predicted class shares of the mixed contexts."""
    head = ["w", "match", "balanced", *[SHORT[c] for c in SPRITE_CLASSES], "sprite-FID vs B", "KID vs B",
            "precision", "recall", "class gap pp", "sprite-FID vs all", "memorised", "wall s", "img/s"]
    lines = ["| " + " | ".join(head) + " |", "|---:|" + "---:|" * (len(head) - 1)]
    for r in rows:
        m = r["match"]
        lines.append("| " + " | ".join([
            f"{r['scale']:g}", f"{m['match']:.3f}", f"{m['balanced']:.3f}",
            *[f"{v:.2f}" if v is not None else "-" for v in m["per_class"]], *quality_cells(r["vs_half_b"]),
            f"{r['vs_all']['sprite_fid']:.3f}", f"{r['memorisation']['share_below_real_quantile']['0.05']:.1%}",
            f"{r['timing']['wall_s']:.1f}",
            f"{r['timing']['images_per_s']:.2f}"]) + " |")
    lines.append("| " + " | ".join([f"real A ({floor['n']}) vs B", "", "", *[""] * len(SPRITE_CLASSES),
                                    *quality_cells(floor), "", "", "", ""]) + " |")
    if mixes:
        scales = [s["scale"] for s in mixes[0]["by_scale"]]
        lines += ["", "Mixed contexts: predicted class shares (first / second / other) of the "
                  f"{mixes[0]['by_scale'][0]['n']} samples per mix", "",
                  "| mix | " + " | ".join(f"w={w:g}" for w in scales) + " |", "|---|" + "---:|" * len(scales)]
        for mix in mixes:
            cells = []
            for s in mix["by_scale"]:
                v = s["shares"]
                cells.append(f"{v[mix['first']]:.2f} / {v[mix['second']]:.2f} / {v['other']:.2f}")
            lines.append(f"| {mix['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", required=True, help="a saved class-conditional pipeline folder")
    p.add_argument("--scales", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0], help="guidance scales w")
    p.add_argument("--num_per_class", type=int, default=10, help="columns of the class and mix grids")
    p.add_argument("--num_images", type=int, default=1000, help="evaluation samples per scale (real class mix)")
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    p.add_argument("--steps", type=int, default=50, help="sampling steps (DDPM: all T when 0)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    p.add_argument("--prior", choices=("standard", "moments"), default="standard",
                   help="x_T from N(0, I) or the data's Gaussian at T (the folder's data_moments.safetensors)")
    p.add_argument("--batch_size", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split_seed", type=int, default=0, help="the pair-aware halves A / B of the real sprites")
    p.add_argument("--kid_subsets", type=int, default=100)
    p.add_argument("--no_mixes", action="store_true", help="skip the mixed-context grid")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier and, on a shared "
                   "machine, much faster; 0: torch's default)")
    p.add_argument("--data_path", default=None, help="real sprites (default: $SPRITEDIFF_DATA or ../shared)")
    p.add_argument("--out", default="outputs/bench/guidance", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder of this command")
    args = p.parse_args(argv)
    if args.num_images < 2 or args.num_per_class < 1 or args.batch_size < 1:
        p.error("--num_images must be >= 2, --num_per_class and --batch_size >= 1")
    if any(w < 0 for w in args.scales):
        p.error("guidance scales must be >= 0")
    if args.sampler == "ddpm" and args.eta != 0:
        p.error("--eta applies to --sampler ddim only")
    return args


def load_conditional_pipeline(args: argparse.Namespace):
    """The pipeline of ``--sampler`` from ``--pipeline``; refused unless its UNet has the null class."""
    try:
        pipe = load_pipeline(args.pipeline, args.sampler)
    except PipelineFolderError as exc:
        raise SystemExit(f"error: {exc}") from None
    n_embeds = pipe.unet.config.get("num_class_embeds")
    if n_embeds != len(SPRITE_CLASSES) + 1:
        raise SystemExit(f"error: {args.pipeline}: guidance needs a class-conditional UNet of the sprites' classes "
                         f"with a null class (num_class_embeds = {len(SPRITE_CLASSES) + 1}: the sprite network scores "
                         f"class match); this one has {n_embeds}")
    if args.prior == "moments":
        try:
            pipe.data_moments()
        except MissingMomentsError as exc:
            raise SystemExit(f"error: {exc}") from None
    return pipe


def sampling_call(args: argparse.Namespace, num_train_timesteps: int) -> dict[str, Any]:
    """The pipeline arguments of every sample: the steps (``--steps 0``: all T) and, for DDIM, eta."""
    steps = args.steps or num_train_timesteps
    if not 1 <= steps <= num_train_timesteps:
        raise SystemExit(f"error: --steps must lie in 1..{num_train_timesteps}")
    return {"num_inference_steps": steps, "prior": args.prior,
            **({"eta": args.eta} if args.sampler == "ddim" else {})}


def mix_records(mixes: list[tuple[str, str, float]]) -> list[dict]:
    """One record per mixed context, to be filled with the predicted shares at every scale."""
    return [{"name": f"{SHORT[a]} {w:g} + {SHORT[b]} {1 - w:g}", "first": a, "second": b, "weight_first": w,
             "weights": mix_weights(a, b, w), "by_scale": []} for a, b, w in mixes]


def run_scale(w: float, pipe, call: dict, args: argparse.Namespace, scorer: SpriteScorer, memorised,
              requested: np.ndarray, grid_labels: np.ndarray, mix_labels: list,
              mix_results: list[dict]) -> tuple[dict, tuple, tuple | None]:
    """Everything at guidance scale ``w``: the evaluation row, the class-grid panel and the mix-grid panel (None
    without mixes); the mixes' predicted shares are appended to ``mix_results``. ``memorised``: images -> the
    memorisation summary."""
    images, timing = sample_in_batches(pipe, args.num_images, args.batch_size, args.seed,
                                       class_labels=requested.tolist(), guidance_scale=w, **call)
    predicted, _ = predict_classes(images, scorer.net)
    feats = extract_sprite_features(images, scorer.net)
    shares = np.bincount(predicted, minlength=len(SPRITE_CLASSES))
    row = {"scale": w, "timing": timing, "match": class_match(predicted, requested),
           "predicted_class_share": [c / len(predicted) for c in shares.tolist()],
           "vs_half_b": scorer.score(images),
           "vs_all": fid_kid(feats, scorer.real_features, args.kid_subsets, args.seed),
           "memorisation": memorised(images)}
    grid, _ = sample_in_batches(pipe, len(grid_labels), args.batch_size, args.seed + 10_000,
                                class_labels=grid_labels.tolist(), guidance_scale=w, **call)
    row["grid_match"] = class_match(predict_classes(grid, scorer.net)[0], grid_labels)
    class_panel = (f"w = {w:g} (match {row['grid_match']['match']:.2f})",
                   [grid[grid_labels == c] for c in range(len(SPRITE_CLASSES))])
    mix_panel = None
    if mix_labels:
        k = args.num_per_class
        mixed, _ = sample_in_batches(pipe, len(mix_labels), args.batch_size, args.seed + 20_000,
                                     class_labels=mix_labels, guidance_scale=w, **call)
        mixed_pred, _ = predict_classes(mixed, scorer.net)
        for i, mix in enumerate(mix_results):
            part = mixed_pred[i * k:(i + 1) * k]
            mix["by_scale"].append({"scale": w, "n": k, "shares": mix_shares(part, mix["first"], mix["second"])})
        mix_panel = (f"w = {w:g}", [mixed[i * k:(i + 1) * k] for i in range(len(mix_results))])
    return row, class_panel, mix_panel


def chance_match(rows: list[dict], requested: np.ndarray) -> float | None:
    """The match of the requested mix against the unconditional (w = 0) predicted mix, if w = 0 was run."""
    uncond = next((r for r in rows if r["scale"] == 0), None)
    if uncond is None:
        return None
    req_share = np.bincount(requested, minlength=len(SPRITE_CLASSES)) / len(requested)
    return float(req_share @ np.asarray(uncond["predicted_class_share"]))


def write_outputs(out_dir: Path, overwrite: bool, result: dict, class_grids: list, mix_grids: list,
                  args: argparse.Namespace) -> None:
    """The figures, table.md and results.json, as one folder that appears complete."""
    with output_dir(out_dir, MARKER, overwrite) as tmp:
        k, steps = args.num_per_class, result["steps"]
        what = f"{args.sampler.upper()} {steps} steps" + (f", eta {args.eta:g}" if args.sampler == "ddim" else "") \
            + f", {args.prior} prior"
        save_labelled_grids(class_grids, list(SPRITE_CLASSES), tmp / "classes.png",
                            f"One row per requested class, {k} samples each; {what}; same x_T in every panel")
        if mix_grids:
            save_labelled_grids(mix_grids, [m["name"] for m in result["mixes"]], tmp / "mixes.png",
                                f"Mixed contexts (soft labels), {k} samples each; {what}; same x_T in every panel")
        plot_guidance(result["rows"], result["floor"], result["chance_match_unconditional"], tmp / "guidance.png")
        result["figures"] = sorted(p.name for p in tmp.glob("*.png"))
        write_text_atomic(tmp / "table.md", result["table_markdown"] + "\n")
        write_text_atomic(tmp / MARKER, json.dumps(result, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    refuse_existing_output(out_dir, MARKER, args.overwrite)
    pipe = load_conditional_pipeline(args)
    call = sampling_call(args, pipe.scheduler.config.num_train_timesteps)
    k, mixes = args.num_per_class, [] if args.no_mixes else DEFAULT_MIXES
    per_scale = args.num_images + k * len(SPRITE_CLASSES) + k * len(mixes)
    cost = sum(per_scale * call["num_inference_steps"] * (2 if w not in (0, 1) else 1) for w in args.scales)
    print(f"{len(args.scales)} scales x {per_scale} images, {args.sampler} {call['num_inference_steps']} steps: "
          f"{cost:,} image-steps of the UNet; {torch.get_num_threads()} torch thread(s), load "
          f"{os.getloadavg()[0]:.1f}", file=sys.stderr)

    scorer = SpriteScorer(args.data_path, args.split_seed, args.kid_subsets)
    floor = scorer.floor(args.num_images)
    memorised = memorisation_scorer(scorer.real)
    requested = labels_in_shares(scorer.data_shares, args.num_images, args.seed)
    grid_labels = np.repeat(np.arange(len(SPRITE_CLASSES)), k)
    mix_labels = [mix_weights(a, b, w) for a, b, w in mixes for _ in range(k)]
    rows, class_grids, mix_grids, mix_results = [], [], [], mix_records(mixes)
    for w in args.scales:
        print(f"w = {w:g} ...", file=sys.stderr, flush=True)
        row, class_panel, mix_panel = run_scale(w, pipe, call, args, scorer, memorised, requested, grid_labels,
                                                mix_labels, mix_results)
        rows.append(row)
        class_grids.append(class_panel)
        mix_grids += [mix_panel] if mix_panel else []
        print(f"  w = {w:g}: match {row['match']['match']:.3f}, sprite-FID vs B {row['vs_half_b']['sprite_fid']:.3f}, "
              f"{row['timing']['wall_s']:.1f} s", file=sys.stderr, flush=True)

    result = {
        **result_envelope("bench.guidance", argv, args.pipeline),
        "sampler": args.sampler, "steps": call["num_inference_steps"], "eta": call.get("eta"),
        "prior": args.prior, "scales": args.scales, "num_images": args.num_images, "num_per_class": k,
        "batch_size": args.batch_size,
        "seed": args.seed, "split_seed": args.split_seed, "classes": list(SPRITE_CLASSES),
        "requested_class_counts": np.bincount(requested, minlength=len(SPRITE_CLASSES)).tolist(),
        "chance_match_unconditional": chance_match(rows, requested),
        "sprite_features_version": load_sprite_feature_meta()["version"],
        "floor": floor, "rows": rows, "mixes": mix_results, "table_markdown": markdown_tables(rows, floor, mix_results),
    }
    write_outputs(out_dir, args.overwrite, result, class_grids, mix_grids, args)
    print(result["table_markdown"])
    print(f"\nwrote {out_dir}/ ({MARKER}, table.md, {len(result['figures'])} figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
