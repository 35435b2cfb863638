"""ES-DDPM (early-stopped DDPM): sampling time and sprite-FID against the start step T'.

    python -m experiments.es_ddpm --pipeline runs/sprites_ddpm/pipeline --t_prime 50 100 200 300 500 --num_images 200 \
        [--prior ddim gaussian] [--prior_steps 10] [--seed 0] [--threads 2] [--json out.json] [--grids DIR]
    python -m experiments.es_ddpm --random_unet configs/tiny.yaml ...     (a smoke run with an untrained UNet)

For each prior and each T', ``SpritesESDDPMPipeline`` samples ``--num_images`` sprites (one batch, one seed) and
the script records the wall and CPU time and the sprite-FID / sprite-KID (our sprite feature network, not
Inception; see docs/evaluation.md) against half B of the real sprites (``evaluation.splits.halves_by_pairs``,
split seed 0, 894 sprites), scored by ``evaluation.scoring.fid_kid`` as in bench.fid_vs_steps. Reference
rows: the prior alone (T' = 0), plain DDPM from pure noise (all T steps) and the real-vs-real floor
(``evaluation.scoring.real_floor``: N sprites of half A against half B). The Gaussian prior is fitted per pixel to half
A. The default model was trained on all 1,788 sprites, so half B is not unseen by it: compare rows with each
other and with the floor, not with published FIDs. Prints a markdown table; ``--json`` writes every number.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from bench.common import load_unet, result_envelope, write_json
from pipelines.atomic import write_text_atomic
from pipelines.pipeline_sprites_es_ddpm import X0_PRIORS
from sprites.cli import ArgumentParser


def load_model(args: argparse.Namespace):
    """(unet, scheduler, description, model card text) from a pipeline folder or a config's random UNet."""
    unet, scheduler, what = load_unet(args.pipeline, args.random_unet, args.seed)
    readme = Path(args.pipeline) / "README.md" if args.pipeline else None
    return unet, scheduler, what, readme.read_text() if readme is not None and readme.is_file() else ""


class CountingUNet:
    """Counts the UNet's forward calls (wraps ``unet.forward`` for the duration of a ``with`` block)."""

    def __init__(self, unet):
        self.unet, self.calls = unet, 0

    def __enter__(self):
        inner = self.unet.forward

        def forward(*a, **k):
            self.calls += 1
            return inner(*a, **k)

        self.unet.forward = forward
        return self

    def __exit__(self, *exc):
        del self.unet.forward


