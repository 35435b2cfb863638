"""Training step time of several configs, measured side by side: does a recipe change cost CPU per step?

    python -m experiments.train_step_time --configs configs/sprites_ddpm.yaml configs/candidates/sprites_dropout.yaml \
        [--threads 1] [--steps 10] [--rounds 5] [--json docs/figures/training/step_time.json]

Each config's UNet (its ``unet`` block and conditioning), loss (:class:`training.loss.DiffusionLoss` with its
weighting) and AdamW step are built as training builds them and timed on random batches of its
``train_batch_size``; the configs take turns, ``steps`` steps each per round after one untimed warm-up step, so a
change in the machine's load falls on all of them alike. Prints a table of the median seconds per step over the
rounds (CPU and wall) and each config's ratio to the first, and writes them as JSON. Weights, data and EMA do not
enter the step time (the EMA update is a few element-wise ops per parameter and is the same for every config).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.common import result_envelope
from pipelines.atomic import write_text_atomic
from training.config import load_config
from training.loss import DiffusionLoss
from training.model import build_scheduler, build_unet


class StepTimer:
    """One config's training step on random data: forward, loss, backward and the optimizer step."""

    def __init__(self, path: str, seed: int = 0):
        cfg = load_config(path)
        torch.manual_seed(seed)
        self.path, self.cfg = path, cfg
        self.unet = build_unet(cfg.unet, cfg.conditional)
        self.loss = DiffusionLoss(build_scheduler(cfg).alphas_cumprod, cfg.loss_weighting, cfg.min_snr_gamma)
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=cfg.learning_rate)
        n, size = cfg.train_batch_size, cfg.unet["sample_size"]
        self.x0 = torch.randn(n, cfg.unet["in_channels"], size, size)
        classes = (self.unet.config.num_class_embeds or 1) - 1  # the last class embedding is the null class
        self.labels = torch.randint(0, classes, (n,)) if cfg.conditional else None
        self.unet.train()

    def step(self) -> None:
        t = torch.randint(0, self.cfg.num_train_timesteps, (self.x0.shape[0],))
        loss = self.loss(self.unet, self.x0, t, torch.randn_like(self.x0), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def time(self, steps: int) -> tuple[float, float]:
        """(CPU, wall) seconds per step over ``steps`` steps."""
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.process_time() - c0) / steps, (time.perf_counter() - w0) / steps


def measure(paths: list[str], steps: int, rounds: int) -> list[dict]:
    """Per config: the median CPU and wall seconds per step over ``rounds`` interleaved rounds."""
    timers = [StepTimer(p) for p in paths]
    for timer in timers:
        timer.step()  # warm-up: allocator and thread pool
    times: list[list[tuple[float, float]]] = [[] for _ in timers]
    for _ in range(rounds):
        for timer, out in zip(timers, times, strict=True):
            out.append(timer.time(steps))
    rows = []
    for timer, out in zip(timers, times, strict=True):
        rows.append({"config": timer.path, "dropout": timer.unet.config.get("dropout", 0.0),
                     "batch_size": timer.cfg.train_batch_size,
                     "cpu_s_per_step": statistics.median(c for c, _ in out),
                     "wall_s_per_step": statistics.median(w for _, w in out),
                     "rounds": [{"cpu_s": c, "wall_s": w} for c, w in out]})
    for row in rows:
        row["cpu_ratio_to_first"] = row["cpu_s_per_step"] / rows[0]["cpu_s_per_step"]
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| config | dropout | batch | CPU s / step (median) | wall s / step (median) | CPU ratio to first |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['dropout']} | {r['batch_size']} | {r['cpu_s_per_step']:.3f} | "
                     f"{r['wall_s_per_step']:.3f} | {r['cpu_ratio_to_first']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", required=True, help="training configs; ratios are to the first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10, help="timed steps per config per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="write the results here (and the table beside, .md)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        p.error("--steps and --rounds must be at least 1")
    torch.set_num_threads(args.threads)
    rows = measure(args.configs, args.steps, args.rounds)
    text = table(rows)
    print(text)
    if args.json:
        result = {**result_envelope("experiments.train_step_time", argv), "threads": args.threads, "steps": args.steps,
                  "rounds": args.rounds, "rows": rows}
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
        write_text_atomic(args.json.with_suffix(".md"), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
