"""The evaluate phase of experiments.recipe_study: sprite-FID of every finished variant, and the loss curves.

For each variant whose run has a ``pipeline/``: ``num_images`` samples of DDPM-500 (standard prior) and of
DDIM-``ddim_steps`` with eta 0 from the standard and the data prior, from the same seeds, scored by
:class:`evaluation.quality.SpriteScorer`; the training wall time and final loss from its ``stats.jsonl``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import result_envelope
from bench.sampler_frontier import sample_run
from bench.samplers import make_sampler_pipelines
from evaluation.plots import pyplot, save_figure
from evaluation.sampling import pipeline_info
from pipelines.atomic import write_text_atomic


def variant_runs(settings: dict[str, Any], T: int) -> list[dict[str, Any]]:
    """The three sampling runs each variant is scored with."""
    steps = int(settings.get("ddim_steps", 50))
    return [{"label": f"DDPM {T}", "sampler": "ddpm", "nfe": T, "kwargs": {}},
            {"label": f"DDIM {steps} eta 0", "sampler": "ddim", "nfe": steps, "kwargs": {"eta": 0.0}},
            {"label": f"DDIM {steps} eta 0, moments prior", "sampler": "ddim", "nfe": steps,
             "kwargs": {"eta": 0.0, "prior": "moments"}}]


def training_record(run: Path, unet) -> dict[str, Any]:
    """Steps, wall time, final loss and the loss curve of a run, and the FLOPs of its training (forward and
    backward per image, torch.utils.flop_counter): a cost that the machine's load does not change."""
    from experiments.speed import unet_flops

    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    batch = int(yaml.safe_load((run / "config.yaml").read_text())["train_batch_size"])
    gflop = unet_flops(unet, 2, train=True) / 2 / 1e9
    images = rows[-1]["step"] * batch
    return {"steps": rows[-1]["step"], "minutes": rows[-1]["time_s"] / 60, "final_loss": rows[-1]["loss"],
            "gflop_per_image": gflop, "train_pflop": gflop * images / 1e6,
            "curve": [(r["time_s"] / 60, r["loss"]) for r in rows]}


def plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, r in enumerate(results):
        minutes, loss = zip(*r["training"]["curve"], strict=True)
        ax.plot(minutes, loss, lw=1, color=f"C{i % 10}", label=r["variant"])
    ax.set(xlabel="training wall time (min, 1 thread, shared machine)", ylabel="training loss (log)", yscale="log",
           title="Recipe study: loss against wall time")
    ax.set_ylim(top=0.2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)


def markdown(results: list[dict[str, Any]], floor: dict[str, Any]) -> str:
    labels = [r["label"] for r in results[0]["scores"]] if results else []
    head = ["variant", "change", "steps", "training PFLOP", "train min (shared machine)", "final loss",
            *[f"sprite-FID {lab}" for lab in labels], "P / R (DDIM, moments)"]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for r in results:
        t = r["training"]
        last = r["scores"][-1]["scores"]
        lines.append(f"| {r['variant']} | {r['change']} | {t['steps']} | {t['train_pflop']:.2f} | {t['minutes']:.0f} | "
                     f"{t['final_loss']:.4f} | "
                     + " | ".join(f"{s['scores']['sprite_fid']:.3f}" for s in r["scores"])
                     + f" | {last['precision']:.2f} / {last['recall']:.2f} |")
    lines.append(f"| real half A vs B (floor, n = {floor['n']}) | | | | | | {floor['sprite_fid']:.3f} | | | |")
    return "\n".join(lines) + "\n"


def evaluate(study: dict[str, Any], only: list[str] | None, json_path: Path, plot_path: Path,
             argv: list[str] | None = None) -> int:
    import torch

    from evaluation.quality import SpriteScorer

    settings = study.get("evaluate", {})
    torch.set_num_threads(int(settings.get("threads", 1)))
    cfg = {"num_images": int(settings.get("num_images", 300)), "batch_size": int(settings.get("batch_size", 150)),
           "seed": int(settings.get("seed", 0))}
    scorer = SpriteScorer()
    floor = scorer.floor(cfg["num_images"])
    results = []
    for name, change in study["variants"].items():
        run = Path(study["output_root"]) / name
        if (only and name not in only) or not (run / "pipeline").is_dir():
            continue
        pipes = make_sampler_pipelines(run / "pipeline")
        info = pipeline_info(run / "pipeline")
        T = pipes["ddpm"].scheduler.config.num_train_timesteps
        scores = []
        for sampling in variant_runs(settings, T):
            t0 = time.perf_counter()
            images, timing = sample_run(pipes, sampling, cfg, Path("outputs/cache/recipe") / name, info)
            scores.append({**sampling, "timing": timing, "scores": scorer.score(images)})
            print(f"{name:<12} {sampling['label']:<32} sprite-FID {scores[-1]['scores']['sprite_fid']:.3f} "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
        results.append({"variant": name, "change": json.dumps(change or {}) if change else "(base)",
                        "training": training_record(run, pipes["ddpm"].unet), "scores": scores, "pipeline": info})
    table = markdown(results, floor)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    envelope = result_envelope("experiments.recipe_study", argv)  # each variant's model: its "pipeline"
    write_text_atomic(json_path, json.dumps({**envelope, "study": study, "floor": floor, "results": results},
                                            indent=1) + "\n")
    write_text_atomic(json_path.with_suffix(".md"), table)
    plot_curves(results, plot_path)
    print(table)
    return 0
