"""What the benchmarks share: the model to time or score, the machine they ran on, and their JSON output."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from training.atomic import write_text_atomic

__all__ = ["command_line", "load_samplers", "load_unet", "machine_info", "now", "quality_cells",
           "refuse_existing_output", "write_json"]


def load_unet(pipeline: str | Path | None, random_unet: str | Path | None, seed: int = 0):
    """``(unet, scheduler, description)``: the UNet of a saved pipeline folder, or a randomly initialised UNet
    (seeded) of a training config's size; a bad folder or config stops with a one-line ``SystemExit``."""
    import torch

    from pipelines.schedule import make_scheduler
    from training.config import ConfigError, load_config
    from training.model import build_unet
    from training.sample import load_pipeline

    if pipeline:
        pipe = load_pipeline(pipeline, "ddpm")
        return pipe.unet, pipe.scheduler, f"pipeline {pipeline}"
    try:
        cfg = load_config(random_unet)
        torch.manual_seed(seed)
        unet = build_unet(cfg.unet, cfg.conditional).eval()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    scheduler = make_scheduler(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)  # the course's settings
    return unet, scheduler, f"random UNet of {random_unet}"


def load_samplers(folder: str | Path) -> dict[str, Any]:
    """``pipelines.loading.load_all_samplers``: the DDPM, DDIM and solver pipelines on one UNet from ``folder``; a
    missing or broken folder stops with a one-line ``SystemExit``."""
    from pipelines.loading import PipelineFolderError, load_all_samplers

    try:
        return load_all_samplers(folder)
    except PipelineFolderError as exc:
        raise SystemExit(f"error: {exc}") from None


def now() -> str:
    """The local date and time, to the second, with the UTC offset."""
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that reproduces a run: ``python -m <module>`` and its arguments."""
    return " ".join(["python", "-m", module, *(argv if argv is not None else sys.argv[1:])])


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, CPU count, torch threads and the versions of torch, diffusers and Python, then ``extra``."""
    import diffusers
    import torch

    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
            **extra}


def write_json(path: str | Path, data: Any, **dumps: Any) -> Path:
    """Write ``data`` as indented JSON to ``path``, atomically (``dumps``: more ``json.dumps`` arguments)."""
    return write_text_atomic(path, json.dumps(data, indent=1, **dumps))


def refuse_existing_output(out_dir: str | Path, marker: str, overwrite: bool) -> None:
    """:func:`evaluation.output.check_output_dir` as a one-line ``SystemExit``: call before any work."""
    from evaluation.output import check_output_dir

    try:
        check_output_dir(out_dir, marker, overwrite)
    except FileExistsError as exc:
        raise SystemExit(f"error: {exc}") from None


def quality_cells(scores: dict[str, Any]) -> list[str]:
    """Table cells of one ``evaluation.quality.SpriteScorer`` result: sprite-FID, KID, precision, recall and the
    class-mix gap in percentage points."""
    return [f"{scores['sprite_fid']:.3f}", f"{scores['sprite_kid']:.4f}", f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}", f"{scores['class_gap_points']:.1f}"]
