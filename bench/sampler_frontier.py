"""Sample quality against UNet evaluations (NFE) for a list of sampler settings: the quality-vs-time frontier.

    python -m bench.sampler_frontier --config configs/bench/frontier.yaml [--pipeline DIR] [--num_images N]
        [--out docs/figures/sampling] [--cache outputs/cache/frontier] [--only LABEL ...] [--model_sha256 HEX]

Each setting of the config (a stable ``id``, a label, a sampler, its keyword arguments and a list of NFE) is sampled
N times from the same seeds (so every setting starts from the same z), timed in CPU seconds on ``threads`` threads,
and scored by :class:`evaluation.quality.SpriteScorer` (sprite-FID, KID, precision/recall, class mix against real
half B) and for memorisation (the pixel distance of each sample to its nearest training sprite against the real
sprites' own, :func:`evaluation.neighbours.memorisation_summary`). Writes ``results.json`` (rows keyed by setting
id and NFE; the model and code hashes of :func:`bench.common.result_envelope`), ``table.md`` and ``frontier.png``
(sprite-FID against NFE, log axes, one line per setting) into --out; ``--cache`` keeps every (setting, NFE)'s
samples, keyed by the settings, the model hash, the sampling code's hash and any fitted file's hash, so an
interrupted run continues where it stopped and a changed sampler never reuses old samples. The same engine makes
the spacing, prior and frontier tables: only the config differs (configs/bench/*.yaml). ``--model_sha256`` scores a
model whose weights are gone (a training candidate) from the sets the cache holds for it, sampling nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.common import result_envelope, sample_cache_key
from evaluation.plots import plain_log_ticks, pyplot, save_figure
from evaluation.sampling import file_sha256, pipeline_info, sample_in_batches
from pipelines.atomic import atomic_file, write_text_atomic
from sprites.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
MEMORISATION_QUANTILES = (0.01, 0.05, 0.5)  # of the real sprites' distances to their nearest other training sprite


def load_frontier_config(path: str | Path) -> dict[str, Any]:
    """The config: pipeline, num_images, batch_size, seed, threads, reference, settings (label, sampler, nfe, ...)."""
    cfg = yaml.safe_load(Path(path).read_text())
    for key in ("pipeline", "num_images", "batch_size", "seed", "settings"):
        if key not in cfg:
            raise SystemExit(f"error: {path} lacks the key {key!r}")
    for s in cfg["settings"]:
        if not {"label", "sampler", "nfe"} <= s.keys():
            raise SystemExit(f"error: {path}: every setting needs label, sampler and nfe; got {s}")
    ids = [s["id"] for s in cfg["settings"] if "id" in s]
    if len(ids) != len(set(ids)):
        raise SystemExit(f"error: {path}: setting ids must be unique; {sorted({i for i in ids if ids.count(i) > 1})} "
                         "repeat")
    return cfg


def runs_of(cfg: dict[str, Any], only: list[str] | None = None) -> list[dict[str, Any]]:
    """One run per (setting, NFE): id (None if the setting has none), label, sampler, nfe, the pipeline keyword
    arguments (``{nfe}`` in a string argument is the run's NFE, e.g. ``fitted: solvers/dpmpp_2m_nfe{nfe}.json``).
    ``only``: labels or ids of the settings to keep."""
    out = []
    for s in cfg["settings"]:
        if only and s["label"] not in only and s.get("id") not in only:
            continue
        kwargs = {k: v for k, v in s.items() if k not in ("id", "label", "sampler", "nfe")}
        for nfe in s["nfe"]:
            own = {k: v.format(nfe=int(nfe)) if isinstance(v, str) else v for k, v in kwargs.items()}
            out.append({"id": s.get("id"), "label": s["label"], "sampler": s["sampler"], "nfe": int(nfe),
                        "kwargs": own})
    return out


def files_read(run: dict, folder: str | Path) -> dict[str, str]:
    """The sha256 of every file a run reads besides the model: each string argument that names a file (a fitted
    solver, a learned schedule: an existing path as given, else relative to the pipeline folder, as the pipeline
    resolves it) and, for a "learned" schedule found by name, the folder's learned schedules (``schedules/``)."""
    folder, out = Path(folder), {}
    for value in run["kwargs"].values():
        if isinstance(value, str) and value.endswith(".json"):
            path = Path(value) if Path(value).is_file() or Path(value).is_absolute() else folder / value
            if path.is_file():
                out[value] = file_sha256(path)
    if "learned" in run["kwargs"].values():
        out.update({f"schedules/{p.name}": file_sha256(p) for p in sorted((folder / "schedules").glob("*.json"))})
    return out


def sample_run(pipes: dict | None, run: dict, cfg: dict, cache: Path | None, info: dict) -> tuple[np.ndarray, dict]:
    """The run's uint8 samples and timing, from the cache when it holds the same run: the same settings, model
    (``info``: :func:`evaluation.sampling.pipeline_info` of the folder), sampling code and fitted files.
    ``pipes`` None (the model's weights are absent): the cache must hold the run."""
    from bench.samplers import sampler_call  # diffusers: imported when sampling, not to read a config

    settings = {"num_images": cfg["num_images"], "batch_size": cfg["batch_size"], "seed": cfg["seed"],
                "sampler": run["sampler"], "nfe": run["nfe"], **run["kwargs"]}
    key = sample_cache_key(settings, info["model_sha256"], files_read(run, info["path"]))
    file = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz" if cache else None
    if file is not None and file.is_file():
        with np.load(file, allow_pickle=False) as z:
            if str(z["meta"]) == key:
                return z["images"], {**json.loads(str(z["timing"])), "from_cache": True}
    if pipes is None:
        raise SystemExit(f"error: {cache} holds no {run['label']!r} set at {run['nfe']} NFE of model "
                         f"{info['model_sha256'][:8]} with this sampling code: sample it from the model's folder "
                         "(without --model_sha256)")
    pipe, kwargs = sampler_call(pipes, run["sampler"], run["nfe"], run["kwargs"])
    images, timing = sample_in_batches(pipe, cfg["num_images"], cfg["batch_size"], cfg["seed"], **kwargs)
    if file is not None:
        with atomic_file(file) as tmp:
            np.savez_compressed(tmp, images=images, meta=key, timing=json.dumps(timing))
    return images, {**timing, "from_cache": False}


def memorisation_scorer(real: np.ndarray):
    """``images -> memorisation summary`` (pixel space, :func:`evaluation.neighbours.memorisation_summary`): the
    nearest training sprite (the real ones and their flips) of each sample against the real sprites' distances to
    their nearest other sprite, at ``MEMORISATION_QUANTILES``; ``share_below_real_quantile["0.05"]`` is the share
    of samples closer to a training sprite than 95% of real sprites are."""
    from evaluation.neighbours import TrainingReference, memorisation_summary

    reference = TrainingReference(real, include_flips=True)
    real_pixel = reference.real_leave_pair_out()["pixel"]
    return lambda images: memorisation_summary(reference.pixel(images)[0], real_pixel, MEMORISATION_QUANTILES)["pixel"]


def markdown_table(rows: list[dict], floor: dict, reference: dict | None) -> str:
    head = ["setting", "NFE", "CPU s / 1,000", "sprite-FID", "x reference", "KID", "precision", "recall",
            "class gap (points)"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    ref = reference["sprite_fid"] if reference else None
    for r in rows:
        s = r["scores"]
        ratio = f"{s['sprite_fid'] / ref:.2f}" if ref else ""
        cpu = 1000 * r["timing"]["cpu_s"] / r["scores"]["n"]
        lines.append(f"| {r['label']} | {r['nfe']} | {cpu:,.0f} | {s['sprite_fid']:.3f} | {ratio} | "
                     f"{s['sprite_kid']:.4f} | {s['precision']:.2f} | {s['recall']:.2f} | "
                     f"{s['class_gap_points']:.1f} |")
    lines.append(f"| real half A vs half B (floor, n = {floor['n']}) | | | {floor['sprite_fid']:.3f} | | "
                 f"{floor['sprite_kid']:.4f} | {floor['precision']:.2f} | {floor['recall']:.2f} | "
                 f"{floor['class_gap_points']:.1f} |")
    return "\n".join(lines) + "\n"


def plot_frontier(rows: list[dict], floor: dict, path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    for i, label in enumerate(labels):
        rr = sorted((r for r in rows if r["label"] == label), key=lambda r: r["nfe"])
        line = "--" if label.startswith("stock") else "-"
        ax.plot([r["nfe"] for r in rr], [r["scores"]["sprite_fid"] for r in rr], marker="o" if len(rr) > 1 else "*",
                ms=5 if len(rr) > 1 else 12, ls=line if len(rr) > 1 else "none", label=label, color=f"C{i % 10}")
    ax.axhline(floor["sprite_fid"], color="grey", ls=":", label="real-vs-real floor")
    ax.set(xscale="log", yscale="log", xlabel="UNet evaluations (NFE, log)", ylabel="sprite-FID vs real half B (log)",
           title=title)
    nfes = sorted({r["nfe"] for r in rows})
    ax.set_xticks(nfes)
    ax.set_xticklabels([str(n) for n in nfes], fontsize=7)
    ax.minorticks_off()
    plain_log_ticks(ax.yaxis)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    save_figure(fig, path)


def with_overrides(cfg: dict, args) -> dict:
    """The config with the command line's --pipeline, --num_images, --seed and --out in place; the results record
    the config as run, so a set drawn with another seed says so."""
    overrides = {"pipeline": args.pipeline, "num_images": args.num_images, "seed": args.seed, "out": args.out}
    return {**cfg, **{k: v for k, v in overrides.items() if v is not None}}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--pipeline", default=None, help="override the config's pipeline folder")
    p.add_argument("--num_images", type=int, default=None)
    p.add_argument("--seed", type=int, default=None, help="override the config's seed (another z for every setting)")
    p.add_argument("--out", default=None, help="output folder (default: the config's out)")
    p.add_argument("--cache", default="outputs/cache/samples",
                   help="sample cache folder, shared by every config (keys hold the settings and the hashes of the "
                        "model, the sampling code and any fitted file)")
    p.add_argument("--only", nargs="*", help="ids or labels of the settings to run (default: all)")
    p.add_argument("--model_sha256", default=None,
                   help="score a model whose weights are absent from the sets the cache holds for this model hash "
                        "(evaluation.sampling.model_sha256; nothing is sampled)")
    args = p.parse_args(argv)
    if args.model_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", args.model_sha256):
        p.error("--model_sha256 takes the full model hash, 64 hex digits (a results file's pipeline.model_sha256)")
    if args.num_images is not None and args.num_images < 1:
        p.error(f"--num_images must be at least 1, got {args.num_images}")
    cfg = with_overrides(load_frontier_config(args.config), args)
    out = Path(cfg.get("out", "outputs/frontier"))
    cache = Path(args.cache)
    import torch

    from bench.samplers import make_sampler_pipelines
    from evaluation.quality import SpriteScorer

    torch.set_num_threads(int(cfg.get("threads", 1)))
    info = pipeline_info(cfg["pipeline"])
    if args.model_sha256 is None:
        pipes = make_sampler_pipelines(cfg["pipeline"])
    elif info["model_sha256"] not in (None, args.model_sha256):
        raise SystemExit(f"error: {cfg['pipeline']} holds model {info['model_sha256'][:8]}, not "
                         f"{args.model_sha256[:8]}: drop --model_sha256 to sample it")
    else:
        pipes, info = None, {**info, "model_sha256": args.model_sha256, "weights": "absent (scored from the cache)"}
    scorer = SpriteScorer(split_seed=int(cfg.get("split_seed", 0)))
    floor = scorer.floor(cfg["num_images"])
    memorised = memorisation_scorer(scorer.real)
    rows = []
    for run in runs_of(cfg, args.only):
        t0 = time.perf_counter()
        images, timing = sample_run(pipes, run, cfg, cache, info)
        row = {**run, "files_sha256": files_read(run, info["path"]), "timing": timing,
               "scores": scorer.score(images), "memorisation": memorised(images)}
        rows.append(row)
        print(f"{run['label']:<40} NFE {run['nfe']:>4}  sprite-FID {row['scores']['sprite_fid']:.3f}  "
              f"P {row['scores']['precision']:.2f} R {row['scores']['recall']:.2f}  cpu {timing['cpu_s']:.0f} s"
              f"{' (cached)' if timing['from_cache'] else ''}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    reference = next((r["scores"] for r in rows if r["label"] == cfg.get("reference")), None)
    result = {**result_envelope("bench.sampler_frontier", argv), "pipeline": info, "config": cfg, "floor": floor,
              "data_class_shares": scorer.data_shares_dict(), "reference": cfg.get("reference"), "rows": rows,
              "threads": int(cfg.get("threads", 1))}
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(result, indent=1) + "\n")
    table = markdown_table(rows, floor, reference)
    write_text_atomic(out / "table.md", table)
    plot_frontier(rows, floor, out / "frontier.png", cfg.get("title", f"{cfg['num_images']} samples per setting"))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
