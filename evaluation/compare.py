"""Shared parts of the sampler benchmarks (``bench/fid_vs_steps.py``, ``bench/guidance.py``).

* sampling N images in seeded batches with wall and CPU time (:func:`sample_in_batches`);
* nearest-neighbour distances for the memorisation check (:func:`nearest_neighbours`,
  :class:`TrainingReference`, :func:`memorisation_summary`);
* sprite-FID / sprite-KID of a generated set against real references and the real-vs-real floor
  (:func:`fid_kid`, :func:`real_floor`);
* class predictions of the sprite network and the share that matches the requested class
  (:func:`predict_classes`, :func:`class_match`);
* output folders that appear only when complete and are never replaced by accident (:func:`output_dir`).

Pixel distances are Euclidean over the 16 x 16 x 3 values on the [0, 1] scale (so two sprites differing by one
full-range value in one channel of one pixel are 1 apart; the largest possible distance is sqrt(768) = 27.7).
They are computed from the uint8 values in float64, where every partial sum is an integer below 2**53, so
equal sprites give exactly 0.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.features import SpriteFeatureNet, extract_sprite_features, to_uint8_nhwc
from evaluation.metrics import fid_from_features, kid_from_features
from evaluation.splits import pair_ids

__all__ = [
    "PIXEL_SCALE",
    "class_match",
    "fid_kid",
    "load_bench_pipelines",
    "memorisation_summary",
    "nearest_neighbours",
    "output_dir",
    "pipeline_info",
    "pixel_nearest_neighbours",
    "plain_log_ticks",
    "predict_classes",
    "pyplot",
    "save_figure",
    "save_labelled_grids",
    "real_floor",
    "sample_in_batches",
    "TrainingReference",
    "training_reference",
    "write_text_atomic",
]

PIXEL_SCALE = 255.0  # uint8 -> [0, 1]


# --------------------------------------------------------------------------------------------- sampling


def load_bench_pipelines(folder: str | Path) -> dict[str, Any]:
    """``{"ddpm": SpritesDDPMPipeline, "ddim": SpritesDDIMPipeline}`` sharing one UNet loaded from ``folder``.

    Errors (missing or incomplete folder) are one-line ``SystemExit`` messages from ``training.sample``.
    """
    from pipelines import SpritesDDIMPipeline
    from training.sample import load_pipeline

    ddpm = load_pipeline(folder, "ddpm")
    ddpm.unet.eval()
    ddim = SpritesDDIMPipeline(unet=ddpm.unet, scheduler=ddpm.scheduler)
    ddim.set_progress_bar_config(disable=True)
    return {"ddpm": ddpm, "ddim": ddim}


def pipeline_info(folder: str | Path) -> dict[str, Any]:
    """What identifies a pipeline folder: its path, the training steps from its model card (if written) and
    the first 16 hex digits of the sha256 of its UNet weights."""
    import hashlib

    folder = Path(folder)
    info: dict[str, Any] = {"path": str(folder), "training_steps": None, "unet_sha256_16": None}
    card = folder / "README.md"
    if card.is_file():
        m = re.search(r"^- steps: (\d+)", card.read_text(errors="replace"), flags=re.M)
        info["training_steps"] = int(m.group(1)) if m else None
    weights = sorted((folder / "unet").glob("diffusion_pytorch_model*"))
    if weights:
        h = hashlib.sha256()
        with open(weights[0], "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        info["unet_sha256_16"] = h.hexdigest()[:16]
    return info


def sample_in_batches(pipe, num_images: int, batch_size: int, seed: int = 0,
                      class_labels: Sequence[Any] | None = None, **call_kwargs: Any) -> tuple[np.ndarray, dict]:
    """``num_images`` uint8 sprites (N, 16, 16, 3) from ``pipe`` and their timing.

    Batch ``b`` uses ``torch.Generator().manual_seed(seed + b)`` (as ``evaluation.export.sample_pipeline``), so the
    same seed and batch size give the same x_T whatever the sampler: settings are compared on the same noise.
    ``class_labels``: one label per image (sliced per batch) or None. ``call_kwargs`` go to the pipeline call
    (``num_inference_steps``, ``eta``, ``guidance_scale``, ...). Timing: ``wall_s`` and ``cpu_s`` (this process,
    all threads) of the sampling calls only, ``images_per_s`` from the wall time, and the 1-minute load average
    before and after.
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
        out.append(to_uint8_nhwc(result.images, value_range=(0.0, 1.0)))
    timing = {"wall_s": wall, "cpu_s": cpu, "images_per_s": num_images / wall if wall > 0 else float("inf"),
              "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    return np.concatenate(out), timing


# ------------------------------------------------------------------------------------- nearest neighbours


def _as_rows(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"need an array of shape (N, ...) with N rows, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1).astype(np.float64)


def nearest_neighbours(queries: Any, references: Any, query_groups: Any = None, reference_groups: Any = None,
                       chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each query row to its nearest reference row, and that reference's index.

    Rows are flattened to vectors (float64). With ``query_groups`` and ``reference_groups`` (one integer per row),
    a reference of the same group as the query is skipped: give a sprite and its mirror the same group to get
    the distance from a real sprite to its nearest *other* sprite. A query whose every reference is skipped
    gets distance inf and index -1. For integer-valued input (uint8 pixels) the distances are exact.
    """
    q, r = _as_rows(queries), _as_rows(references)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per row, references {r.shape[1]}")
    if len(r) == 0:
        raise ValueError("no reference rows")
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give both query_groups and reference_groups, or neither")
    if query_groups is not None:
        qg, rg = np.asarray(query_groups), np.asarray(reference_groups)
        if qg.shape != (len(q),) or rg.shape != (len(r),):
            raise ValueError(f"groups need one value per row: {qg.shape} for {len(q)} queries, {rg.shape} for "
                             f"{len(r)} references")
    r_norm = (r * r).sum(1)
    dist, index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), chunk):
        block = q[s:s + chunk]
        d2 = (block * block).sum(1)[:, None] + r_norm[None, :] - 2.0 * block @ r.T
        np.maximum(d2, 0.0, out=d2)
        if query_groups is not None:
            d2[qg[s:s + chunk, None] == rg[None, :]] = np.inf
        i = d2.argmin(1)
        index[s:s + chunk] = i
        dist[s:s + chunk] = np.sqrt(d2[np.arange(len(block)), i])
    index[~np.isfinite(dist)] = -1
    return dist, index


def pixel_nearest_neighbours(queries: Any, references: Any, query_groups: Any = None,
                             reference_groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_neighbours` of uint8 sprites in pixel space, distances on the [0, 1] scale."""
    q = to_uint8_nhwc(queries, value_range=(0.0, 1.0))
    r = to_uint8_nhwc(references, value_range=(0.0, 1.0))
    dist, index = nearest_neighbours(q, r, query_groups, reference_groups)
    return dist / PIXEL_SCALE, index


def training_reference(images: np.ndarray, include_flips: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sprites a model trained on ``images`` has seen: ``(references, groups, source)``.

    With ``include_flips`` (training with ``hflip: true``), the exact horizontal flip of every sprite is added
    after the originals, so a generated copy of a flipped training sprite is at distance 0 even where the data
    set's own mirror (sprite ``i + 894``) differs from the exact flip by JPEG noise. ``groups`` is the mirror-pair
    id of each reference (``evaluation.splits.pair_ids``: sprite ``i``, its mirror ``i +- 894`` and both flips share
    one), ``source`` the index of the data-set sprite it comes from.
    """
    images = to_uint8_nhwc(images)
    groups = pair_ids(len(images))
    source = np.arange(len(images))
    if not include_flips:
        return images, groups, source
    return (np.concatenate([images, images[:, :, ::-1]]), np.concatenate([groups, groups]),
            np.concatenate([source, source]))


class TrainingReference:
    """The training sprites (with their flips, see :func:`training_reference`) for nearest-neighbour queries in
    pixel space and, with ``net``, in the sprite network's feature space."""

    def __init__(self, images: np.ndarray, include_flips: bool = True, net: SpriteFeatureNet | None = None):
        self.real = to_uint8_nhwc(images)
        self.images, self.groups, self.source = training_reference(self.real, include_flips)
        self.include_flips = include_flips
        self.features = extract_sprite_features(self.images, net) if net is not None else None

    def pixel(self, queries: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pixel distance ([0, 1] scale) of each query sprite to its nearest reference, and that reference."""
        return pixel_nearest_neighbours(queries, self.images)

    def feature(self, query_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature-space distance of each query to its nearest reference, and that reference."""
        if self.features is None:
            raise ValueError("this TrainingReference was built without a feature network")
        return nearest_neighbours(query_features, self.features)

    def real_leave_pair_out(self) -> dict[str, np.ndarray | None]:
        """Each real sprite against the reference without itself, its mirror and their flips: how far a real
        sprite the model never saw lies from the training set. ``{"pixel": (N,), "feature": (N,) or None}``."""
        groups = pair_ids(len(self.real))
        pixel, _ = pixel_nearest_neighbours(self.real, self.images, groups, self.groups)
        feature = None
        if self.features is not None:
            feature, _ = nearest_neighbours(self.features[:len(self.real)], self.features, groups, self.groups)
        return {"pixel": pixel, "feature": feature}


def memorisation_summary(generated: np.ndarray, real: np.ndarray, quantiles: Sequence[float] = (0.01, 0.05, 0.5),
                         generated_feature: np.ndarray | None = None,
                         real_feature: np.ndarray | None = None) -> dict:
    """Nearest-neighbour distances of generated samples to the training set beside the real reference.

    ``generated``, ``real``: pixel distances (generated -> training set; real held-out -> training set, see
    :meth:`TrainingReference.real_leave_pair_out`). For each quantile q of ``real``: the threshold and the share
    of generated samples closer than it (a model that copies has far more than q below the q-quantile; q = 0.5 is the
    median, the typical distance between a real sprite and its nearest other sprite). Also the share of exact
    copies (distance 0). The same for feature-space distances when given.
    """
    def block(gen: np.ndarray, ref: np.ndarray) -> dict:
        gen, ref = np.asarray(gen, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        ref = ref[np.isfinite(ref)]
        thresholds = {f"{q:g}": float(np.quantile(ref, q)) for q in quantiles}
        return {"generated_median": float(np.median(gen)), "generated_mean": float(gen.mean()),
                "generated_min": float(gen.min()), "real_median": float(np.median(ref)),
                "real_quantiles": thresholds,
                "share_below_real_quantile": {k: float((gen < v).mean()) for k, v in thresholds.items()},
                "share_exact_copies": float((gen == 0).mean()), "real_share_exact": float((ref == 0).mean())}

    out = {"pixel": block(generated, real)}
    if generated_feature is not None and real_feature is not None:
        out["feature"] = block(generated_feature, real_feature)
    return out


# ------------------------------------------------------------------------------------------------- metrics


def fid_kid(generated_features: np.ndarray, reference_features: np.ndarray, kid_subsets: int = 100,
            seed: int = 0) -> dict:
    """sprite-FID and sprite-KID (subsets of min(1000, N_gen, N_ref)) between two feature sets."""
    m = min(1000, len(generated_features), len(reference_features))
    kid, kid_std = kid_from_features(generated_features, reference_features, subset_size=m, n_subsets=kid_subsets,
                                     seed=seed)
    return {"sprite_fid": fid_from_features(generated_features, reference_features), "sprite_kid": kid,
            "sprite_kid_subset_std": kid_std, "n": int(len(generated_features)),
            "n_reference": int(len(reference_features)), "kid_subset_size": int(m)}


def real_floor(features: np.ndarray, half_a: np.ndarray, half_b: np.ndarray, n: int, seed: int = 0,
               kid_subsets: int = 100) -> dict:
    """The real-vs-real floor at N: ``min(n, |A|)`` sprites of half A (a seeded random subset) against all of B."""
    rng = np.random.default_rng(seed)
    a = half_a if n >= len(half_a) else np.sort(rng.choice(half_a, n, replace=False))
    return fid_kid(features[a], features[half_b], kid_subsets, seed)


def predict_classes(images: Any, net: SpriteFeatureNet, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted class (N,), softmax probabilities (N, 5))`` of the sprite network for uint8 sprites (or floats
    in [-1, 1]); images are rounded to uint8 first, as for sprite-FID."""
    import torch

    from training.data import images_to_tensor

    arr = to_uint8_nhwc(images)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    with torch.no_grad():
        logits = [net(images_to_tensor(arr[i:i + batch_size]).to(device)).double().cpu()
                  for i in range(0, len(arr), batch_size)]
    net.train(was_training)
    probs = torch.cat(logits).softmax(1).numpy() if logits else np.zeros((0, net.config.num_classes))
    return probs.argmax(1), probs


def class_match(predicted: Any, requested: Any, num_classes: int = 5) -> dict:
    """Share of samples whose predicted class is the requested one: overall, per requested class, and the
    balanced mean over the classes that were requested; plus the confusion counts (rows requested, columns
    predicted)."""
    p, r = np.asarray(predicted, dtype=np.int64), np.asarray(requested, dtype=np.int64)
    if p.shape != r.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"predicted and requested must be equal-length 1-D label arrays, got {p.shape}, {r.shape}")
    if min(p.min(), r.min()) < 0 or max(p.max(), r.max()) >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (r, p), 1)
    counts = confusion.sum(1)
    per_class = [float(confusion[c, c] / counts[c]) if counts[c] else None for c in range(num_classes)]
    present = [v for v in per_class if v is not None]
    return {"match": float((p == r).mean()), "per_class": per_class, "balanced": float(np.mean(present)),
            "n": int(len(p)), "confusion": confusion.tolist()}


# ---------------------------------------------------------------------------------------------- figures


def pyplot():
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_log_ticks(axis) -> None:
    """Ticks at 1, 2, 5 x 10^k on a log-scaled matplotlib axis (``ax.xaxis`` / ``ax.yaxis``), written as plain
    numbers (0.5, 2, 20) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (temporary file, then rename) and close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        pyplot().close(fig)
    return path


def save_labelled_grids(panels: Sequence[tuple[str, Sequence[np.ndarray]]], row_labels: Sequence[str],
                        path: str | Path, title: str | None = None, scale: int = 3) -> Path:
    """One figure of sprite grids side by side: each panel ``(panel title, rows)`` has one row of sprites
    (uint8 (K, 16, 16, 3)) per entry of ``row_labels``; the labels are written left of the first panel."""
    from training.images import tile_images

    plt = pyplot()
    tiles = []
    for _, rows in panels:
        if len(rows) != len(row_labels):
            raise ValueError(f"a panel has {len(rows)} rows for {len(row_labels)} row labels")
        k = max(len(r) for r in rows)
        cells = [np.concatenate([r, np.full((k - len(r), *r.shape[1:]), 255, np.uint8)]) for r in rows]
        tiles.append(tile_images(np.concatenate(cells), ncols=k, scale=scale, pad_value=255))
    height, width = tiles[0].shape[:2]
    label_in = 0.13 * max(len(str(t)) for t in row_labels)
    fig_w = label_in + sum(t.shape[1] for t in tiles) / 100 + 0.3 * len(tiles)
    fig, axes = plt.subplots(1, len(tiles), figsize=(fig_w, height / 100 + (0.9 if title else 0.5)), squeeze=False,
                             gridspec_kw={"width_ratios": [t.shape[1] for t in tiles]})
    cell = (height - scale) / len(row_labels)
    for i, (ax, tile, (name, _)) in enumerate(zip(axes[0], tiles, panels, strict=True)):
        ax.imshow(tile, interpolation="nearest")
        ax.set_xticks([])
        ax.set_title(name, fontsize=9)
        ax.set_yticks([scale + cell * (r + 0.5) for r in range(len(row_labels))])
        ax.set_yticklabels(row_labels if i == 0 else [], fontsize=8)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- outputs


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary sibling and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


OUTPUT_SUFFIXES = {".png", ".json", ".md", ".npz"}


def check_output_dir(directory: str | Path, marker: str, overwrite: bool) -> None:
    """Refuse (``FileExistsError``) an existing non-empty ``directory`` unless ``overwrite``; even then refuse one
    that does not look like an earlier output of the same command (no ``marker`` file, or files other than
    .png/.json/.md/.npz), so a mistyped path cannot wipe unrelated data. Call before any expensive work."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    entries = list(directory.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f"{directory} already holds results ({len(entries)} entries); pass --overwrite to "
                              "replace them, or choose another --out")
    if not (directory / marker).is_file():
        raise FileExistsError(f"{directory} has no {marker}: it is not an output of this command; refusing to replace "
                              "it even with --overwrite")
    others = [p.name for p in entries if p.is_dir() or p.suffix.lower() not in OUTPUT_SUFFIXES]
    if others:
        raise FileExistsError(f"{directory} holds other files or folders ({others[:3]}); refusing to replace it")


@contextmanager
def output_dir(directory: str | Path, marker: str, overwrite: bool) -> Iterator[Path]:
    """A temporary sibling folder to write into; on success it replaces ``directory`` in one rename (the old one,
    checked by :func:`check_output_dir`, is removed), on failure it is deleted and ``directory`` is untouched."""
    directory = Path(directory)
    check_output_dir(directory, marker, overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        yield tmp
        if not (tmp / marker).is_file():
            raise RuntimeError(f"internal error: {marker} was not written")
        check_output_dir(directory, marker, overwrite)  # again: another run may have written meanwhile
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{time.time_ns()}")
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
