"""Evaluation during training: the quality of the EMA weights every ``eval_every`` steps.

Each evaluation samples ``eval_samples`` sprites from the EMA weights with DDIM-50 eta 0 from both priors at T
(N(0, I) and the data moments, :mod:`pipelines.prior`) and with every sampler of ``eval_samplers``, on the same
seeded noise each time, and scores each sample set with evaluation's :class:`~evaluation.quality.SpriteScorer`
(sprite-FID and KID against real half B as the benchmarks do, precision/recall, the class gap) and the
memorisation share of :mod:`evaluation.neighbours` (samples closer to a training sprite than the 5% quantile of
the real sprites' leave-pair-out distance). One flat row per evaluation goes to ``eval.jsonl``
(``fid_ddim50_moments``, ``precision_ddim50_standard``, ...); ``eval.png`` plots them against steps beside the
loss; ``best/`` holds the EMA pipeline of the best row by ``eval_best``. On other data, ``eval_feature_net`` (a
network of ``python -m evaluation.train_classifier``) replaces the sprite network and every training image replaces
half B (docs/own_data.md). The trainer and
``python -m training.evaluate_run`` (the same rows from a finished run's checkpoints) call the same
:meth:`RunEvaluator.evaluate`.

The trainer scores its samples with the project's one scorer (``evaluation/``, a layer below ``training/``). The
imports are inside functions, so training with ``eval_every: 0`` never loads the evaluation package.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.atomic import atomic_file, write_text_atomic
from pipelines.loading import pipeline_class
from training.config import TrainConfig
from training.eval_settings import check_eval_settings, direction, sample_sets

__all__ = ["BEST_DIR", "EVAL_FILE", "EVAL_PLOT", "EVAL_TABLE", "RunEvaluator", "eval_table", "is_best",
           "plot_eval", "read_rows", "record", "summary", "write_rows"]

EVAL_FILE, EVAL_PLOT, BEST_DIR, BEST_RECORD = "eval.jsonl", "eval.png", "best", "eval_row.json"
EVAL_TABLE = "eval.md"
MEMORISATION_QUANTILE = 0.05


# ------------------------------------------------------------------------------------------------- the rows


def read_rows(out: str | Path) -> list[dict]:
    """The rows of ``out/eval.jsonl`` (none if it does not exist)."""
    path = Path(out) / EVAL_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_rows(out: str | Path, rows: list[dict]) -> None:
    """``eval.jsonl`` with ``rows`` in step order, rewritten whole and atomically (a kill never leaves half a line)."""
    rows = sorted(rows, key=lambda r: r["step"])
    write_text_atomic(Path(out) / EVAL_FILE, "".join(json.dumps(r) + "\n" for r in rows))


def is_best(rows: list[dict], row: dict, key: str) -> bool:
    """True when ``row`` is strictly better by ``key`` than every other row (NaN is never best)."""
    value = row.get(key)
    if value is None or not math.isfinite(value):
        return False
    others = [r[key] for r in rows if r is not row and r["step"] != row["step"] and r.get(key) is not None
              and math.isfinite(r[key])]
    if not others:
        return True
    return value < min(others) if direction(key) == "min" else value > max(others)


def save_best(out: str | Path, unet, scheduler, moments, cfg: TrainConfig, row: dict) -> Path:
    """The EMA pipeline of ``row`` as ``out/best/`` (atomically, with its model card and the row itself)."""
    from training.model import save_pipeline

    best = Path(out) / BEST_DIR
    key = cfg.eval_best
    card = {"config": cfg.to_dict(), "steps": row["step"], "parameters": sum(p.numel() for p in unet.parameters()),
            "metrics": {f"best by {key} (eval.jsonl, {row['eval_samples']} samples)": row[key]}}
    save_pipeline(unet, scheduler, best, card, moments,
                  extra={BEST_RECORD: json.dumps({"criterion": key, "row": row}, indent=1) + "\n"})
    return best


def eval_table(out: str | Path) -> Path | None:
    """``eval.md``: a line per row of eval.jsonl: the step, and per sample set the sprite-FID, precision / recall and
    memorisation share, with the real-vs-real floor at the same sample count (what docs quote)."""
    rows = read_rows(out)
    if not rows:
        return None
    names = [k[len("fid_"):] for k in rows[-1] if k.startswith("fid_")]
    head = ["step", "n", *(f"{n.replace('_', ' ')}: FID, P / R, memorised" for n in names), "floor: FID, P / R"]
    lines = ["| " + " | ".join(head) + " |", "| ---: |" + " ---: |" * (len(head) - 1)]
    for r in rows:
        cells = [f"{r['fid_' + n]:.3f}, {r['precision_' + n]:.2f} / {r['recall_' + n]:.2f}, "
                 f"{100 * r['memorised_' + n]:.0f}%" if r.get("fid_" + n) is not None else "" for n in names]
        lines.append(f"| {r['step']:,} | {r['eval_samples']} | " + " | ".join(cells) +
                     f" | {r['floor_fid']:.3f}, {r['floor_precision']:.2f} / {r['floor_recall']:.2f} |")
    path = Path(out) / EVAL_TABLE
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def plot_eval(out: str | Path) -> Path | None:
    """``eval.png``: the loss (stats.jsonl) and every row's sprite-FID, precision/recall and memorisation share
    against steps, one line per sample set (dashed: the real-vs-real floor at the same sample count)."""
    out = Path(out)
    rows = read_rows(out)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = out / "stats.jsonl"
    loss = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()] if stats.is_file() else []
    steps = [r["step"] for r in rows]
    names = [k[len("fid_"):] for k in rows[-1] if k.startswith("fid_")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), dpi=100, sharex=True)
    ax = axes[0, 0]
    if loss:
        ax.plot([r["step"] for r in loss], [r["loss"] for r in loss], lw=1, color="0.3")
    ax.set(ylabel="training loss", yscale="log", title="loss (stats.jsonl)")
    panels = [(axes[0, 1], "fid", "sprite-FID vs real half B", "log"), (axes[1, 0], "precision", "precision (solid), "
              "recall (dotted)", "linear"), (axes[1, 1], "memorised", "memorisation share (< real 5% NN quantile)",
                                             "linear")]
    for ax, metric, title, scale in panels:
        for i, name in enumerate(names):
            colour = f"C{i}"
            series = [(r["step"], r.get(f"{metric}_{name}")) for r in rows if r.get(f"{metric}_{name}") is not None]
            ax.plot(*zip(*series, strict=True), marker="o", ms=3, color=colour, label=name.replace("_", " "))
            if metric == "precision":
                series = [(r["step"], r[f"recall_{name}"]) for r in rows if r.get(f"recall_{name}") is not None]
                ax.plot(*zip(*series, strict=True), marker="o", ms=3, color=colour, ls=":")
        floor = rows[-1].get(f"floor_{metric}")
        if floor is not None:
            ax.axhline(floor, color="0.5", ls="--", lw=1, label=f"floor (real, n={rows[-1]['eval_samples']})")
        ax.set(yscale=scale, title=title)
    axes[0, 1].legend(fontsize=7)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(9)
    for ax in axes[1]:
        ax.set_xlabel("step")
    axes[0, 1].set_xlim(0, max(steps + [r["step"] for r in loss]) * 1.02)
    fig.suptitle(f"{out.name}: evaluation of the EMA weights", fontsize=10)
    fig.tight_layout()
    try:
        with atomic_file(out / EVAL_PLOT) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return out / EVAL_PLOT


# ------------------------------------------------------------------------------------------- the evaluation


class RunEvaluator:
    """Everything an evaluation needs that does not change over a run, built once: the scorer with the real
    sprites, the memorisation reference, the data moments, the floor, the requested labels of a conditional
    model. ``evaluate(unet, scheduler, step)`` gives one row; the feature network runs on ``device``."""

    def __init__(self, cfg: TrainConfig, device: str | torch.device = "cpu"):
        from evaluation.neighbours import TrainingReference
        from evaluation.quality import SpriteScorer
        from training.moments import data_moments

        check_eval_settings(cfg)
        self.cfg, self.sets = cfg, sample_sets(cfg)
        if cfg.eval_feature_net:  # own data: its training images, scored in its own feature network
            from pipelines.prior import DataMoments
            from sprites.data import fit_images, images_to_tensor
            from training.training_data import load_training_data

            data = load_training_data(cfg)
            self.scorer = SpriteScorer.own_data(data.images, data.labels, cfg.eval_feature_net, data.class_names,
                                                cfg.eval_seed, device=device)
            self.moments = DataMoments.from_images(fit_images(images_to_tensor(data.images), cfg.unet), cfg.hflip)
        else:
            self.scorer = SpriteScorer(cfg.data_path, device=device)
            self.moments = data_moments(cfg.unet, cfg.data_path, cfg.hflip)
        self.reference = TrainingReference(self.scorer.real, include_flips=cfg.hflip)
        self.real_distances = self.reference.real_leave_pair_out()["pixel"]
        floor = self.scorer.floor(cfg.eval_samples)
        self.floor = {"floor_fid": floor["sprite_fid"], "floor_kid": floor["sprite_kid"],
                      "floor_precision": floor["precision"], "floor_recall": floor["recall"]}
        self.labels = None
        if cfg.conditional:  # labels in the data's proportions (a seeded draw of the real labels)
            rng = np.random.default_rng(cfg.eval_seed)
            labels = self.scorer.labels
            self.labels = [int(v) for v in rng.choice(labels, cfg.eval_samples, replace=cfg.eval_samples > len(labels))]

    def score(self, images: np.ndarray, labels: list[int] | None) -> dict[str, float]:
        """The metrics of one sample set (uint8 NHWC), keyed by metric name."""
        from evaluation.features import extract_sprite_features
        from evaluation.neighbours import memorisation_summary
        from evaluation.scoring import class_match, predict_classes

        predicted, _ = predict_classes(images, self.scorer.net)
        numbers = self.scorer.score_features(extract_sprite_features(images, self.scorer.net), predicted)
        distances, _ = self.reference.pixel(images)
        memo = memorisation_summary(distances, self.real_distances, (MEMORISATION_QUANTILE,))["pixel"]
        out = {"fid": numbers["sprite_fid"], "kid": numbers["sprite_kid"], "precision": numbers["precision"],
               "recall": numbers["recall"],
               "memorised": memo["share_below_real_quantile"][f"{MEMORISATION_QUANTILE:g}"]}
        if "class_gap_points" in numbers:  # left out for own data without labels the feature network predicts
            out["class_gap"] = numbers["class_gap_points"]
        if labels is not None:
            out["class_match"] = class_match(predicted, labels)["match"]
        return out

    def evaluate(self, unet, scheduler, step: int) -> dict[str, Any]:
        """One row: ``unet`` (the EMA weights, in eval mode) sampled and scored on every sample set."""
        from evaluation.sampling import sample_in_batches

        cfg, start = self.cfg, time.perf_counter()
        row: dict[str, Any] = {"step": int(step), "eval_samples": cfg.eval_samples, "eval_seed": cfg.eval_seed}
        sampling_s = 0.0
        for s in self.sets:
            pipe = pipeline_class(s.sampler)(unet=unet, scheduler=scheduler)
            pipe.set_progress_bar_config(disable=True)
            pipe.set_data_moments(self.moments)
            images, timing = sample_in_batches(pipe, cfg.eval_samples, cfg.eval_batch_size, cfg.eval_seed,
                                               self.labels, **s.call_arguments())
            sampling_s += timing["wall_s"]
            row.update({f"{metric}_{s.name}": value for metric, value in self.score(images, self.labels).items()})
        row.update(self.floor)
        row["memorised_threshold"] = float(np.quantile(self.real_distances[np.isfinite(self.real_distances)],
                                                       MEMORISATION_QUANTILE))
        row["sampling_s"] = round(sampling_s, 2)
        row["eval_s"] = round(time.perf_counter() - start, 2)
        return row


def record(out: str | Path, evaluator: RunEvaluator, unet, scheduler, step: int) -> dict[str, Any]:
    """Evaluate ``unet`` at ``step`` and record it: the row in eval.jsonl (replacing one of the same step), eval.png,
    and best/ when the row is the best so far by ``eval_best``. Returns the row."""
    row = evaluator.evaluate(unet, scheduler, step)
    rows = [r for r in read_rows(out) if r["step"] != step] + [row]
    if is_best(rows, row, evaluator.cfg.eval_best):
        save_best(out, unet, scheduler, evaluator.moments, evaluator.cfg, row)
    write_rows(out, rows)
    plot_eval(out)
    eval_table(out)
    return row


def summary(row: dict[str, Any], cfg: TrainConfig) -> str:
    """One log line: sprite-FID, precision/recall and memorisation of each sample set."""
    parts = [f"{s.name} FID {row[f'fid_{s.name}']:.3f} P/R {row[f'precision_{s.name}']:.2f}/"
             f"{row[f'recall_{s.name}']:.2f} mem {100 * row[f'memorised_{s.name}']:.1f}%" for s in sample_sets(cfg)]
    return f"eval at step {row['step']} ({row['eval_s']:.0f} s): " + "; ".join(parts)


def tracker_values(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a row under ``eval/`` for accelerate's trackers."""
    return {f"eval/{k}": float(v) for k, v in row.items()
            if k not in ("step", "eval_samples", "eval_seed") and isinstance(v, (int, float))}
