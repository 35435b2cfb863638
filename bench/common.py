"""What the benchmarks share: the model to time or score, the envelope of every results file (date, command,
machine, model hash, code hash), the sample cache's key and the JSON output."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.atomic import write_text_atomic
from sprites.machine import machine_info

__all__ = ["command_line", "load_samplers", "load_unet", "machine_info", "now",
           "quality_cells", "refuse_existing_output", "result_envelope", "sample_cache_key", "sampling_code_sha256",
           "write_json"]

ROOT = Path(__file__).resolve().parents[1]
# the code a sample depends on: every pipeline and update rule, the samplers by name (ours and diffusers'), the
# batching and uint8 conversion; with the torch and diffusers versions
SAMPLING_CODE = ("pipelines/*.py", "bench/samplers.py", "evaluation/sampling.py")


def load_unet(pipeline: str | Path | None, random_unet: str | Path | None, seed: int = 0):
    """``(unet, scheduler, description)``: the UNet of a saved pipeline folder, or a randomly initialised UNet
    (seeded) of a training config's size; a bad folder or config stops with a one-line ``SystemExit``."""
    import torch

    from pipelines.loading import PipelineFolderError, load_pipeline
    from pipelines.schedule import make_scheduler
    from sprites.errors import ConfigError
    from training.config import load_config
    from training.model import build_unet

    try:
        if pipeline:
            pipe = load_pipeline(pipeline, "ddpm")
            return pipe.unet, pipe.scheduler, f"pipeline {pipeline}"
        cfg = load_config(random_unet)
        torch.manual_seed(seed)
        unet = build_unet(cfg.unet, cfg.conditional).eval()
    except (PipelineFolderError, ConfigError) as exc:
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


@cache
def sampling_code_sha256(root: Path = ROOT) -> str:
    """The sha256 (hex) of the code that turns a model into samples (``SAMPLING_CODE`` under ``root``: each file's
    path and bytes) and of the torch and diffusers versions: a change to any pipeline or sampler changes it."""
    import diffusers
    import torch

    h = hashlib.sha256(f"torch={torch.__version__} diffusers={diffusers.__version__}\n".encode())
    for path in sorted(p for pattern in SAMPLING_CODE for p in root.glob(pattern)):
        h.update(f"{path.relative_to(root).as_posix()}\n".encode() + path.read_bytes() + b"\n")
    return h.hexdigest()


def sample_cache_key(settings: dict[str, Any], model_sha256: str | None, files: dict[str, str]) -> str:
    """The key of one sample set in a sample cache: the sampling settings, the model hash, the sampling code's hash
    (:func:`sampling_code_sha256`) and the hash of every other file the sampler reads (``files``: name -> sha256,
    e.g. a fitted solver), as canonical JSON. Anything that can change the samples changes the key."""
    return json.dumps({**settings, "model_sha256": model_sha256, "code_sha256": sampling_code_sha256(),
                       "files_sha256": files}, sort_keys=True)


def result_envelope(module: str, argv: list[str] | None, pipeline: str | Path | None = None) -> dict[str, Any]:
    """What every benchmark's results file holds besides its numbers: the date, the command, the machine (with the
    load average at the end of the run), the model (``evaluation.sampling.pipeline_info``: path, training steps,
    model hash; None for a random UNet) and the sampling code's hash."""
    from evaluation.sampling import pipeline_info

    return {"date": now(), "command": command_line(module, argv), "machine": machine_info(),
            "pipeline": pipeline_info(pipeline) if pipeline is not None else None,
            "code_sha256": sampling_code_sha256()}


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
