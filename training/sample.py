"""Sample sprites from a saved pipeline folder: a captioned grid PNG and, optionally, a GIF of the denoising.

    python -m training.sample --pipeline runs/tiny/pipeline [--sampler ddpm|ddim] [--num_images 50] [--steps N]
        [--eta 0] [--seed 0] [--class_labels hero 0.5,0,0.5,0,0 ...] [--guidance_scale 1] --out grid.png
        [--gif denoise.gif]

DDPM runs all T steps unless --steps is given; DDIM defaults to 50 steps. Class labels (conditional models
only) are ints, names or five comma-separated mix weights, cycled over the images. Files are written
atomically (a temporary file renamed into place). The grid helper :func:`save_grid` is shared with training.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.common import config_variance
from pipelines.prior import PRIORS

GRID_SCALE = 4  # 16x16 sprites drawn as 64x64 (nearest neighbour)
GIF_SCALE = 3
GIF_FRAMES = 40  # about this many denoising frames (plus x_T and the result)


# --------------------------------------------------------------------------------------------- images out


def tile_images(images: np.ndarray, ncols: int | None = None, scale: int = 1, pad: int = 1,
                pad_value: int = 128) -> np.ndarray:
    """uint8 (N, H, W, 3) (or grey (N, H, W, 1)) -> one uint8 (rows * (H + pad) + pad, ...) image, upscaled
    ``scale`` x (nearest)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"images must be a non-empty uint8 array (N, H, W, 3) or grey (N, H, W, 1), got "
                         f"{images.dtype} {images.shape}")
    if images.shape[-1] == 1:
        images = images.repeat(3, axis=-1)
    n, h, w, _ = images.shape
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w, pad = h * scale, w * scale, pad * scale
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), pad_value, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image
    return grid


def _captioned(grid: np.ndarray, caption: str | None, font_size: int = 14):
    """A PIL image of ``grid`` under a white band holding ``caption`` (wrapped to the grid's width)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(grid)
    if not caption:
        return image
    font = ImageFont.load_default(size=font_size)
    chars = max(20, int(grid.shape[1] / (0.55 * font_size)))
    lines = [line for part in caption.splitlines() for line in textwrap.wrap(part, chars) or [""]]
    line_h = font_size + 4
    out = Image.new("RGB", (grid.shape[1], len(lines) * line_h + 8), "white")
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((4, 4 + i * line_h), line, fill="black", font=font)
    canvas = Image.new("RGB", (grid.shape[1], out.height + grid.shape[0]), "white")
    canvas.paste(out, (0, 0))
    canvas.paste(image, (0, out.height))
    return canvas


def _atomic_save(path: str | Path, save) -> Path:
    """Call ``save(tmp_path)`` then rename the temporary file onto ``path`` (no half-written file is ever seen)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_grid(images: np.ndarray, path: str | Path, caption: str | None = None, ncols: int | None = None,
              scale: int = GRID_SCALE) -> Path:
    """Write uint8 images (N, H, W, 3) as one PNG grid (10 columns by default) with ``caption`` above it."""
    picture = _captioned(tile_images(images, ncols, scale), caption)
    return _atomic_save(path, lambda tmp: picture.save(tmp, format="PNG"))