def run(args: argparse.Namespace) -> dict:
    from evaluation import extract_sprite_features, load_sprite_feature_net
    from evaluation.features import to_uint8_nhwc
    from evaluation.scoring import fid_kid, real_floor
    from evaluation.splits import halves_by_pairs
    from pipelines import SpritesDDPMPipeline, SpritesESDDPMPipeline
    from pipelines.pipeline_sprites_es_ddpm import gaussian_prior_from_images
    from sprites.data import read_sprites_arrays

    unet, scheduler, what, card = load_model(args)
    T = scheduler.config.num_train_timesteps
    for t in args.t_prime:
        if not 1 <= t <= T:
            raise SystemExit(f"error: --t_prime values must lie in 1..{T}, got {t}")
    real, labels = read_sprites_arrays(args.data_path)
    half_a, half_b = halves_by_pairs(labels, args.split_seed)
    mean, std = gaussian_prior_from_images(real[half_a])
    es = SpritesESDDPMPipeline(unet=unet, scheduler=scheduler, prior_mean=mean, prior_std=std)
    ddpm = SpritesDDPMPipeline(unet=unet, scheduler=scheduler)
    for pipe in (es, ddpm):
        pipe.set_progress_bar_config(disable=True)
    net = load_sprite_feature_net()
    real_features = extract_sprite_features(real, net)
    n = args.num_images
    classes = (unet.config.num_class_embeds or 1) - 1  # the last class embedding is the null class
    extra = {"class_labels": [i % classes for i in range(n)]} if unet.config.num_class_embeds is not None else {}
    grids = Path(args.grids) if args.grids else None

    rows = []

    def record(setting: str, prior: str | None, t_prime: int | None, sample) -> None:
        with CountingUNet(unet) as counter:
            wall, cpu = time.perf_counter(), time.process_time()
            images = to_uint8_nhwc(sample(), value_range=(0.0, 1.0))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = {"setting": setting, "prior": prior, "t_prime": t_prime, "unet_calls": counter.calls,
               "wall_s": wall, "cpu_s": cpu, **fid_kid(extract_sprite_features(images, net), real_features[half_b])}
        rows.append(row)
        print(f"  {setting:>28}: {counter.calls:4d} UNet calls, wall {wall:7.1f} s, cpu {cpu:7.1f} s, "
              f"sprite-FID {row['sprite_fid']:.3f}", file=sys.stderr, flush=True)
        if grids is not None:
            from sprites.images import save_grid

            grids.mkdir(parents=True, exist_ok=True)
            name = f"{prior or 'ddpm'}_{'prior' if t_prime == 0 else f't{t_prime}'}.png"
            save_grid(images[:args.grid_images], grids / name,
                      f"{setting}: sprite-FID {row['sprite_fid']:.2f} ({n} images vs half B)")

    def gen():
        return torch.Generator().manual_seed(args.seed)

    rows.append({"setting": "real half A vs half B (floor)", "prior": None, "t_prime": None, "unet_calls": 0,
                 "wall_s": 0.0, "cpu_s": 0.0, **real_floor(real_features, half_a, half_b, n, args.split_seed)})
    for prior in args.prior:
        record(f"{prior} prior alone", prior, 0, lambda prior=prior: es.prior_sample(
            prior, (n, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size), gen(),
            prior_steps=args.prior_steps, class_labels=extra.get("class_labels")).add(1).div(2))
        for t in args.t_prime:
            record(f"ES-DDPM {prior} T'={t}", prior, t, lambda prior=prior, t=t: es(
                batch_size=n, t_prime=t, prior=prior, prior_steps=args.prior_steps, generator=gen(),
                output_type="pt", **extra).images)
    if not args.no_ddpm:
        record(f"DDPM {T} from noise", None, T, lambda: ddpm(batch_size=n, generator=gen(), output_type="pt",
                                                          **extra).images)
    return {"model": what, "model_card": card, "num_train_timesteps": T, "num_images": n, "num_reference": len(half_b),
            "prior_steps": args.prior_steps, "rows": rows}


def markdown(result: dict) -> str:
    lines = ["| setting | T' | UNet calls | wall s | CPU s | sprite-FID | sprite-KID |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        t = "" if r["t_prime"] is None else r["t_prime"]
        lines.append(f"| {r['setting']} | {t} | {r['unet_calls']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['sprite_fid']:.3f} | {r['sprite_kid']:.4f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pipeline", help="a saved pipeline folder (unet + scheduler)")
    src.add_argument("--random_unet", dest="random_unet", metavar="CONFIG", help="a config: untrained UNet (smoke)")
    p.add_argument("--t_prime", dest="t_prime", type=int, nargs="+", default=[50, 100, 200, 300, 500])
    p.add_argument("--prior", nargs="+", choices=X0_PRIORS, default=list(X0_PRIORS))
    p.add_argument("--prior_steps", dest="prior_steps", type=int, default=10, help="DDIM steps of the ddim prior")
    p.add_argument("--num_images", dest="num_images", type=int, default=200)
    p.add_argument("--no_ddpm", dest="no_ddpm", action="store_true", help="skip the full-DDPM reference row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split_seed", dest="split_seed", type=int, default=0)
    p.add_argument("--data_path", dest="data_path", default=None)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--grids", default=None, help="write a PNG grid of each setting's first images here")
    p.add_argument("--grid_images", dest="grid_images", type=int, default=20)
    args = p.parse_args(argv)
    if args.num_images < 2:
        p.error("--num_images must be >= 2 (sprite-FID fits a covariance)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    table = markdown(result)
    print(table)
    if args.json:
        result = {**result_envelope("experiments.es_ddpm", argv, args.pipeline), **result, "table_markdown": table}
        print(f"wrote {write_json(args.json, result)}", file=sys.stderr)
        write_text_atomic(Path(args.json).with_suffix(".md"), table + "\n")  # the table the docs quote
    return 0


if __name__ == "__main__":
    sys.exit(main())
