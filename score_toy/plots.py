"""Drawing helpers: density contours, score fields, samples, trajectories, and the figure files (no caption drawn)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from torch import Tensor  # noqa: E402

from score_toy.atomic import atomic_file  # noqa: E402
from score_toy.mixture import GaussianMixture2D  # noqa: E402

Extent = tuple[float, float]
DENSITY_LEVELS = (0.01, 0.05, 0.15, 0.3, 0.5, 0.7, 0.9)  # contour levels, as fractions of the largest density


def _grid(extent: Extent, n: int) -> tuple[np.ndarray, np.ndarray, Tensor]:
    t = np.linspace(extent[0], extent[1], n)
    gx, gy = np.meshgrid(t, t)
    return gx, gy, torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))


def draw_density(ax: Axes, mixture: GaussianMixture2D, extent: Extent, n: int = 160) -> None:
    """Filled contours of the density at fixed fractions of its maximum (darker = more mass), so that a light mode
    shows as well as a heavy one."""
    gx, gy, pts = _grid(extent, n)
    p = mixture.log_prob(pts).exp().reshape(gx.shape).numpy()
    levels = p.max() * np.array(DENSITY_LEVELS)
    ax.contourf(gx, gy, p, levels=[*levels, 1.001 * p.max()], cmap="Blues", vmin=-0.2 * p.max(), vmax=1.4 * p.max())
    ax.contour(gx, gy, p, levels=levels, colors="steelblue", linewidths=0.4)
    ax.fill_between([], [], color=plt.get_cmap("Blues")(0.55), label="density (darker: more mass)")
    _square(ax, extent)


def draw_score_field(ax: Axes, score_fn, sigma: float | None, extent: Extent, n: int = 21,
                     scale: float | None = None, color: str = "black") -> float:
    """Arrows of s(x, sigma) on an n x n grid; lengths grow like sqrt(|s|) so both small and large scores show.

    ``scale`` is the |s| drawn as a full grid cell; by default the largest |s| on the grid. Returns the scale used,
    so that a second panel (e.g. the analytic field beside a learned one) can share it.
    """
    gx, gy, pts = _grid(extent, n)
    with torch.no_grad():
        s = score_fn(pts.float(), sigma).double().numpy()
    norm = np.linalg.norm(s, axis=1)
    if scale is None:
        scale = float(norm.max()) if norm.max() > 0 else 1.0
    cell = (extent[1] - extent[0]) / (n - 1)
    length = 0.9 * cell * np.sqrt(np.clip(norm / scale, 0, 1))
    direction = s / np.maximum(norm, 1e-12)[:, None]
    u, v = (direction * length[:, None]).T
    ax.quiver(gx.ravel(), gy.ravel(), u, v, angles="xy", scale_units="xy", scale=1, color=color, width=0.004,
              headwidth=4, headlength=4.5, headaxislength=4)
    ax.plot([], [], ls="none", marker=r"$\rightarrow$", ms=9, color=color, label="score (arrow: direction)")
    _square(ax, extent)
    return scale


def draw_samples(ax: Axes, x: Tensor, extent: Extent, color: str = "tab:orange") -> None:
    """A scatter of the points (those outside the square are not drawn)."""
    x = x.detach().double().numpy()
    ax.scatter(x[:, 0], x[:, 1], s=3, color=color, alpha=0.6, linewidths=0, label="samples")
    _square(ax, extent)


def draw_trajectories(ax: Axes, path: Tensor, extent: Extent) -> None:
    """Trajectories of shape (steps + 1, k, 2): a line per point, a circle at its start and a star at its end."""
    p = path.detach().double().numpy()
    for j in range(p.shape[1]):
        c = f"C{j % 10}"
        ax.plot(p[:, j, 0], p[:, j, 1], color=c, lw=0.7, alpha=0.8)
        ax.plot(p[0, j, 0], p[0, j, 1], "o", color=c, ms=4, mec="black", mew=0.5)
        ax.plot(p[-1, j, 0], p[-1, j, 1], "*", color=c, ms=9, mec="black", mew=0.5)
    ax.plot([], [], "o-", color="grey", ms=4, mec="black", mew=0.5, lw=0.7, label="path from its start (circle)")
    ax.plot([], [], "*", color="grey", ms=9, mec="black", mew=0.5, label="end of the path")
    _square(ax, extent)


def _square(ax: Axes, extent: Extent) -> None:
    ax.set_xlim(*extent)
    ax.set_ylim(*extent)
    ticks = np.linspace(extent[0], extent[1], 5)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.set_xlabel("x_1", fontsize=8, labelpad=1)
    ax.set_ylabel("x_2", fontsize=8, labelpad=1)


def figure_legend(fig: Figure) -> None:
    """One legend under the panels for every labelled artist of the figure (each label once)."""
    seen: dict[str, object] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(len(seen), 4), fontsize=8,
                   frameon=False)


def panels(rows: int, cols: int, size: float = 3.2) -> tuple[Figure, np.ndarray]:
    """A figure of rows x cols square panels (axes returned as a 2-D array)."""
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False, layout="constrained")
    return fig, axes


def save_figure(fig: Figure, path: str | Path, dpi: int = 72) -> Path:
    """Write the figure as a 256-colour PNG (small files); atomic (score_toy.atomic). No number and no caption are
    drawn into the picture: a document numbers its figures itself (``captions.md``, the report) and prints the
    caption under them."""
    path = Path(path)
    try:
        figure_legend(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        buffer.seek(0)
        with atomic_file(path) as tmp:
            Image.open(buffer).convert("RGB").quantize(colors=256).save(tmp, format="PNG", optimize=True)
    finally:
        plt.close(fig)
    return path
