"""Sampling N sprites from a pipeline in seeded batches, timed, and what identifies the pipeline folder (its model
hash)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.features import to_uint8_nhwc

__all__ = ["file_sha256", "model_sha256", "pipeline_info", "sample_in_batches"]


MODEL_FILES = ("unet/config.json", "unet/diffusion_pytorch_model*", "scheduler/scheduler_config.json",
               "data_moments.safetensors")  # what a model hash covers; the first weights file that matches
UNRECORDED_CONFIG_KEYS = ("_diffusers_version", "_name_or_path", "_use_default_values")  # not the model's


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_sha256(folder: str | Path) -> str | None:
    """The sha256 (hex) of what a pipeline folder samples with: its UNet config and weights, its scheduler config
    and its data moments (when present); configs compare as JSON without diffusers' bookkeeping keys
    (``_diffusers_version``, ...), so re-saving with another diffusers keeps the hash. None without UNet weights."""
    folder = Path(folder)
    h = hashlib.sha256()
    for pattern in MODEL_FILES:
        found = sorted(folder.glob(pattern))
        if not found:
            if pattern.startswith("unet/diffusion"):
                return None
            continue
        path = found[0]
        if path.suffix == ".json":
            config = {k: v for k, v in json.loads(path.read_text()).items() if k not in UNRECORDED_CONFIG_KEYS}
            digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        else:
            digest = file_sha256(path)
        h.update(f"{pattern}={digest}\n".encode())
    return h.hexdigest()


def pipeline_info(folder: str | Path) -> dict[str, Any]:
    """What identifies a pipeline folder: its path, the training steps from its model card (if written), the
    first 16 hex digits of the sha256 of its UNet weights and the model hash (:func:`model_sha256`)."""
    folder = Path(folder)
    info: dict[str, Any] = {"path": str(folder), "training_steps": None, "unet_sha256_16": None,
                            "model_sha256": None}
    card = folder / "README.md"
    if card.is_file():
        m = re.search(r"^- steps: (\d+)", card.read_text(errors="replace"), flags=re.M)
        info["training_steps"] = int(m.group(1)) if m else None
    weights = sorted((folder / "unet").glob("diffusion_pytorch_model*"))
    if weights:
        info["unet_sha256_16"] = file_sha256(weights[0])[:16]
        info["model_sha256"] = model_sha256(folder)
    return info


def sample_in_batches(pipe, num_images: int, batch_size: int, seed: int = 0,
                      class_labels: Sequence[Any] | None = None, **call_kwargs: Any) -> tuple[np.ndarray, dict]:
    """``num_images`` uint8 sprites (N, 16, 16, 3) from ``pipe`` and their timing.

    Batch ``b`` uses ``torch.Generator().manual_seed(seed + b)``, so the same seed and batch size give the same x_T
    whatever the sampler: settings are compared on the same noise. ``class_labels``: one label per image (sliced
    per batch) or None. ``call_kwargs`` go to the pipeline call (``num_inference_steps``, ``eta``,
    ``guidance_scale``, ...). Timing: ``wall_s`` and ``cpu_s`` (this process, all threads) of the sampling calls
    only, ``images_per_s`` from the wall time, and the 1-minute load average before and after.
    """
    import torch

    if num_images < 1 or batch_size < 1:
        raise ValueError(f"num_images and batch_size must be >= 1, got {num_images} and {batch_size}")
    if class_labels is not None and len(class_labels) != num_images:
        raise ValueError(f"class_labels: {len(class_labels)} labels for {num_images} images")
    out, wall, cpu = [], 0.0, 0.0
    load_before = os.getloadavg()[0]
    for b, start in enumerate(range(0, num_images, batch_size)):
        n = min(batch_size, num_images - start)
        kwargs = dict(call_kwargs)
        if class_labels is not None:
            kwargs["class_labels"] = list(class_labels[start:start + n])
        generator = torch.Generator().manual_seed(seed + b)
        w0, c0 = time.perf_counter(), time.process_time()
        result = pipe(batch_size=n, generator=generator, output_type="np", **kwargs)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        out.append(to_uint8_nhwc(result.images, value_range=(0.0, 1.0), channels=None))
    timing = {"wall_s": wall, "cpu_s": cpu, "images_per_s": num_images / wall if wall > 0 else float("inf"),
              "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    return np.concatenate(out), timing
