"""Image output: float images to uint8, captioned PNG grids (the course's ``plot_sample``), GIFs of the denoising
and .npy arrays; every file written atomically."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.atomic import atomic_file

GRID_SCALE = 4  # 16x16 sprites drawn as 64x64 (nearest neighbour)
GIF_SCALE = 3


def tile_images(images: np.ndarray, ncols: int | None = None, scale: int = 1, pad: int = 1,
                pad_value: int = 128) -> np.ndarray:
    """uint8 (N, H, W, 3) (or grey (N, H, W, 1)) -> one uint8 (rows * (H + pad) + pad, ..., 3) image (grey: with one
    channel), upscaled ``scale`` x (nearest)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"images must be a non-empty uint8 array (N, H, W, 3) or grey (N, H, W, 1), got "
                         f"{images.dtype} {images.shape}")
    n, h, w, channels = images.shape
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w, pad = h * scale, w * scale, pad * scale
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, channels), pad_value, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image
    return grid


def _captioned(grid: np.ndarray, caption: str | None, font_size: int = 14):
    """A PIL image of ``grid`` under a white band holding ``caption`` (wrapped to the grid's width); a grey grid
    (one channel) gives a grey ("L") picture."""
    from PIL import Image, ImageDraw, ImageFont

    mode = "L" if grid.shape[-1] == 1 else "RGB"
    image = Image.fromarray(grid[..., 0] if mode == "L" else grid)
    if not caption:
        return image
    font = ImageFont.load_default(size=font_size)
    chars = max(20, int(grid.shape[1] / (0.55 * font_size)))
    lines = [line for part in caption.splitlines() for line in textwrap.wrap(part, chars) or [""]]
    line_h = font_size + 4
    out = Image.new(mode, (grid.shape[1], len(lines) * line_h + 8), "white")
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((4, 4 + i * line_h), line, fill="black", font=font)
    canvas = Image.new(mode, (grid.shape[1], out.height + grid.shape[0]), "white")
    canvas.paste(out, (0, 0))
    canvas.paste(image, (0, out.height))
    return canvas


def save_grid(images: np.ndarray, path: str | Path, caption: str | None = None, ncols: int | None = None,
              scale: int = GRID_SCALE) -> Path:
    """Write uint8 images (N, H, W, 3) (grey: (N, H, W, 1), saved as a grey PNG) as one PNG grid (10 columns by
    default) with ``caption`` above it."""
    picture = _captioned(tile_images(images, ncols, scale), caption)
    with atomic_file(path) as tmp:
        picture.save(tmp, format="PNG")
    return Path(path)


def save_gif(frames: np.ndarray, path: str | Path, captions: Sequence[str] | None = None,
             ncols: int | None = None, scale: int = GIF_SCALE, frame_ms: int = 80, hold_ms: int = 1500) -> Path:
    """Write uint8 frames (S, N, H, W, 3) as an animated GIF of grids; the last frame is held ``hold_ms``."""
    pictures = [_captioned(tile_images(f, ncols, scale), captions[i] if captions else None, font_size=12)
                for i, f in enumerate(frames)]
    durations = [frame_ms] * (len(pictures) - 1) + [hold_ms]

    with atomic_file(path) as tmp:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return Path(path)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (the pipelines' "np" output) -> uint8 (rounded, clipped)."""
    return (np.clip(np.asarray(images, dtype=np.float64), 0, 1) * 255).round().astype(np.uint8)


def save_npy(images: np.ndarray, path: str | Path) -> Path:
    """Write uint8 images (N, H, W, C) as a .npy file, atomically (for evaluators outside the project)."""
    with atomic_file(path) as tmp:
        np.save(tmp, np.ascontiguousarray(images, dtype=np.uint8))
    return Path(path)
