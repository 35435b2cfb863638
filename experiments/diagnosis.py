"""Why deterministic DDIM lags: the model's epsilon error per timestep, against the best possible.

    python -m experiments.diagnosis eps-mse --pipeline pretrained/sprites_ddpm [--raw RAW_PIPELINE_DIR] [--json PATH]
    python -m experiments.diagnosis gap [--folder docs/figures/diagnosis]   # -> FOLDER/gap_over_training.md

For timesteps across 0..T-1, x_t is drawn from q(x_t | x_0) for every training sprite (fixed noise) and the
model's epsilon-MSE is measured beside the error of the *ideal* denoiser of the training set: for the empirical
distribution of the N sprites, E[eps | x_t] is a softmax-weighted average over them (Tweedie's formula,
docs/theory.md item 2), so its MSE is the floor no network trained on these sprites can beat. The excess
(model - ideal) per timestep shows where the network falls short (JSON, and the same as a Markdown table beside
it); a deterministic sampler follows the network
everywhere, a stochastic one re-noises and forgets part of the early errors.

``gap`` gathers the DDIM-50 tables of the checkpoints (``FOLDER/gap_*/results.json``, each written by
``bench.sampler_frontier --config configs/bench/diagnosis_gap.yaml``) into one table, a row per checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from bench.common import result_envelope
from pipelines.atomic import write_text_atomic

TIMESTEPS = (0, 10, 25, 50, 100, 150, 200, 250, 300, 350, 400, 450, 499)


@torch.inference_mode()
def ideal_eps(x_t: torch.Tensor, data: torch.Tensor, ab: float) -> torch.Tensor:
    """E[eps | x_t] when x_0 is uniform over the rows of ``data`` (N, D): eps = (x_t - sqrt(ab) E[x_0|x_t]) /
    sqrt(1 - ab), with posterior weights softmax(-|x_t - sqrt(ab) x_i|^2 / (2 (1 - ab)))."""
    flat = x_t.flatten(1).double()
    d2 = (flat * flat).sum(1, keepdim=True) - 2 * ab**0.5 * flat @ data.T + ab * (data * data).sum(1)[None]
    weights = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)
    x0 = weights @ data
    return ((flat - ab**0.5 * x0) / (1 - ab) ** 0.5).view_as(x_t)


@torch.inference_mode()
def eps_mse_table(unets: dict[str, torch.nn.Module], images: torch.Tensor, alphas_cumprod: np.ndarray,
                  timesteps=TIMESTEPS, seed: int = 0, batch: int = 600) -> list[dict]:
    """Per timestep: epsilon-MSE of each UNet and of the ideal denoiser, on every image with fixed noise."""
    data = images.flatten(1).double()
    rows = []
    for t in timesteps:
        ab = float(alphas_cumprod[t])
        g = torch.Generator().manual_seed(seed * 1000 + t)
        noise = torch.randn(images.shape, generator=g)
        x_t = ab**0.5 * images + (1 - ab) ** 0.5 * noise
        row = {"t": t, "alpha_bar": ab, "ideal": 0.0, **{k: 0.0 for k in unets}}
        for i in range(0, len(images), batch):
            sl = slice(i, i + batch)
            n = len(images[sl]) / len(images)
            row["ideal"] += n * (ideal_eps(x_t[sl], data, ab).float() - noise[sl]).pow(2).mean().item()
            tt = torch.full((len(images[sl]),), t)
            for name, unet in unets.items():
                row[name] += n * (unet(x_t[sl], tt).sample - noise[sl]).pow(2).mean().item()
        rows.append(row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return rows


GAP_SETTINGS = ("DDIM eta 0, standard", "DDIM eta 0, moments", "DDIM eta 1, standard")


def gap_table(folder: Path) -> str:
    """One row per checkpoint (EMA, then the raw weights where measured): DDIM-50 sprite-FID of each setting and
    the ratio of deterministic to stochastic DDIM from N(0, I)."""
    runs = []
    for path in sorted(folder.glob("gap_*/results.json")):
        r = json.loads(path.read_text())
        fid = {row["label"]: row["scores"]["sprite_fid"] for row in r["rows"] if row["nfe"] == 50}
        if all(k in fid for k in GAP_SETTINGS):
            raw = path.parent.name.endswith("_raw")
            runs.append((r["pipeline"]["training_steps"], raw, fid, r["config"]["num_images"]))
    if not runs:
        raise SystemExit(f"error: no gap_*/results.json with the three DDIM-50 settings in {folder}")
    head = ["training step", "weights", *GAP_SETTINGS, "eta 0 / eta 1 (standard)", "samples"]
    lines = ["| " + " | ".join(head) + " |", "| ---: | --- |" + " ---: |" * (len(head) - 2)]
    for step, raw, fid, n in sorted(runs, key=lambda r: (r[0], r[1])):
        lines.append("| " + " | ".join([f"{step:,}", "raw" if raw else "EMA", *(f"{fid[k]:.3f}" for k in GAP_SETTINGS),
                                        f"{fid[GAP_SETTINGS[0]] / fid[GAP_SETTINGS[2]]:.2f}", str(n)]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["eps-mse", "gap"])
    p.add_argument("--folder", type=Path, default=Path("docs/figures/diagnosis"), help="gap: the gap_* folders")
    p.add_argument("--pipeline", default=None, help="eps-mse: the pipeline folder (required)")
    p.add_argument("--raw", default=None, help="a pipeline folder with the raw (non-EMA) weights, to compare")
    p.add_argument("--json", default="docs/figures/diagnosis/eps_mse.json")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.what == "gap":
        write_text_atomic(args.folder / "gap_over_training.md", gap_table(args.folder))
        print(f"wrote {args.folder / 'gap_over_training.md'}")
        return 0
    if args.pipeline is None:
        p.error("eps-mse needs --pipeline")
    torch.set_num_threads(args.threads)
    from pipelines.loading import load_pipeline
    from pipelines.schedule import read_schedule
    from sprites.data import fit_images, images_to_tensor, read_sprites_arrays

    pipe = load_pipeline(args.pipeline)
    unets = {"model": pipe.unet}
    if args.raw:
        unets["raw weights"] = load_pipeline(args.raw).unet
    images = fit_images(images_to_tensor(read_sprites_arrays()[0]), dict(pipe.unet.config))
    _, ab = read_schedule(pipe.scheduler)
    rows = eps_mse_table(unets, images, ab)
    result = {**result_envelope("experiments.diagnosis", argv, args.pipeline), "raw_pipeline": args.raw,
              "images": len(images), "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    write_text_atomic(Path(args.json).with_suffix(".md"), markdown(rows, list(unets)))
    return 0


def markdown(rows: list[dict], names: list[str]) -> str:
    """The table of :func:`eps_mse_table`: per timestep, each UNet's epsilon-MSE, the ideal's, and the excess."""
    head = ["t", "alpha_bar", "ideal denoiser", *names, *(f"excess, {n}" for n in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for r in rows:
        cells = [str(r["t"]), f"{r['alpha_bar']:.4f}", f"{r['ideal']:.4f}", *(f"{r[n]:.4f}" for n in names),
                 *(f"{r[n] - r['ideal']:+.4f}" for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
