"""The editing modes of ``python -m training.sample``: DDIM inversion and RePaint inpainting of given sprites.

    python -m training.sample --pipeline pretrained/sprites_ddpm --invert sprite.png [--nfe 50] --out back.png
    python -m training.sample --pipeline pretrained/sprites_ddpm --invert sprites.npy --out latents.npy
    python -m training.sample --pipeline pretrained/sprites_ddpm --inpaint sprite.png --mask mask.png
        [--num_images 10] [--nfe 50] [--eta 1] [--jump_length 5] [--jump_n_sample 3] [--prior moments]
        [--class_labels hero] --out filled.png

Images: a PNG (one sprite, or any image of the UNet's size) or a .npy array (N, H, W, 3), uint8 or floats in
[0, 1]. Masks: a grey PNG or a .npy (H, W) / (N, H, W), 1 (white) keep and 0 (black) fill, as diffusers' RePaint.
``--invert`` writes the latents x_T as float32 (N, C, H, W) to a .npy ``--out`` (``latents=torch.from_numpy(...)``
samples them back with DDIM, eta 0, the same steps), else a grid of the inputs over their reconstructions.
``--inpaint`` fills each given sprite once, or one sprite ``--num_images`` times (other noise each time), and writes
a grid (the input on top) or a uint8 .npy of the completions. Files are written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.atomic import atomic_file
from sprites.images import save_grid, save_npy, to_uint8

DEFAULT_OUT = {"invert": "inverted.png", "inpaint": "inpainted.png"}


def add_edit_arguments(p: argparse.ArgumentParser) -> None:
    """The editing options of the sampling command."""
    p.add_argument("--invert", default=None, metavar="IMAGE",
                   help="DDIM-invert these sprites (PNG or .npy) at --nfe steps; --out FILE.npy gets the latents, a "
                        "PNG the inputs over their reconstructions")
    p.add_argument("--inpaint", default=None, metavar="IMAGE", help="fill the masked pixels of these sprites (RePaint)")
    p.add_argument("--mask", default=None, metavar="MASK", help="with --inpaint: grey PNG or .npy, 1 keep, 0 fill")
    p.add_argument("--jump_length", type=int, default=5, help="--inpaint: levels of a resampling jump")
    p.add_argument("--jump_n_sample", type=int, default=3, help="--inpaint: resamplings per jump level (1: none)")


def check_edit_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.invert and args.inpaint:
        p.error("give --invert or --inpaint, not both")
    if bool(args.inpaint) != bool(args.mask):
        p.error("--inpaint IMAGE needs --mask MASK (and --mask needs --inpaint)")


def read_array(path: str, what: str) -> Any:
    """A PNG as a PIL image, or a .npy as an array; a one-line ``SystemExit`` when it cannot be read."""
    import PIL.Image

    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"error: --{what} {path}: no such file")
    try:
        if file.suffix.lower() == ".npy":
            return np.load(file, allow_pickle=False)
        with PIL.Image.open(file) as image:
            return image.copy()
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: --{what} {path}: cannot read it ({' '.join(str(exc).split())})") from None


def _load(cls, folder: str, device: str):
    from diffusers.utils import logging as diffusers_logging

    from pipelines.loading import check_folder

    folder = check_folder(folder)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # no loading bar
    try:
        pipe = cls.from_pretrained(folder).to(device)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_edit(args: argparse.Namespace, labels: list | None) -> int:
    """``--invert`` or ``--inpaint``: load the folder, run the pipeline, write ``--out``; errors in one line."""
    from pipelines import SpritesDDIMPipeline, SpritesInpaintPipeline
    from pipelines.image_io import read_images

    mode = "invert" if args.invert else "inpaint"
    out = Path(args.out or DEFAULT_OUT[mode])
    steps = args.nfe or 50
    try:
        if mode == "invert":
            pipe = _load(SpritesDDIMPipeline, args.pipeline, args.device)
            images = read_images(read_array(args.invert, "invert"), pipe.unet)
            latents = pipe.invert(images, steps, class_labels=labels)
            if out.suffix.lower() == ".npy":
                with atomic_file(out) as tmp:
                    np.save(tmp, latents.float().cpu().numpy())
                print(f"{out}: DDIM-{steps} latents {tuple(latents.shape)} of {args.invert}")
                return 0
            back = pipe(batch_size=len(images), latents=latents, num_inference_steps=steps, eta=0.0,
                        clip_sample=False, class_labels=labels, output_type="pt").images.cpu()
            mse = float(((back - images) ** 2).mean())
            grid = to_uint8(torch.cat([images, back]).movedim(1, -1).numpy())
            caption = f"top: {args.invert}; bottom: DDIM-{steps} inversion sampled back, MSE {mse:.2e} per dimension"
        else:
            pipe = _load(SpritesInpaintPipeline, args.pipeline, args.device)
            images = read_images(read_array(args.inpaint, "inpaint"), pipe.unet)
            if len(images) == 1:
                images = images.expand(args.num_images, -1, -1, -1)
            filled = pipe(images, read_array(args.mask, "mask"), num_inference_steps=steps,
                          eta=1.0 if args.eta is None else args.eta, jump_length=args.jump_length,
                          jump_n_sample=args.jump_n_sample, prior=args.prior or "standard", class_labels=labels,
                          generator=torch.Generator().manual_seed(args.seed), output_type="np").images
            if out.suffix.lower() == ".npy":
                save_npy(to_uint8(filled), out)
                print(f"{out}: {len(filled)} completions of {args.inpaint}")
                return 0
            grid = to_uint8(np.concatenate([images[:1].movedim(1, -1).numpy(), filled]))
            caption = (f"{args.inpaint} (first) filled where {args.mask} is 0: RePaint, {steps} steps, jump_length "
                       f"{args.jump_length}, jump_n_sample {args.jump_n_sample}, seed {args.seed}")
    except ValueError as exc:  # bad images, masks, settings or folder: one line
        raise SystemExit(f"error: {exc}") from None
    save_grid(grid, out, None if args.no_caption else caption, len(images) if mode == "invert" else args.ncols)
    print(f"{out}: {caption}")
    return 0
