"""Figures of the benchmarks: matplotlib without a display, plain log ticks, atomic saves, labelled sprite grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.atomic import atomic_file
from sprites.images import tile_images

__all__ = ["plain_log_ticks", "pyplot", "save_figure", "save_labelled_grids"]


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
    """Save a matplotlib figure atomically and close it."""
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        pyplot().close(fig)
    return Path(path)


def save_labelled_grids(panels: Sequence[tuple[str, Sequence[np.ndarray]]], row_labels: Sequence[str],
                        path: str | Path, title: str | None = None, scale: int = 3) -> Path:
    """One figure of sprite grids side by side: each panel ``(panel title, rows)`` has one row of sprites
    (uint8 (K, 16, 16, 3)) per entry of ``row_labels``; the labels are written left of the first panel."""
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
