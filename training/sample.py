"""Sample sprites from a saved pipeline folder: a captioned grid PNG (or a uint8 .npy array) and, optionally, a GIF
of the denoising.

    python -m training.sample --pipeline pretrained/sprites_ddpm --sampler ddim --steps 50   # writes ./samples.png
    python -m training.sample --pipeline pretrained/sprites_ddpm --preset fast --out fast.png
    python -m training.sample --pipeline DIR [--preset quality|fast] [--sampler NAME] [--nfe N] [--num_images 50]
        [--eta 0] [--prior standard|moments] [--seed 0] [--class_labels hero 0.5,0,0.5,0,0 ...]
        [--guidance_scale 1] [--out grid.png|samples.npy] [--gif denoise.gif]
    python -m training.sample --pipeline DIR --invert IMAGE | --inpaint IMAGE --mask MASK ... (training/sample_edit.py)

Samplers: ddpm (all T steps by default), ddim (50 by default), dpmpp_2m, dpmpp_2m_sde, heun, euler,
euler_ancestral (10 UNet evaluations by default). Presets (configs/sampling_presets.yaml): "quality" is DDPM-500,
"fast" the measured best at no more than 10 UNet evaluations; options given on the command line override them.
Class labels (conditional models only) are ints, names or five comma-separated mix weights, cycled over the
images. Without ``--out`` the grid goes to ``samples.png`` in the current folder, or to ``samples-2.png``,
``samples-3.png``, ... when that exists (never over a file); the path is printed. Files are written atomically.

A thin shell over :func:`pipelines.loading.prepare_sampling` (the settings, the folder, the call), which the
benchmarks use too: this module reads the command line and writes the files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipelines.loading import RUNTIMES, SAMPLERS, load_presets, prepare_sampling
from pipelines.pipeline_sprites_ddpm import VARIANCES
from pipelines.prior import PRIORS
from pipelines.samplers import KARRAS_RANGES, SIGMA_SCHEDULES
from pipelines.schedule import TIMESTEP_SPACINGS
from sprites.images import save_gif, save_grid, save_npy, to_uint8
from training.sample_edit import add_edit_arguments, check_edit_arguments, run_edit

DEFAULT_OUT = "samples.png"  # in the current folder, when --out is not given
GIF_FRAMES = 40  # about this many denoising frames (plus x_T and the result)
OPTIONS = ("eta", "variance", "clip_sample", "timestep_spacing", "sigma_schedule", "karras_range", "churn", "fitted",
           "prior", "guidance_scale")  # the pipeline options of the command line


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


def fresh_path(folder: Path, name: str = DEFAULT_OUT) -> Path:
    """``folder / name``, or the first of ``stem-2.suffix``, ``stem-3.suffix``, ... that does not exist yet."""
    path, stem, suffix = folder / name, Path(name).stem, Path(name).suffix
    n = 2
    while path.exists():
        path, n = folder / f"{stem}-{n}{suffix}", n + 1
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", required=True, help="folder written by save_pretrained (e.g. runs/tiny/pipeline)")
    p.add_argument("--preset", choices=tuple(load_presets()), default=None,
                   help="quality: DDPM-500; fast: the measured best at <= 10 UNet evaluations (docs/sampling.md)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: ddpm (or the preset's)")
    p.add_argument("--nfe", "--steps", dest="nfe", type=int, default=None,
                   help="UNet evaluations (= steps, but Heun's 2 a step); default: all T for ddpm, 50 for ddim, 10 "
                        "for the solvers")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--eta", type=float, default=None, help="DDIM eta (0 deterministic, default); ancestral/SDE "
                   "noise scale of the solvers (1, default)")
    p.add_argument("--variance", choices=VARIANCES, default=None,
                   help="DDPM sigma_t^2 (default: the folder's scheduler config)")
    p.add_argument("--clip_sample", action=argparse.BooleanOptionalAction, default=None,
                   help="DDPM/DDIM: clip the predicted x_0 to [-1, 1] at every step (default: the folder's config)")
    p.add_argument("--timestep_spacing", choices=TIMESTEP_SPACINGS, default=None,
                   help="default: the folder's scheduler config")
    p.add_argument("--sigma_schedule", choices=SIGMA_SCHEDULES, default=None,
                   help="solvers: karras (default) or discrete; learned: the time steps fitted to the model for this "
                        "sampler, NFE and prior (python -m training.fit_steps; also for ddim)")
    p.add_argument("--karras_range", choices=KARRAS_RANGES, default=None,
                   help="solvers on Karras sigmas: full (sigma(T-1) to sigma(0), default) or spaced (between the "
                        "first and last spaced timestep, diffusers' Heun/Euler; better at <= 5 NFE, docs/sampling.md)")
    p.add_argument("--churn", type=float, default=None, help="heun: Karras' S_churn (0: deterministic)")
    p.add_argument("--fitted", default=None, help="dpmpp_2m: a fitted solver's JSON (python -m training.fit_solver; "
                   "relative paths from the pipeline folder)")
    p.add_argument("--prior", choices=PRIORS, default=None,
                   help="x_T from N(0, I) (standard, default) or the data Gaussian at T (pipelines/prior.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class_labels", nargs="+", default=None,
                   help="conditional models: ints, names or 5 comma-separated mix weights, cycled over the images")
    p.add_argument("--guidance_scale", type=float, default=None, help="classifier-free guidance w (1: conditional)")
    p.add_argument("--out", default=None, help="grid PNG to write, or FILE.npy for a uint8 array (N, H, W, 3); "
                   f"default: {DEFAULT_OUT} in the current folder (a fresh name if it exists)")
    p.add_argument("--gif", default=None, help="also write a GIF of the denoising")
    p.add_argument("--ncols", type=int, default=None, help="grid columns (default 10)")
    p.add_argument("--no_caption", action="store_true",
                   help="a grid without the caption line (settings, seed, time) above the sprites")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if torch sees one, else cpu)")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch",
                   help="how the UNet runs (docs/speed.md): torch (default); onnxruntime (CPU, unconditional models, "
                        "1.2-1.3x faster here; pip install -e '.[onnx]'); compile (torch.compile, 1.1x after about a "
                        "minute of compiling)")
    add_edit_arguments(p)
    args = p.parse_args(argv)
    check_edit_arguments(p, args)
    if args.num_images < 1:
        p.error(f"--num_images must be >= 1, got {args.num_images}")
    if args.runtime == "onnxruntime" and args.device not in (None, "cpu"):
        p.error("--runtime onnxruntime runs on the CPU only; drop --device or use --runtime torch")
    if args.device is None:
        from sprites.machine import default_device

        args.device = "cpu" if args.runtime == "onnxruntime" else default_device()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is None:
        args.out = str(fresh_path(Path.cwd()))
    labels = [parse_label(tok) for tok in args.class_labels] if args.class_labels else None
    if args.invert or args.inpaint:
        return run_edit(args, labels)
    try:
        sampling = prepare_sampling(args.pipeline, args.preset, device=args.device, runtime=args.runtime,
                                    sampler=args.sampler, nfe=args.nfe, **{k: getattr(args, k) for k in OPTIONS})
        every = max(1, sampling.nfe // GIF_FRAMES)
        start = time.perf_counter()
        out = sampling(args.num_images, args.seed, labels, return_intermediates=args.gif is not None,
                       intermediate_every=every)
        elapsed = time.perf_counter() - start
    except ValueError as exc:  # bad settings or folder, or a prior the folder has no data for: one line
        raise SystemExit(f"error: {exc}") from None

    caption = f"{sampling.describe()}, seed {args.seed}, {args.num_images} images in {elapsed:.1f} s"
    if args.class_labels:
        caption += f", labels {' '.join(args.class_labels)}, guidance {sampling.options.get('guidance_scale', 1.0):g}"
    caption += f" - {Path(args.pipeline).resolve().parent.name}/{Path(args.pipeline).name}"
    if Path(args.out).suffix.lower() == ".npy":
        save_npy(to_uint8(out.images), args.out)
    else:
        save_grid(to_uint8(out.images), args.out, None if args.no_caption else caption, args.ncols)
    print(f"{args.out}: {caption}")
    if args.gif:
        steps = len(out.intermediates) - 1
        captions = [f"{sampling.sampler} step {min(k * every, sampling.nfe) if k else 0}" for k in range(steps + 1)]
        save_gif(to_uint8(out.intermediates), args.gif, captions, args.ncols)
        print(f"{args.gif}: {len(captions)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
