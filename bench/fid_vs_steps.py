"""DDPM against DDIM: sample quality (sprite-FID, sprite-KID, precision/recall, class mix) and speed against the
number of steps, with a memorisation check (nearest training sprite of every sample).

    python -m bench.fid_vs_steps --pipeline runs/sprites_ddpm/pipeline [--config configs/bench_fid.yaml]
        [--num_images 1000] [--batch_size 250] [--seed 0] [--ddim_steps 10 20 50 100 500] [--etas 0 1]
        [--prior standard|moments|...] [--threads N] [--cache DIR] [--out outputs/bench/fid_vs_steps] [--overwrite]

For DDPM (all T steps by default) and DDIM at each step count and eta, N sprites are sampled from the same
seeds (every setting starts from the same x_T), timed, and scored:

* against real half B (the pair-aware held-out half of docs/evaluation.md) with
  :class:`evaluation.quality.SpriteScorer`: sprite-FID, sprite-KID, improved precision and recall (k = 3) and
  the class mix (the largest gap to the data's class shares, in percentage points); sprite-FID and sprite-KID
  also against all 1,788 real sprites; the floor is real half A (N of them, or all 894) against half B;
* memorisation: the pixel distance ([0, 1] scale) of every sample to its nearest training sprite (all 1,788
  and their exact flips), and the same in the sprite network's feature space, beside the reference
  distribution of real sprites against the training set without themselves and their mirrors
  (leave-one-pair-out). Reported: the median, and the share of samples closer than the real distances'
  quantiles (the median is the typical gap between a real sprite and its nearest other sprite).

The DDPM variance, the timestep spacing and clipping are the pipeline folder's own (its scheduler config), as in
``python -m training.sample``.

Outputs in --out (the folder appears complete or not at all; an existing one is replaced only with --overwrite):
``results.json``, ``table.md``, ``fid_vs_steps.png`` (sprite-FID against
steps, log x, wall time on a second axis), ``nn_histograms.png``, ``same_noise.png`` (the first 10 samples of
every setting, same x_T), and per setting ``grid_<setting>.png`` and ``closest_<setting>.png`` (the 10 samples
closest to a training sprite, each above its nearest real sprite). ``--cache DIR`` keeps each setting's samples
and timing as .npz and reuses them when the pipeline, seed, N, batch size and sampler settings match (to resume a
long run).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench.common import load_samplers, quality_cells, refuse_existing_output, result_envelope
from evaluation.features import extract_sprite_features, load_sprite_feature_meta
from evaluation.neighbours import TrainingReference, memorisation_summary
from evaluation.output import output_dir
from evaluation.plots import plain_log_ticks, pyplot, save_figure, save_labelled_grids
from evaluation.quality import SpriteScorer
from evaluation.sampling import pipeline_info
from evaluation.scoring import fid_kid
from evaluation.splits import data_sha256
from pipelines.atomic import write_text_atomic
from pipelines.common import config_default, config_variance
from pipelines.prior import PRIORS
from sprites.cli import ArgumentParser
from sprites.data import read_sprites_arrays
from sprites.images import save_grid

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "bench_fid.yaml"
MARKER = "results.json"


@dataclasses.dataclass
class BenchConfig:
    """Settings of one benchmark run (see configs/bench_fid.yaml)."""

    num_images: int = 1000
    batch_size: int = 250
    seed: int = 0
    ddpm: bool = True
    ddpm_steps: int | None = None
    ddim_steps: list[int] = dataclasses.field(default_factory=lambda: [10, 20, 50, 100, 500])
    etas: list[float] = dataclasses.field(default_factory=lambda: [0.0, 1.0])
    prior: str = "standard"
    split_seed: int = 0
    kid_subsets: int = 100
    include_flips: bool = True
    feature_nn: bool = True
    nn_quantiles: list[float] = dataclasses.field(default_factory=lambda: [0.01, 0.05, 0.5])
    grid_images: int = 50
    closest_pairs: int = 10
    threads: int | None = 1

    def check(self) -> None:
        if self.num_images < 2 or self.batch_size < 1:
            raise ValueError(f"num_images must be >= 2 and batch_size >= 1, got {self.num_images}, {self.batch_size}")
        if not self.ddpm and not self.ddim_steps:
            raise ValueError("nothing to run: ddpm is false and ddim_steps is empty")
        if any(int(s) < 1 for s in self.ddim_steps) or (self.ddim_steps and not self.etas):
            raise ValueError(f"ddim_steps must be >= 1 and etas non-empty, got {self.ddim_steps}, {self.etas}")
        if any(not 0 < q < 1 for q in self.nn_quantiles):
            raise ValueError(f"nn_quantiles must lie in (0, 1), got {self.nn_quantiles}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {self.prior!r}")


def load_bench_config(path: str | Path | None) -> BenchConfig:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise SystemExit(f"error: config {path} not found")
    raw = yaml.safe_load(path.read_text()) or {}
    names = [f.name for f in dataclasses.fields(BenchConfig)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], names, n=1)
        hint_text = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise SystemExit(f"error: {path}: unknown key {unknown[0]!r}{hint_text}")
    return BenchConfig(**raw)


# ------------------------------------------------------------------------------------------------- settings


def settings_of(cfg: BenchConfig, T: int) -> list[dict[str, Any]]:
    """The sampler settings, DDPM first: name, file slug, sampler, steps, eta, pipeline keyword arguments."""
    out = []
    shared = {"prior": cfg.prior} if cfg.prior != "standard" else {}
    if cfg.ddpm:
        steps = cfg.ddpm_steps or T
        out.append({"name": f"DDPM {steps}", "slug": f"ddpm_{steps:03d}", "sampler": "ddpm", "steps": steps,
                    "eta": None, "kwargs": {"num_inference_steps": steps, **shared}})
    for eta in cfg.etas:
        for steps in sorted(int(s) for s in cfg.ddim_steps):
            out.append({"name": f"DDIM {steps} eta={eta:g}", "slug": f"ddim_{steps:03d}_eta{eta:g}", "sampler": "ddim",
                        "steps": steps, "eta": float(eta),
                        "kwargs": {"num_inference_steps": steps, "eta": float(eta), **shared}})
    for s in out:
        if not 1 <= s["steps"] <= T:
            raise SystemExit(f"error: {s['name']}: steps must lie in 1..{T}")
    return out


def sample_setting(pipes, setting: dict, cfg: BenchConfig, cache: Path | None, info: dict) -> tuple[np.ndarray, dict]:
    """The setting's uint8 samples and timing, through bench.sampler_frontier's sample cache (shared with the
    other benches: the same model, sampling code, seeds and settings are sampled once)."""
    from bench.sampler_frontier import sample_run

    kwargs = {k: v for k, v in setting["kwargs"].items() if k != "num_inference_steps"}
    run = {"sampler": setting["sampler"], "nfe": setting["steps"], "kwargs": kwargs}
    return sample_run(pipes, run, {"num_images": cfg.num_images, "batch_size": cfg.batch_size, "seed": cfg.seed},
                      cache, info)


def folder_defaults(scheduler) -> dict[str, Any]:
    """The sampling settings a pipeline folder's scheduler config gives where the config leaves them null."""
    return {"ddpm_variance": config_variance(scheduler, None),
            "timestep_spacing": config_default(scheduler, None, "timestep_spacing", "leading"),
            "clip_sample": bool(config_default(scheduler, None, "clip_sample", False))}


