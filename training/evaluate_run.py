"""Evaluate the kept checkpoints of a run, as evaluation during training would have.

    python -m training.evaluate_run runs/NAME [--eval_samples 200] [--eval_samplers [ddpm]] [--eval_best KEY]
                                               [--num_threads 1] [--device cuda]

For a run made without ``eval_every`` (or to fill in steps): each ``checkpoints/checkpoint-NNNNNNN/`` (the
accelerate state, with the EMA) is loaded, its EMA weights evaluated by the same
:meth:`training.periodic_eval.RunEvaluator.evaluate` the trainer calls, and the row added to the run's
``eval.jsonl`` (steps already there are skipped), with ``eval.png`` and ``best/`` as the trainer writes them. The
evaluation settings are the run's ``config.yaml`` with the ``--eval_*`` overrides; nothing else of the run is
changed. A checkpoint pruned while this runs (a run still training) is skipped with a message. Sampling and the
feature network run on ``--device`` (default: cuda if torch sees one, else cpu).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sprites.data import SpritesDataError
from sprites.errors import ConfigError
from sprites.machine import default_device
from training.checkpoints import list_checkpoints
from training.config import load_config

OVERRIDABLE = ("eval_samples", "eval_batch_size", "eval_seed", "eval_samplers", "eval_best", "num_threads",
               "data_path")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                epilog=f"overrides (--key value): {', '.join(OVERRIDABLE)}")
    p.add_argument("run", type=Path, help="a run folder (holds config.yaml and checkpoints/)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if torch sees one, else cpu)")
    return p.parse_known_args(argv)


def run_config(run: Path, overrides: list[str]):
    """The run's config with the evaluation overrides; ConfigError for anything else."""
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} holds no training run (no config.yaml); point at a folder under runs/")
    for flag in overrides:
        key = flag[2:].partition("=")[0] if flag.startswith("--") else None
        if key is not None and key not in OVERRIDABLE:
            raise ConfigError(f"--{key}: only {', '.join('--' + k for k in OVERRIDABLE)} may be given here (the "
                              "model settings are the run's)")
    return load_config(run / "config.yaml", overrides)


def evaluate_run(run: Path, overrides: list[str] | None = None, log=print, device: str | None = None) -> list[dict]:
    """Evaluate every kept checkpoint of ``run`` whose step has no row yet, on ``device`` (None: cuda if torch
    sees one, else cpu); returns the new rows."""
    from training.export_checkpoint import checkpoint_unet
    from training.model import build_scheduler
    from training.periodic_eval import RunEvaluator, eval_table, plot_eval, read_rows, record, summary

    run = Path(run)
    cfg = run_config(run, list(overrides or []))
    try:
        device = torch.device(device or default_device())
    except RuntimeError as exc:
        raise ConfigError(f"--device {device}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: torch sees no CUDA device here; use --device cpu")
    torch.set_num_threads(cfg.num_threads or torch.get_num_threads())
    done = {r["step"] for r in read_rows(run)}
    todo = [c for c in list_checkpoints(run) if int(c.name.split("-")[-1]) not in done]
    log(f"{run}: {len(list_checkpoints(run))} checkpoint(s), {len(todo)} without a row in eval.jsonl")
    if not todo:
        plot_eval(run)
        eval_table(run)
        return []
    evaluator, scheduler, new = RunEvaluator(cfg, device), build_scheduler(cfg), []
    for checkpoint in todo:
        step = int(checkpoint.name.split("-")[-1])
        try:
            unet, _ = checkpoint_unet(checkpoint)
        except (ConfigError, OSError, RuntimeError) as exc:  # pruned or replaced by a run still training
            log(f"skipped {checkpoint.name}: {exc}")
            continue
        new.append(record(run, evaluator, unet.to(device), scheduler, step))
        log(summary(new[-1], cfg))
    return new


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    try:
        rows = evaluate_run(args.run, overrides, device=args.device)
    except (ConfigError, SpritesDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} row(s) to {args.run / 'eval.jsonl'}, with {args.run / 'eval.png'} and eval.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