def save_gif(frames: np.ndarray, path: str | Path, captions: Sequence[str] | None = None,
             ncols: int | None = None, scale: int = GIF_SCALE, frame_ms: int = 80, hold_ms: int = 1500) -> Path:
    """Write uint8 frames (S, N, H, W, 3) as an animated GIF of grids; the last frame is held ``hold_ms``."""
    pictures = [_captioned(tile_images(f, ncols, scale), captions[i] if captions else None, font_size=12)
                for i, f in enumerate(frames)]
    durations = [frame_ms] * (len(pictures) - 1) + [hold_ms]

    def save(tmp: Path) -> None:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)

    return _atomic_save(path, save)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (the pipelines' "np" output) -> uint8."""
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------------------------- command


def parse_label(token: str):
    """One --class_labels token: an int, a class name, or five comma-separated mix weights."""
    token = token.strip()
    if "," in token:
        try:
            return [float(v) for v in token.split(",")]
        except ValueError:
            raise SystemExit(f"error: --class_labels: cannot read {token!r} as mix weights (5 numbers separated by "
                             "commas, e.g. 0.5,0,0.5,0,0)") from None
    try:
        return int(token)
    except ValueError:
        return token


def load_pipeline(folder: str | Path, sampler: str, device: str = "cpu"):
    """Load our DDPM or DDIM pipeline from a ``save_pretrained`` folder; SystemExit with one line if that fails."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"error: pipeline folder {folder} not found; point --pipeline at a saved pipeline "
                         "(for example runs/tiny/pipeline after training)")
    if not (folder / "model_index.json").is_file():
        raise SystemExit(f"error: {folder} is not a pipeline folder (no model_index.json); point --pipeline at the "
                         "pipeline/ folder of a training run")
    from diffusers.utils import logging as diffusers_logging

    from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline

    for part in ("unet", "scheduler"):
        if not (folder / part).is_dir():
            raise SystemExit(f"error: {folder} is incomplete: the {part}/ folder is missing; save or copy the "
                             "pipeline again")
    if not any((folder / "unet").glob("diffusion_pytorch_model*")):
        raise SystemExit(f"error: {folder} is incomplete: no weights in unet/ (diffusion_pytorch_model.safetensors); "
                         "save or copy the pipeline again")
    diffusers_logging.disable_progress_bar()
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # our error below says it all, in one line
    cls = SpritesDDPMPipeline if sampler == "ddpm" else SpritesDDIMPipeline
    try:
        pipe = cls.from_pretrained(folder).to(device)
    except Exception as exc:  # missing or corrupt files surface as many exception types; all mean "broken folder"
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise SystemExit(f"error: cannot load the pipeline in {folder} ({type(exc).__name__}: {reason}); the folder "
                         "is incomplete or corrupt: save or copy it again") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", required=True, help="folder written by save_pretrained (e.g. runs/tiny/pipeline)")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: all T for ddpm, 50 for ddim)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic, 1 DDPM-like")
    p.add_argument("--variance", choices=("beta", "posterior"), default=None,
                   help="DDPM sigma_t^2 (default: the folder's scheduler config)")
    p.add_argument("--clip_sample", action=argparse.BooleanOptionalAction, default=None,
                   help="clip the predicted x_0 to [-1, 1] at every step (default: the folder's scheduler config)")
    p.add_argument("--timestep_spacing", choices=("leading", "trailing", "linspace"), default=None,
                   help="default: the folder's scheduler config")
    p.add_argument("--prior", choices=PRIORS, default="standard",
                   help="x_T from N(0, I) (standard) or the data's Gaussian at T (moments; pipelines/prior.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class_labels", nargs="+", default=None,
                   help="conditional models: ints, names or 5 comma-separated mix weights, cycled over the images")
    p.add_argument("--guidance_scale", type=float, default=1.0, help="classifier-free guidance w (1: conditional)")
    p.add_argument("--out", required=True, help="grid PNG to write")
    p.add_argument("--gif", default=None, help="also write a GIF of the denoising")
    p.add_argument("--ncols", type=int, default=None, help="grid columns (default 10)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--runtime", choices=("torch", "onnxruntime", "compile"), default="torch",
                   help="how the UNet runs (docs/speed.md): torch (default); onnxruntime (CPU, unconditional models, "
                        "1.2-1.3x faster here; pip install -e '.[onnx]'); compile (torch.compile, 1.1x after about a "
                        "minute of compiling)")
    args = p.parse_args(argv)
    if args.num_images < 1:
        p.error(f"--num_images must be >= 1, got {args.num_images}")
    if args.sampler == "ddpm" and args.eta != 0:
        p.error("--eta applies to --sampler ddim only")
    if args.runtime == "onnxruntime" and args.device != "cpu":
        p.error("--runtime onnxruntime runs on the CPU only; drop --device or use --runtime torch")
    return args


def apply_runtime(pipe, runtime: str):
    """The pipeline with its UNet run by ``runtime`` ("torch", "onnxruntime" or "compile"); see pipelines.speed."""
    if runtime == "torch":
        return pipe
    from pipelines.speed import OnnxUNet, prepare_unet

    if runtime == "compile":
        prepare_unet(pipe.unet, compile=True)
        return pipe
    try:
        fast = type(pipe)(unet=OnnxUNet(pipe.unet), scheduler=pipe.scheduler)
    except ImportError:
        raise SystemExit("error: --runtime onnxruntime needs onnx and onnxruntime: pip install -e '.[onnx]'") from None
    except ValueError as exc:
        raise SystemExit(f"error: --runtime onnxruntime: {exc}") from None
    fast.set_progress_bar_config(disable=True)
    return fast


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pipe = apply_runtime(load_pipeline(args.pipeline, args.sampler, args.device), args.runtime)

    import torch

    n = args.num_images
    T = pipe.scheduler.config.num_train_timesteps
    steps = args.steps if args.steps is not None else (T if args.sampler == "ddpm" else 50)
    kwargs = {"num_inference_steps": steps, "clip_sample": args.clip_sample, "timestep_spacing": args.timestep_spacing,
              "guidance_scale": args.guidance_scale, "prior": args.prior}
    kwargs.update({"variance": args.variance} if args.sampler == "ddpm" else {"eta": args.eta})
    if args.class_labels:
        labels = [parse_label(tok) for tok in args.class_labels]
        kwargs["class_labels"] = [labels[i % len(labels)] for i in range(n)]
    every = max(1, steps // GIF_FRAMES)
    try:
        start = time.perf_counter()
        out = pipe(batch_size=n, generator=torch.Generator(device="cpu").manual_seed(args.seed), output_type="np",
                   return_intermediates=args.gif is not None, intermediate_every=every, **kwargs)
        elapsed = time.perf_counter() - start
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None

    variance = config_variance(pipe.scheduler, args.variance)
    what = f"DDPM (sigma^2={variance})" if args.sampler == "ddpm" else f"DDIM eta={args.eta:g}"
    if args.prior != "standard":
        what += f", {args.prior} prior"
    caption = f"{what}, {steps} steps, seed {args.seed}, {n} images in {elapsed:.1f} s"
    if args.class_labels:
        caption += f", labels {' '.join(args.class_labels)}, guidance {args.guidance_scale:g}"
    caption += f" - {Path(args.pipeline).resolve().parent.name}/{Path(args.pipeline).name}"
    save_grid(to_uint8(out.images), args.out, caption, args.ncols)
    print(f"{args.out}: {caption}")
    if args.gif:
        done = [0, *[min(k * every, steps) for k in range(1, len(out.intermediates))]]
        captions = [f"{args.sampler.upper()} step {k}/{steps}" for k in done]
        save_gif(to_uint8(out.intermediates), args.gif, captions, args.ncols)
        print(f"{args.gif}: {len(done)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