# ------------------------------------------------------------------------------------------------- figures


def plot_fid_vs_steps(rows: list[dict], floor: dict, path: Path) -> None:
    """sprite-FID against steps (log-log) for every DDIM eta and DDPM, wall time on a second axis."""
    from matplotlib.ticker import NullLocator

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    ax2 = ax.twinx()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ddim = sorted({r["eta"] for r in rows if r["sampler"] == "ddim"})
    for i, eta in enumerate(ddim):
        rr = sorted((r for r in rows if r["eta"] == eta), key=lambda r: r["steps"])
        c = colours[i % len(colours)]
        ax.plot([r["steps"] for r in rr], [r["vs_half_b"]["sprite_fid"] for r in rr], "o-", color=c,
                label=f"DDIM eta={eta:g}: sprite-FID")
        ax2.plot([r["steps"] for r in rr], [r["timing"]["wall_s"] for r in rr], "--", marker=".", color=c, alpha=0.6,
                 label=f"DDIM eta={eta:g}: wall time")
    for r in rows:
        if r["sampler"] == "ddpm":
            ax.plot([r["steps"]], [r["vs_half_b"]["sprite_fid"]], "*", ms=15, color="k",
                    label=f"{r['name']}: sprite-FID")
            ax2.plot([r["steps"]], [r["timing"]["wall_s"]], "x", ms=9, color="k", alpha=0.6,
                     label=f"{r['name']}: wall time")
    ax.axhline(floor["sprite_fid"], color="grey", ls=":", label=f"floor: real A ({floor['n']}) vs B")
    ax.set(xscale="log", yscale="log", xlabel="sampling steps (log)", ylabel="sprite-FID vs real half B (log)",
           title=f"DDPM vs DDIM, {rows[0]['vs_half_b']['n']} samples per setting")
    ax2.set(yscale="log", ylabel="wall time, s (log)")
    steps = sorted({r["steps"] for r in rows})
    ax.set_xticks(steps)
    ax.set_xticklabels([str(s) for s in steps])
    ax.xaxis.set_minor_locator(NullLocator())
    plain_log_ticks(ax.yaxis)
    plain_log_ticks(ax2.yaxis)
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_nn_histograms(rows: list[dict], distances: dict[str, np.ndarray], real: np.ndarray, path: Path) -> None:
    """Histograms of the pixel distance to the nearest training sprite, one panel per setting."""
    plt = pyplot()
    n = len(rows)
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), sharex=True, squeeze=False)
    top = max(float(np.quantile(real, 0.99)), *(float(np.quantile(d, 0.99)) for d in distances.values()))
    bins = np.linspace(0, top, 40)
    for ax, r in zip(axes.flat, rows, strict=False):
        ax.hist(real, bins=bins, density=True, alpha=0.5, color="grey", label="real (leave pair out)")
        ax.hist(distances[r["slug"]], bins=bins, density=True, histtype="step", lw=1.5, label="generated")
        ax.axvline(np.median(real), color="grey", ls=":")
        ax.set_title(r["name"], fontsize=9)
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("pixel L2 to nearest training sprite")
    fig.suptitle("Nearest training sprite: generated samples vs real sprites held out with their mirror", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------- table


def markdown_table(rows: list[dict], floor: dict, real_nn: dict, feature: bool) -> str:
    """One row per setting and the floor row: time, quality against half B and all, memorisation."""
    q = sorted(real_nn["pixel"]["quantiles"], key=float)
    low, mid = q[min(1, len(q) - 1)], "0.5" if "0.5" in q else q[-1]
    head = ["setting", "steps", "wall s", "CPU s", "img/s", "sprite-FID vs B", "KID vs B", "precision", "recall",
            "class gap pp", "sprite-FID vs all", "KID vs all", "NN px median", f"< real q{low}", f"< real q{mid}"]
    if feature:
        head.append("NN feat median")
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        m = r["memorisation"]["pixel"]
        cells = [r["name"], str(r["steps"]), f"{r['timing']['wall_s']:.1f}", f"{r['timing']['cpu_s']:.1f}",
                 f"{r['timing']['images_per_s']:.2f}", *quality_cells(r["vs_half_b"]),
                 f"{r['vs_all']['sprite_fid']:.3f}", f"{r['vs_all']['sprite_kid']:.4f}",
                 f"{m['generated_median']:.3f}", f"{100 * m['share_below_real_quantile'][low]:.1f}%",
                 f"{100 * m['share_below_real_quantile'][mid]:.1f}%"]
        if feature:
            cells.append(f"{r['memorisation']['feature']['generated_median']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    p = real_nn["pixel"]
    cells = [f"real half A ({floor['n']}) vs B / real leave-pair-out NN", "", "", "", "", *quality_cells(floor),
             "", "", f"{p['median']:.3f}", f"{100 * float(low):g}%", f"{100 * float(mid):g}%"]
    if feature:
        cells.append(f"{real_nn['feature']['median']:.3f}")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", required=True, help="a saved pipeline folder (e.g. runs/sprites_ddpm/pipeline)")
    p.add_argument("--config", default=None, help=f"benchmark settings (default {DEFAULT_CONFIG.relative_to(ROOT)})")
    p.add_argument("--num_images", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--ddim_steps", type=int, nargs="+", default=None)
    p.add_argument("--ddpm_steps", type=int, default=None, help="DDPM steps (default: the config's, all T)")
    p.add_argument("--etas", type=float, nargs="+", default=None)
    p.add_argument("--no_ddpm", action="store_true", help="leave DDPM out")
    p.add_argument("--prior", choices=PRIORS, default=None, help="x_T: standard N(0, I) or the data's moments")
    p.add_argument("--threads", type=int, default=None, help="torch threads (config default 1)")
    p.add_argument("--data_path", default=None, help="real sprites (default: $SPRITEDIFF_DATA or ../shared)")
    p.add_argument("--cache", default=None, help="sample cache folder, as bench.sampler_frontier's "
                   "(outputs/cache/samples shares samples with the other benches); default: none")
    p.add_argument("--out", default="outputs/bench/fid_vs_steps", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder of this command")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The config file with the command line's values over it, checked (a bad value is a one-line SystemExit)."""
    cfg = load_bench_config(args.config)
    for key in ("num_images", "batch_size", "seed", "ddim_steps", "ddpm_steps", "etas", "prior", "threads"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.no_ddpm:
        cfg.ddpm = False
    try:
        cfg.check()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return cfg


def summarise_real_distances(real_nn: dict[str, np.ndarray | None], quantiles: list[float]) -> dict[str, dict]:
    """Median, mean, quantiles and exact-duplicate share of the real sprites' leave-pair-out NN distances."""
    summary = {}
    for space, d in real_nn.items():
        if d is None:
            continue
        d = d[np.isfinite(d)]
        summary[space] = {"median": float(np.median(d)), "mean": float(d.mean()),
                          "quantiles": {f"{q:g}": float(np.quantile(d, q)) for q in quantiles},
                          "share_exact_duplicates": float((d == 0).mean()), "n": int(len(d))}
    return summary


def score_setting(setting: dict, images: np.ndarray, timing: dict, cfg: BenchConfig, scorer: SpriteScorer,
                  reference: TrainingReference, real_nn: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """One setting's row (timing, quality against half B and all, memorisation), and each sample's pixel
    distance to its nearest training sprite and that sprite's index in ``reference.images``."""
    feats = extract_sprite_features(images, scorer.net)
    d_px, i_px = reference.pixel(images)
    d_ft = reference.feature(feats)[0] if cfg.feature_nn else None
    mem = memorisation_summary(d_px, real_nn["pixel"], cfg.nn_quantiles, d_ft, real_nn["feature"])
    row = {"name": setting["name"], "slug": setting["slug"], "sampler": setting["sampler"], "steps": setting["steps"],
           "eta": setting["eta"], "call_kwargs": setting["kwargs"], "timing": timing,
           "vs_half_b": scorer.score(images),
           "vs_all": fid_kid(feats, scorer.real_features, cfg.kid_subsets, cfg.seed), "memorisation": mem}
    return row, d_px, i_px


def add_time_ratios(rows: list[dict]) -> None:
    """Each row's wall and CPU time over DDPM's (None without a DDPM row)."""
    ddpm = next((r for r in rows if r["sampler"] == "ddpm"), None)
    for r in rows:
        r["time_ratio_to_ddpm"] = r["timing"]["wall_s"] / ddpm["timing"]["wall_s"] if ddpm else None
        r["cpu_ratio_to_ddpm"] = r["timing"]["cpu_s"] / ddpm["timing"]["cpu_s"] if ddpm else None


def write_figures(folder: Path, rows: list[dict], samples: dict, nn_pixel: dict, reference: TrainingReference,
                  real_nn: dict, real_nn_summary: dict, floor: dict, cfg: BenchConfig) -> list[str]:
    """Every figure of the run into ``folder``; returns their file names."""
    plot_fid_vs_steps(rows, floor, folder / "fid_vs_steps.png")
    plot_nn_histograms(rows, nn_pixel, real_nn["pixel"][np.isfinite(real_nn["pixel"])], folder / "nn_histograms.png")
    first = []
    for r in rows:
        images, idx = samples[r["slug"]]
        caption = (f"{r['name']}: {cfg.grid_images} of {cfg.num_images} samples, seed {cfg.seed}; sprite-FID vs "
                   f"half B {r['vs_half_b']['sprite_fid']:.3f} (floor {floor['sprite_fid']:.3f})")
        save_grid(images[:cfg.grid_images], folder / f"grid_{r['slug']}.png", caption)
        k = min(cfg.closest_pairs, len(images))
        order = np.argsort(nn_pixel[r["slug"]], kind="stable")[:k]
        pairs = np.concatenate([images[order], reference.images[idx[order]]])
        dists = ", ".join(f"{v:.2f}" for v in nn_pixel[r["slug"]][order])
        save_grid(pairs, folder / f"closest_{r['slug']}.png", f"{r['name']}: the {k} samples closest to a training "
                  f"sprite (top) and that sprite (bottom); pixel L2 {dists}; real median "
                  f"{real_nn_summary['pixel']['median']:.2f}", ncols=k)
        first.append(images[:10])
    save_labelled_grids([("same seeds, so the same x_T in every row", first)], [r["name"] for r in rows],
                        folder / "same_noise.png", "The first 10 samples of every setting")
    return sorted(p.name for p in folder.glob("*.png"))


def run_settings(pipes: dict, settings: list[dict], cfg: BenchConfig, cache: Path | None, info: dict,
                 scorer: SpriteScorer, reference: TrainingReference, real_nn: dict) -> tuple[list[dict], dict, dict]:
    """Sample and score every setting: ``(rows, {slug: (images, nearest index)}, {slug: pixel distances})``."""
    rows, samples, nn_pixel = [], {}, {}
    for s in settings:
        print(f"sampling {s['name']} ...", file=sys.stderr, flush=True)
        images, timing = sample_setting(pipes, s, cfg, cache, info)
        row, d_px, i_px = score_setting(s, images, timing, cfg, scorer, reference, real_nn)
        rows.append(row)
        samples[s["slug"]], nn_pixel[s["slug"]] = (images, i_px), d_px
        print(f"  {s['name']}: {timing['wall_s']:.1f} s, sprite-FID vs B {row['vs_half_b']['sprite_fid']:.3f}, "
              f"NN median {row['memorisation']['pixel']['generated_median']:.3f}", file=sys.stderr, flush=True)
    add_time_ratios(rows)
    return rows, samples, nn_pixel


def run_record(args: argparse.Namespace, argv: list[str] | None, cfg: BenchConfig, scheduler,
               scorer: SpriteScorer) -> dict[str, Any]:
    """What results.json holds besides the numbers: the envelope (date, command, machine, model and code hashes),
    settings and data."""
    real, labels = read_sprites_arrays(args.data_path)
    return {**result_envelope("bench.fid_vs_steps", argv, args.pipeline), "config": dataclasses.asdict(cfg),
            "folder_defaults": folder_defaults(scheduler), "num_train_timesteps": scheduler.config.num_train_timesteps,
            "data": {"n_real": int(len(real)), "sha256": data_sha256(real, labels), "half_a": int(len(scorer.half_a)),
                     "half_b": int(len(scorer.half_b))},
            "sprite_features_version": load_sprite_feature_meta()["version"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from_args(args)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(args.out)
    refuse_existing_output(out_dir, MARKER, args.overwrite)
    pipes = load_samplers(args.pipeline)
    info = pipeline_info(args.pipeline)
    settings = settings_of(cfg, pipes["ddpm"].scheduler.config.num_train_timesteps)
    unet_steps = sum(s["steps"] for s in settings) * cfg.num_images
    print(f"{len(settings)} settings, {cfg.num_images} images each: {unet_steps:,} image-steps of the UNet; "
          f"{torch.get_num_threads()} torch thread(s), load {os.getloadavg()[0]:.1f}", file=sys.stderr)

    scorer = SpriteScorer(args.data_path, cfg.split_seed, cfg.kid_subsets)
    floor = scorer.floor(cfg.num_images)
    reference = TrainingReference(scorer.real, cfg.include_flips, scorer.net if cfg.feature_nn else None)
    real_nn = reference.real_leave_pair_out()
    real_nn_summary = summarise_real_distances(real_nn, cfg.nn_quantiles)
    rows, samples, nn_pixel = run_settings(pipes, settings, cfg, Path(args.cache) if args.cache else None, info,
                                           scorer, reference, real_nn)

    table = markdown_table(rows, floor, real_nn_summary, cfg.feature_nn)
    result = {**run_record(args, argv, cfg, pipes["ddpm"].scheduler, scorer), "floor": floor,
              "real_nn": real_nn_summary, "rows": rows, "table_markdown": table}
    with output_dir(out_dir, MARKER, args.overwrite) as tmp:
        result["figures"] = write_figures(tmp, rows, samples, nn_pixel, reference, real_nn, real_nn_summary, floor,
                                          cfg)
        write_text_atomic(tmp / "table.md", table + "\n")
        write_text_atomic(tmp / MARKER, json.dumps(result, indent=1) + "\n")
    print(table)
    print(f"\nwrote {out_dir}/ ({MARKER}, table.md, {len(result['figures'])} figures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
