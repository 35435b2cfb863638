"""Run-folder safety: checkpoint discovery and pruning, refusing to clobber a run (atomic writes: pipelines.atomic)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml

from pipelines.atomic import write_text_atomic
from sprites.errors import ConfigError
from training.config import TrainConfig
from training.run_lock import LOCK_NAME

# Keys that may differ when a run is resumed: they change when and how much it logs or trains, not what.
RESUMABLE_CHANGES = {"max_train_steps", "max_train_minutes", "log_every", "sample_every", "checkpoint_every",
                     "checkpoints_total_limit", "push_to_hub", "hub_model_id", "hub_private", "num_sample_images",
                     "sample_inference_steps", "data_path", "num_threads", "log_with", "eval_every", "eval_samples",
                     "eval_batch_size", "eval_seed", "eval_samplers", "eval_best"}


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders of unfinished saves are skipped)."""
    folder = Path(out) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def find_checkpoint(out: Path, resume: str) -> Path | None:
    """``resume`` is 'latest' (None if the run has no checkpoint yet) or a checkpoint folder."""
    if resume == "latest":
        found = list_checkpoints(out)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir() or not path.name.split("-")[-1].isdigit():
        raise ConfigError(f"--resume {resume}: not a checkpoint folder (expected .../checkpoints/checkpoint-NNNNNNN "
                          "or 'latest')")
    return path


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete the oldest complete checkpoints beyond ``keep``, and leftovers of saves that were killed.

    Called only after a new checkpoint is complete, by the one process that writes them.
    """
    for old in list_checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in (Path(out) / "checkpoints").glob(".checkpoint-*"):
        shutil.rmtree(stale, ignore_errors=True)


def truncate_stats(stats: Path, step: int) -> None:
    """Drop log rows past ``step`` (written by a run that died after its last checkpoint)."""
    if not stats.is_file():
        return
    rows = [line for line in stats.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    write_text_atomic(stats, "".join(r + "\n" for r in rows))


def refuse_foreign_run(out: Path, cfg: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Never train into a folder that holds another run, unless asked to resume it or move it aside. The run
    lock's file (:mod:`training.run_lock`) is not part of a run: it stays where it is, held."""
    out = Path(out)
    entries = [p for p in out.iterdir() if p.name != LOCK_NAME] if out.exists() else []
    if not entries:
        return
    if overwrite:
        aside = out.with_name(f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        aside.mkdir()
        for entry in entries:
            entry.rename(aside / entry.name)
        print(f"--overwrite: moved the previous run to {aside}")
        return
    saved = out / "config.yaml"
    if not resume:
        raise ConfigError(f"output_dir {out} already holds a run; continue it with --resume latest, move it aside "
                          "with --overwrite, or choose another --output_dir")
    if not saved.is_file():
        raise ConfigError(f"output_dir {out} is not empty and holds no spritediff run (no config.yaml); "
                          "choose another --output_dir or pass --overwrite")
    old = {**TrainConfig().to_dict(), **(yaml.safe_load(saved.read_text()) or {})}  # keys added since: defaults
    new = cfg.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if changed:
        raise ConfigError(f"--resume: the config differs from the run in {out} in {', '.join(changed)}; resume with "
                          "the same settings (see its config.yaml) or start a new --output_dir")
