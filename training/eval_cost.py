"""What evaluation during training costs: one evaluation of a saved model, timed, against its training time.

    python -m training.eval_cost --pipeline pretrained/sprites_ddpm --threads 1 --every 500 1000 \
        --out docs/figures/training/eval_cost.json [--eval_samples 200 ...]

Runs :meth:`training.periodic_eval.RunEvaluator.evaluate` once on the folder's UNet with the evaluation settings
of the run's ``config.yaml`` (a shipped folder's ``training/``, or beside a run's ``pipeline/``) and the ``--eval_*``
overrides, and divides its time by the training time of ``every`` steps, read from the run's ``stats.jsonl`` (its
wall seconds per step). The share uses the evaluation's CPU seconds on one thread (on a quiet machine its wall time;
on a shared one wall time also counts the waiting). Writes the JSON and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from pipelines.atomic import write_text_atomic
from sprites.errors import ConfigError
from training.config import load_config


def run_record(folder: Path, name: str) -> Path | None:
    """The file ``name`` of the run that made ``folder``: in its ``training/``, or beside a run's ``pipeline/``."""
    return next((p for p in (folder / "training" / name, folder.parent / name) if p.is_file()), None)


def seconds_per_step(folder: Path) -> tuple[float, int, Path]:
    """(wall seconds per training step, steps, the file) from the last row of the run's ``stats.jsonl``."""
    stats = run_record(folder, "stats.jsonl")
    if stats is None:
        raise ConfigError(f"{folder}: no training/stats.jsonl (or ../stats.jsonl); the training time per step comes "
                          "from the run's record")
    last = json.loads(stats.read_text().splitlines()[-1])
    return last["time_s"] / last["step"], last["step"], stats


def measure(folder: Path, every: list[int], overrides: list[str]) -> dict:
    """Time the evaluator's set-up and one evaluation of the pipeline in ``folder``."""
    from pipelines.loading import load_pipeline
    from training.eval_settings import sample_sets
    from training.periodic_eval import RunEvaluator

    cfg = load_config(run_record(folder, "config.yaml"), overrides)
    step_s, steps, stats = seconds_per_step(folder)
    pipe = load_pipeline(folder, "ddim")
    w0, c0 = time.perf_counter(), time.process_time()
    evaluator = RunEvaluator(cfg)
    setup = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}
    load_before = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), time.process_time()
    row = evaluator.evaluate(pipe.unet, pipe.scheduler, 0)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"pipeline": str(folder), "threads": torch.get_num_threads(),
            "eval_samples": cfg.eval_samples, "eval_batch_size": cfg.eval_batch_size,
            "sample_sets": [s.name for s in sample_sets(cfg)], "setup_once": setup,
            "evaluation": {"wall_s": wall, "cpu_s": cpu, "sampling_wall_s": row["sampling_s"]},
            "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0],
            "training": {"seconds_per_step": step_s, "steps": steps, "source": str(stats)},
            "share": {str(n): cpu / (n * step_s) for n in every},
            "row": row}


def table(result: dict) -> str:
    """The shares as a Markdown table."""
    ev, tr = result["evaluation"], result["training"]
    lines = ["| eval_every | training per interval (s) | one evaluation, CPU s (1 thread) | share of training time |",
             "| ---: | ---: | ---: | ---: |"]
    for n, share in result["share"].items():
        lines.append(f"| {n} | {int(n) * tr['seconds_per_step']:.0f} | {ev['cpu_s']:.1f} | {100 * share:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", type=Path, default=Path("pretrained/sprites_ddpm"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--every", type=int, nargs="+", default=[500, 1000], help="eval_every values to price")
    p.add_argument("--out", type=Path, default=None, help="write the result here (JSON)")
    args, overrides = p.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    try:
        result = measure(args.pipeline, args.every, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"command": "python -m training.eval_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d %H:%M"), **result, "table_markdown": table(result)}
    print(result["table_markdown"])
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
        write_text_atomic(args.out.with_suffix(".md"), result["table_markdown"] + "\n")  # the docs quote it
        print(f"wrote {args.out} and its table {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
