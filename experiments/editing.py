"""What DDIM's deterministic map between images and noise makes possible, measured on real sprites: DDIM inversion
(reconstruction error against steps, beside the DDIM paper's Table 2), interpolation through inverted latents,
RePaint inpainting and SDEdit image-to-image.

    python -m experiments.editing [--pipeline pretrained/sprites_ddpm] [--conditional pretrained/sprites_conditional]
        [--out docs/figures/editing] [--overwrite] [--quick]

One torch thread. Sections (the sprites are a seeded choice from the real half A of the pair-aware split,
docs/evaluation.md; the sprite network is the sprite-FID one):

* reconstruction: invert ``--num_images`` sprites with eta = 0 at S = 10, 20, 50, 100 (and 500 on the first
  ``--num_images_500``: that row costs 1,000 UNet calls an image), sample them back with the same S, and give the
  per-dimension MSE on [0, 1] pixels (the DDIM paper's unit) and on the model's [-1, 1]; the inverted latents'
  mean square and their squared Mahalanobis norm per dimension under the moments prior at the first timestep
  (1 for a typical draw of either prior). The fixed-point inversion at S = 50 with K = 1, 2, 3 iterations a step on
  the ``--num_images_500`` first sprites, with its UNet calls.
* interpolation: two pairs of real sprites, 8 frames of slerp between their inverted latents (S = 50, 2
  fixed-point iterations), each sampled back, beside the straight line in pixel space.
* inpainting: the right half or the centre 8 x 8 of ``--num_images`` sprites filled by RePaint (S = 50, eta = 1,
  jump_length 5) with jump_n_sample 1, 2, 4 on the unconditional model and 2 on the conditional one given the
  sprite's label; the share whose predicted class is the original's (the network's class of the original), the
  sprite-FID against real half B (the originals' own FID beside it: the floor at this N), the MSE inside the hole.
* sdedit: DDIM-50 (eta 0) at strengths 0, 0.25, 0.5, 0.75, 1 on the same sprites: MSE to the input and the share
  keeping the predicted class; a figure of two sprites at the 5 strengths by DDIM-50 and DDPM-500 (two seeds).

Outputs in --out (complete or not at all; replaced only with --overwrite): ``results.json``, ``reconstruction.md``,
``fixed_point.md``, ``inpainting.md``, ``sdedit.md``, ``reconstruction.png``, ``interpolation.png``,
``inpainting.png``, ``sdedit.png``. ``--quick``: 8 sprites and 4 at S = 500, for trying the command.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import ROOT, refuse_existing_output, result_envelope, write_json
from evaluation.features import extract_sprite_features, load_sprite_feature_net
from evaluation.output import output_dir
from evaluation.plots import plain_log_ticks, pyplot, save_figure, save_labelled_grids
from evaluation.scoring import fid_kid, predict_classes
from evaluation.splits import halves_by_pairs
from pipelines import SpritesDDIMPipeline, SpritesImg2ImgPipeline, SpritesInpaintPipeline, slerp
from pipelines.atomic import write_text_atomic
from pipelines.inversion import round_trip_mse
from pipelines.schedule import read_schedule, spaced_timesteps
from sprites.data import read_sprites_arrays
from sprites.images import to_uint8

MARKER = "results.json"
STEPS = (10, 20, 50, 100, 500)
PAPER_TABLE_2 = {10: 0.014, 20: 0.0065, 50: 0.0023, 100: 0.0009}  # CIFAR-10, per dimension, pixels in [0, 1]
FIXED_POINT = (1, 2, 3)
INTERPOLATION_FRAMES = 8
REPAINT = {"num_inference_steps": 50, "eta": 1.0, "jump_length": 5}
JUMPS = (1, 2, 4)
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m experiments.editing", description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", default="pretrained/sprites_ddpm", help="the unconditional model folder")
    p.add_argument("--conditional", default="pretrained/sprites_conditional", help="the class-conditional model")
    p.add_argument("--num_images", type=int, default=100)
    p.add_argument("--num_images_500", type=int, default=10, help="sprites of the S = 500 and fixed-point rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "editing")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quick", action="store_true", help="8 sprites (4 at S = 500): a try of the command")
    args = p.parse_args(argv)
    if args.quick:
        args.num_images, args.num_images_500 = 8, 4
    if args.num_images < 2 or not 1 <= args.num_images_500 <= args.num_images:
        p.error("need --num_images >= 2 and 1 <= --num_images_500 <= --num_images")
    return args


def _load(cls, folder: str):
    pipe = cls.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _mahalanobis(latents: torch.Tensor, prior) -> float:
    """Mean over pixels and images of ((x - m_T) C_T^{-1/2})^2 under the moments prior (1 for a typical draw)."""
    flat = latents.flatten(1).double() - prior.mean
    return float((((flat @ prior.vec) / prior.root) ** 2).mean())


def reconstruction(ddim: SpritesDDIMPipeline, images: np.ndarray, n_500: int) -> dict[str, Any]:
    _, alphas_cumprod = read_schedule(ddim.scheduler)
    T = len(alphas_cumprod)
    spacing = ddim.scheduler.config.get("timestep_spacing", "leading")
    rows, fixed = [], []
    for steps in STEPS:
        batch = images[:n_500] if steps == 500 else images
        latents, t_inv = _timed(ddim.invert, batch, steps)
        back, t_back = _timed(ddim, batch_size=len(batch), latents=latents, num_inference_steps=steps, eta=0.0,
                              clip_sample=False, output_type="np")
        first = spaced_timesteps(T, steps, spacing)[0]
        moments = ddim.make_prior("moments", float(alphas_cumprod[first]))
        mse = round_trip_mse(torch.from_numpy(batch), torch.from_numpy(back.images))
        rows.append({"steps": steps, "images": len(batch), "first_timestep": first, "mse_01": mse,
                     "mse_pm1": 4 * mse, "paper_mse_01": PAPER_TABLE_2.get(steps),
                     "latent_mean_square": float((latents.double() ** 2).mean()),
                     "latent_moments_mahalanobis": _mahalanobis(latents, moments), "unet_calls_per_image": 2 * steps,
                     "invert_s": t_inv, "sample_s": t_back})
        if steps == 50:
            plain_50 = round_trip_mse(torch.from_numpy(batch[:n_500]), torch.from_numpy(back.images[:n_500]))
        print(f"reconstruction S={steps}: MSE {mse:.3g} ({len(batch)} sprites, {t_inv + t_back:.0f} s)", flush=True)
    batch = images[:n_500]
    for k in FIXED_POINT:
        latents, t_inv = _timed(ddim.invert, batch, 50, fixed_point_iterations=k)
        back = ddim(batch_size=len(batch), latents=latents, num_inference_steps=50, eta=0.0, clip_sample=False,
                    output_type="np").images
        mse = round_trip_mse(torch.from_numpy(batch), torch.from_numpy(back))
        fixed.append({"steps": 50, "iterations": k, "images": len(batch), "mse_01": mse,
                      "invert_unet_calls": 50 * (1 + k), "invert_s": t_inv})
        print(f"fixed point K={k}: MSE {mse:.3g}", flush=True)
    fixed.insert(0, {"steps": 50, "iterations": 0, "images": len(batch), "mse_01": plain_50, "invert_unet_calls": 50})
    return {"spacing": spacing, "rows": rows, "fixed_point": fixed}


def interpolation(ddim: SpritesDDIMPipeline, pairs: list[tuple[np.ndarray, np.ndarray]], path: Path) -> dict:
    ts = np.linspace(0, 1, INTERPOLATION_FRAMES)
    rows, labels = [], []
    for i, (a, b) in enumerate(pairs):
        latents = ddim.invert(np.stack([a, b]), 50, fixed_point_iterations=2)
        frames = slerp(latents[0], latents[1], ts)
        decoded = ddim(batch_size=len(ts), latents=frames, num_inference_steps=50, eta=0.0, clip_sample=False,
                       output_type="np").images
        pixels = (1 - ts)[:, None, None, None] * a + ts[:, None, None, None] * b
        rows += [to_uint8(decoded), to_uint8(pixels)]
        labels += [f"pair {i + 1}: DDIM slerp", f"pair {i + 1}: pixel lerp"]
    save_labelled_grids([("t = 0 ... 1 (8 frames)", rows)], labels, path,
                        "Interpolation: slerp of DDIM-inverted latents (S = 50) vs pixels")
    return {"frames": INTERPOLATION_FRAMES, "steps": 50, "fixed_point_iterations": 2, "pairs": len(pairs)}


def masks() -> dict[str, np.ndarray]:
    """1 keep, 0 fill."""
    right, centre = np.ones((16, 16), np.float32), np.ones((16, 16), np.float32)
    right[:, 8:] = 0
    centre[4:12, 4:12] = 0
    return {"right half": right, "centre 8x8": centre}


def inpainting(uncond: SpritesInpaintPipeline, cond: SpritesInpaintPipeline | None, images: np.ndarray,
               labels: np.ndarray, real_b_features: np.ndarray, net, path: Path) -> list[dict]:
    original_class, _ = predict_classes(to_uint8(images), net)
    floor = fid_kid(extract_sprite_features(to_uint8(images), net), real_b_features)["sprite_fid"]
    rows, panels = [], []
    for name, mask in masks().items():
        hole = ~mask.astype(bool)
        grey = images.copy()
        grey[:, hole] = 0.5
        settings = [("grey fill (no model)", None, 0, None)] + \
            [(f"unconditional, r = {r}", uncond, r, None) for r in JUMPS] + \
            ([("conditional + label, r = 2", cond, 2, labels.tolist())] if cond is not None else [])
        shown = [to_uint8(images[:10]), to_uint8(grey[:10])]
        for label, pipe, r, class_labels in settings:
            if pipe is None:
                out, seconds, calls = grey, 0.0, 0
            else:
                result, seconds = _timed(pipe, images, mask, jump_n_sample=r, class_labels=class_labels,
                                         generator=torch.Generator().manual_seed(0), output_type="np", **REPAINT)
                out = result.images
                S, L = REPAINT["num_inference_steps"], REPAINT["jump_length"]
                calls = S + (r - 1) * L * len(range(0, S - L, L))
            u8 = to_uint8(out)
            predicted, _ = predict_classes(u8, net)
            rows.append({"mask": name, "setting": label, "jump_n_sample": r, "images": len(images),
                         "class_kept": float((predicted == original_class).mean()),
                         "label_match": float((predicted == labels).mean()),
                         "sprite_fid": fid_kid(extract_sprite_features(u8, net), real_b_features)["sprite_fid"],
                         "originals_sprite_fid": floor, "hole_mse_01": float(((out - images)[:, hole] ** 2).mean()),
                         "unet_calls_per_image": calls, "seconds": seconds})
            if pipe is not None:
                shown.append(u8[:10])
            print(f"inpainting {name}, {label}: class kept {rows[-1]['class_kept']:.2f}, "
                  f"sprite-FID {rows[-1]['sprite_fid']:.2f} ({seconds:.0f} s)", flush=True)
        panels.append((f"mask: {name}", shown))
    row_labels = ["original", "input (hole grey)"] + [s for s, p, _, _ in settings if p is not None]
    save_labelled_grids(panels, row_labels, path, f"RePaint (S = {REPAINT['num_inference_steps']}, eta = 1, "
                        f"jump_length {REPAINT['jump_length']}), first 10 sprites")
    return rows


def sdedit(img2img: SpritesImg2ImgPipeline, images: np.ndarray, net, path: Path) -> dict[str, Any]:
    original_class, _ = predict_classes(to_uint8(images), net)
    rows = []
    for s in STRENGTHS:
        out = img2img(images, strength=s, sampler="ddim", num_inference_steps=50, eta=0.0,
                      generator=torch.Generator().manual_seed(0), output_type="np").images
        predicted, _ = predict_classes(to_uint8(out), net)
        rows.append({"strength": s, "steps_run": round(s * 50), "images": len(images),
                     "mse_to_input_01": float(((out - images) ** 2).mean()),
                     "class_kept": float((predicted == original_class).mean())})
        print(f"sdedit strength {s}: MSE to input {rows[-1]['mse_to_input_01']:.3g}", flush=True)
    two = images[:2]
    rows_by = {"DDIM 50, eta 0": [img2img(two, strength=s, sampler="ddim", num_inference_steps=50,
                                          generator=torch.Generator().manual_seed(0), output_type="np").images
                                  for s in STRENGTHS]}
    for seed in (0, 1):
        rows_by[f"DDPM 500, seed {seed}"] = [img2img(two, strength=s, sampler="ddpm", num_inference_steps=500,
                                                     variance="beta", generator=torch.Generator().manual_seed(seed),
                                                     output_type="np").images for s in STRENGTHS]
    panels = [(f"sprite {i + 1}: strength {', '.join(f'{s:g}' for s in STRENGTHS)}",
               [to_uint8(np.stack([out[i] for out in outs])) for outs in rows_by.values()]) for i in (0, 1)]
    save_labelled_grids(panels, list(rows_by), path, "SDEdit: noise to t = strength x T, then denoise")
    _, alphas_cumprod = read_schedule(img2img.scheduler)
    return {"rows": rows, "sqrt_alpha_bar_T": math.sqrt(float(alphas_cumprod[-1]))}


def reconstruction_figure(rec: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    rows = rec["rows"]
    ax.plot([r["steps"] for r in rows], [r["mse_01"] for r in rows], "o-", label="sprites, shipped model (ours)")
    paper = sorted(PAPER_TABLE_2.items())
    ax.plot([s for s, _ in paper], [v for _, v in paper], "s--", label="DDIM paper, CIFAR-10 (Table 2)")
    fp = [r for r in rec["fixed_point"] if r["iterations"] > 0]
    ax.plot([50] * len(fp), [r["mse_01"] for r in fp], "^", label="S = 50, fixed-point K = 1, 2, 3")
    ax.set(xscale="log", yscale="log", xlabel="steps S", ylabel="per-dimension MSE, pixels in [0, 1]",
           title="DDIM inversion, then sampling back")
    plain_log_ticks(ax.xaxis)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _fmt(v: float) -> str:
    return f"{v:.2e}" if v < 1e-3 else f"{v:.4f}"


def tables(result: dict) -> dict[str, str]:
    rec, out = result["reconstruction"], {}
    lines = ["| S | sprites | first timestep | MSE, [0, 1] | MSE, [-1, 1] | DDIM paper, CIFAR-10, [0, 1] | below the "
             "paper | latents: mean x^2 | latents: moments-prior Mahalanobis^2 / dim | UNet calls / sprite |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rec["rows"]:
        paper = r["paper_mse_01"]
        lines.append(f"| {r['steps']} | {r['images']} | {r['first_timestep']} | {_fmt(r['mse_01'])} | "
                     f"{_fmt(r['mse_pm1'])} | {'' if paper is None else paper} | "
                     f"{'' if paper is None else ('yes' if r['mse_01'] < paper else 'no')} | "
                     f"{r['latent_mean_square']:.3f} | {r['latent_moments_mahalanobis']:.3f} | "
                     f"{r['unet_calls_per_image']} |")
    out["reconstruction.md"] = "\n".join(lines) + "\n"
    lines = ["| S | fixed-point iterations K | sprites | MSE, [0, 1] | inversion UNet calls / sprite |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['steps']} | {r['iterations']} | {r['images']} | {_fmt(r['mse_01'])} | {r['invert_unet_calls']} |"
              for r in rec["fixed_point"]]
    out["fixed_point.md"] = "\n".join(lines) + "\n"
    lines = ["| mask | setting | sprites | class kept | label match | sprite-FID | originals' sprite-FID | hole MSE, "
             "[0, 1] | UNet calls / sprite |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['mask']} | {r['setting']} | {r['images']} | {r['class_kept']:.2f} | {r['label_match']:.2f} | "
              f"{r['sprite_fid']:.2f} | {r['originals_sprite_fid']:.2f} | {r['hole_mse_01']:.4f} | "
              f"{r['unet_calls_per_image']} |" for r in result["inpainting"]]
    out["inpainting.md"] = "\n".join(lines) + "\n"
    lines = ["| strength | DDIM steps run (of 50) | sprites | MSE to the input, [0, 1] | class kept |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['strength']:g} | {r['steps_run']} | {r['images']} | {_fmt(r['mse_to_input_01'])} | "
              f"{r['class_kept']:.2f} |" for r in result["sdedit"]["rows"]]
    out["sdedit.md"] = "\n".join(lines) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    refuse_existing_output(args.out, MARKER, args.overwrite)
    torch.set_num_threads(1)
    real, labels = read_sprites_arrays()
    half_a, half_b = halves_by_pairs(labels, 0)
    chosen = np.sort(np.random.default_rng(args.seed).choice(half_a, args.num_images, replace=False))
    images = real[chosen].astype(np.float32) / 255
    net = load_sprite_feature_net()
    real_b_features = extract_sprite_features(real[half_b], net)
    ddim = _load(SpritesDDIMPipeline, args.pipeline)
    with output_dir(args.out, MARKER, args.overwrite) as tmp:
        result: dict[str, Any] = {**result_envelope("experiments.editing", argv, args.pipeline),
                                  "conditional": args.conditional, "sprites": chosen.tolist(),
                                  "settings": {"repaint": REPAINT, "jumps": JUMPS, "strengths": STRENGTHS}}
        result["reconstruction"] = reconstruction(ddim, images, args.num_images_500)
        reconstruction_figure(result["reconstruction"], tmp / "reconstruction.png")
        by_class = {c: chosen[labels[chosen] == c] for c in range(5)}
        pick = [by_class[c][0] for c in (0, 2, 1, 3) if len(by_class[c])]
        pairs = [(real[a].astype(np.float32) / 255, real[b].astype(np.float32) / 255)
                 for a, b in zip(pick[0::2], pick[1::2], strict=False)]
        result["interpolation"] = interpolation(ddim, pairs, tmp / "interpolation.png")
        cond = _load(SpritesInpaintPipeline, args.conditional) if args.conditional else None
        result["inpainting"] = inpainting(_load(SpritesInpaintPipeline, args.pipeline), cond, images, labels[chosen],
                                          real_b_features, net, tmp / "inpainting.png")
        result["sdedit"] = sdedit(_load(SpritesImg2ImgPipeline, args.pipeline), images, net, tmp / "sdedit.png")
        for name, text in tables(result).items():
            write_text_atomic(tmp / name, text)
        write_json(tmp / MARKER, result)
    print((args.out / "reconstruction.md").read_text())
    print((args.out / "inpainting.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
