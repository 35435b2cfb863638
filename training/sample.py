"""Sample sprites from a saved pipeline folder: a captioned grid PNG (or a uint8 .npy array) and, optionally, a GIF
of the denoising.

    python -m training.sample --pipeline pretrained/sprites_ddpm --preset fast --out fast.png
    python -m training.sample --pipeline DIR [--preset quality|fast] [--sampler NAME] [--nfe N] [--num_images 50]
        [--eta 0] [--prior standard|moments] [--seed 0] [--class_labels hero 0.5,0,0.5,0,0 ...]
        [--guidance_scale 1] --out grid.png|samples.npy [--gif denoise.gif]

Samplers: ddpm (all T steps by default), ddim (50 by default), dpmpp_2m, dpmpp_2m_sde, heun, euler,
euler_ancestral (10 UNet evaluations by default). Presets (configs/sampling_presets.yaml): "quality" is DDPM-500,
"fast" the measured best at no more than 10 UNet evaluations; options given on the command line override them.
Class labels (conditional models only) are ints, names or five comma-separated mix weights, cycled over the
images. Files are written atomically.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.common import config_variance
from pipelines.loading import SAMPLERS, sampler_arguments
from pipelines.prior import PRIORS
from sprites.images import save_gif, save_grid, save_npy, to_uint8

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "sampling_presets.yaml"
GIF_FRAMES = 40  # about this many denoising frames (plus x_T and the result)


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
    """:func:`pipelines.loading.load_pipeline` with its error as a one-line SystemExit for the command line."""
    from pipelines.loading import PipelineFolderError
    from pipelines.loading import load_pipeline as load

    try:
        return load(folder, sampler, device)
    except PipelineFolderError as exc:
        raise SystemExit(f"error: {exc}") from None


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
    p.add_argument("--variance", choices=("beta", "posterior"), default=None,
                   help="DDPM sigma_t^2 (default: the folder's scheduler config)")
    p.add_argument("--clip_sample", action=argparse.BooleanOptionalAction, default=None,
                   help="DDPM/DDIM: clip the predicted x_0 to [-1, 1] at every step (default: the folder's config)")
    p.add_argument("--timestep_spacing", choices=("leading", "trailing", "linspace"), default=None,
                   help="default: the folder's scheduler config")
    p.add_argument("--sigma_schedule", choices=("karras", "discrete", "learned"), default=None,
                   help="solvers: karras (default) or discrete; learned: the time steps fitted to the model for this "
                        "sampler, NFE and prior (python -m training.fit_steps; also for ddim)")
    p.add_argument("--karras_range", choices=("full", "spaced"), default=None,
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
    p.add_argument("--out", required=True, help="grid PNG to write, or FILE.npy for a uint8 array (N, H, W, 3)")
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
    if args.runtime == "onnxruntime" and args.device != "cpu":
        p.error("--runtime onnxruntime runs on the CPU only; drop --device or use --runtime torch")
    return args


def load_presets() -> dict[str, dict[str, Any]]:
    """The presets of configs/sampling_presets.yaml."""
    return yaml.safe_load(PRESETS.read_text())


def sampler_settings(args: argparse.Namespace) -> tuple[str, int | None, dict[str, Any]]:
    """(sampler, nfe, pipeline options): the preset's, overridden by what the command line gives."""
    settings = dict(load_presets()[args.preset]) if args.preset else {}
    for key in ("sampler", "nfe", "eta", "variance", "clip_sample", "timestep_spacing", "sigma_schedule",
                "karras_range", "churn", "fitted", "prior", "guidance_scale"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    sampler, nfe = settings.pop("sampler", "ddpm"), settings.pop("nfe", None)
    allowed = {"ddpm": {"variance", "clip_sample", "timestep_spacing"}, "ddim": {"eta", "clip_sample",
               "timestep_spacing", "sigma_schedule"}}.get(sampler, {"eta", "sigma_schedule", "karras_range",
                                                                    "timestep_spacing", "churn", "fitted"})
    wrong = sorted(k for k in settings if k not in allowed | {"prior", "guidance_scale"})
    if wrong:
        raise SystemExit(f"error: --{wrong[0]} does not apply to --sampler {sampler}")
    return sampler, nfe, settings


def apply_runtime(pipe, runtime: str):
    """The pipeline with its UNet run by ``runtime`` ("torch", "onnxruntime" or "compile"), pipelines.unet_runtime."""
    if runtime == "torch":
        return pipe
    from pipelines.unet_runtime import OnnxUNet, prepare_unet

    if runtime == "compile":
        prepare_unet(pipe.unet, compile=True)
        return pipe
    try:
        fast = type(pipe)(unet=OnnxUNet(pipe.unet), scheduler=pipe.scheduler)
    except ImportError:
        raise SystemExit("error: --runtime onnxruntime needs onnx and onnxruntime: pip install -e '.[onnx]'") from None
    except ValueError as exc:
        raise SystemExit(f"error: --runtime onnxruntime: {exc}") from None
    fast.register_to_config(_name_or_path=pipe.config._name_or_path)
    fast.set_progress_bar_config(disable=True)
    return fast


def describe(sampler: str, nfe: int, settings: dict[str, Any], pipe) -> str:
    """A caption: the sampler, its settings and the prior."""
    if sampler == "ddpm":
        what = f"DDPM (sigma^2={config_variance(pipe.scheduler, settings.get('variance'))})"
    elif sampler == "ddim":
        learned = settings.get("sigma_schedule") == "learned"
        what = f"DDIM eta={settings.get('eta', 0.0):g}" + (", learned steps" if learned else "")
    else:
        what = f"{sampler} ({settings.get('sigma_schedule', 'karras')} sigmas)"
    what += f", {nfe} steps" if sampler in ("ddpm", "ddim") else f", {nfe} UNet evaluations"
    return what + (f", {settings['prior']} prior" if settings.get("prior", "standard") != "standard" else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sampler, nfe, settings = sampler_settings(args)
    pipe = apply_runtime(load_pipeline(args.pipeline, sampler, args.device), args.runtime)

    import torch

    n = args.num_images
    T = pipe.scheduler.config.num_train_timesteps
    nfe = nfe if nfe is not None else {"ddpm": T, "ddim": 50}.get(sampler, 10)
    kwargs = sampler_arguments(sampler, nfe, **settings)
    if args.class_labels:
        labels = [parse_label(tok) for tok in args.class_labels]
        kwargs["class_labels"] = [labels[i % len(labels)] for i in range(n)]
    every = max(1, nfe // GIF_FRAMES)
    try:
        start = time.perf_counter()
        out = pipe(batch_size=n, generator=torch.Generator(device="cpu").manual_seed(args.seed), output_type="np",
                   return_intermediates=args.gif is not None, intermediate_every=every, **kwargs)
        elapsed = time.perf_counter() - start
    except ValueError as exc:  # bad settings, or a prior the folder has no data for
        raise SystemExit(f"error: {exc}") from None

    caption = f"{describe(sampler, nfe, settings, pipe)}, seed {args.seed}, {n} images in {elapsed:.1f} s"
    if args.class_labels:
        caption += f", labels {' '.join(args.class_labels)}, guidance {settings.get('guidance_scale', 1.0):g}"
    caption += f" - {Path(args.pipeline).resolve().parent.name}/{Path(args.pipeline).name}"
    if Path(args.out).suffix.lower() == ".npy":
        save_npy(to_uint8(out.images), args.out)
    else:
        save_grid(to_uint8(out.images), args.out, caption, args.ncols)
    print(f"{args.out}: {caption}")
    if args.gif:
        steps = len(out.intermediates) - 1
        captions = [f"{sampler} step {min(k * every, nfe) if k else 0}" for k in range(steps + 1)]
        save_gif(to_uint8(out.intermediates), args.gif, captions, args.ncols)
        print(f"{args.gif}: {len(captions)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
