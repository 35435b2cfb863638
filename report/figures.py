"""The report's teaching figures, one command each (each writes a PNG and a JSON of its numbers):

    python -m report.figures schedule --out DIR                       # beta_t, alpha_t, alpha_bar_t of the course
    python -m report.figures forward --out DIR                        # perturb_input on sprites at several t
    python -m report.figures no-noise --pipeline P --out DIR [--n 50] [--grid G]  # with and without sigma_t z
    python -m report.figures why-noise --student_id N --out DIR        # learned scores fail where data are scarce
    python -m report.figures loss --pipeline P --out DIR              # the training loss, named as trained
    python -m report.figures frontier --results R --out DIR           # sprite-FID against NFE, 10 series a panel
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from evaluation.plots import pyplot, save_figure
from pipelines.atomic import write_text_atomic
from sprites.cli import ArgumentParser
from sprites.images import save_grid, tile_images, to_uint8

FORWARD_STEPS = (0, 25, 50, 100, 200, 300, 499)


def schedule(out: Path) -> dict:
    from pipelines.schedule import make_scheduler

    s = make_scheduler()
    beta, alpha, ab = (v.double().numpy() for v in (s.betas, s.alphas, s.alphas_cumprod))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(beta, label="beta_t")
    axes[0].set(xlabel="step t", ylabel="beta_t", title="beta_t: linear from 1e-4 to 0.02")
    for v, name in ((alpha, "alpha_t"), (ab, "alpha_bar_t"), (np.sqrt(ab), "sqrt(alpha_bar_t): the image's share")):
        axes[1].plot(v, label=name)
    axes[1].annotate(f"sqrt(alpha_bar_T) = {np.sqrt(ab[-1]):.3f}", (len(ab) - 1, np.sqrt(ab[-1])), (250, 0.35),
                     arrowprops={"arrowstyle": "->"}, fontsize=8)
    axes[1].set(xlabel="step t", ylabel="value", title="alpha_t and alpha_bar_t")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "schedule.png")
    return {"beta_1": beta[0], "beta_T": beta[-1], "alpha_bar_T": ab[-1], "sqrt_alpha_bar_T": math.sqrt(ab[-1]),
            "T": len(beta)}


def forward(out: Path, n: int = 8) -> dict:
    from pipelines.schedule import make_scheduler, perturb_input
    from sprites.data import images_to_tensor, read_sprites_arrays

    images = images_to_tensor(read_sprites_arrays()[0][::223][:n])
    ab = make_scheduler().alphas_cumprod
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=g)
    rows = [perturb_input(images, torch.full((n,), t), noise, ab) for t in FORWARD_STEPS]
    grid = tile_images(to_uint8(torch.cat(rows).add(1).div(2).permute(0, 2, 3, 1).numpy()), ncols=n, scale=3)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.imshow(grid)
    ax.set_yticks([(i + 0.5) * grid.shape[0] / len(FORWARD_STEPS) for i in range(len(FORWARD_STEPS))])
    ax.set_yticklabels([f"t = {t}" for t in FORWARD_STEPS], fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel(f"{n} sprites x_0, each noised with the same eps at every t")
    fig.tight_layout()
    save_figure(fig, out / "forward.png")
    corr = [float(np.corrcoef(r.flatten(), images.flatten())[0, 1]) for r in rows]
    s0 = float(images.double().std())  # corr(x_t, x_0) = sqrt(ab) s0 / sqrt(ab s0^2 + 1 - ab) for pixels of std s0
    predicted = [float(ab[t].sqrt() * s0 / math.sqrt(float(ab[t]) * s0**2 + 1 - float(ab[t]))) for t in FORWARD_STEPS]
    return {"timesteps": list(FORWARD_STEPS), "correlation_with_x0": corr, "x0_std": s0,
            "predicted_correlation": predicted, "sqrt_alpha_bar": [float(ab[t].sqrt()) for t in FORWARD_STEPS]}


def no_noise(pipeline: str, out: Path, n: int, steps: int | None = None, grid: Path | None = None) -> dict:
    """Algorithm 2 with and without sigma_t z from the same x_T (seed 0); ``grid``: also the ``n`` samples with
    the noise, the pipeline's plain DDPM output, as a grid PNG (no caption)."""
    from evaluation.quality import SpriteScorer
    from pipelines.loading import load_pipeline
    from pipelines.pipeline_sprites_ddpm_no_noise import SpritesDDPMWithoutNoisePipeline

    pipes = {1.0: load_pipeline(pipeline, "ddpm"), 0.0: load_pipeline(pipeline, SpritesDDPMWithoutNoisePipeline)}
    result, panels = {}, []
    for scale, pipe in pipes.items():  # the results' keys: noise_scale_1 (Algorithm 2), noise_scale_0 (z = 0)
        images = pipe(batch_size=n, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                      output_type="np").images
        u8 = to_uint8(images)
        panels.append(u8[:20])
        if grid is not None and scale == 1.0:
            save_grid(u8, grid)
        scores = SpriteScorer().score(u8)
        result[f"noise_scale_{scale:g}"] = {"sprite_fid": scores["sprite_fid"], "precision": scores["precision"],
                                             "recall": scores["recall"], "n": n,
                                             "pixel_std": float(images.reshape(n, -1).std(1).mean()),
                                             "distinct_sprites": int(len(np.unique(u8.reshape(n, -1), axis=0)))}
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(7, 3.6))
    for ax, panel, title in zip(axes, panels, ("with sigma_t z (Algorithm 2)", "without: z = 0 at every step"),
                                strict=True):
        ax.imshow(tile_images(panel, ncols=10, scale=2))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, out / "no_noise.png")
    return result


def why_noise(student_id: int, out: Path, steps: int = 2000) -> dict:
    """Denoising score matching with a small and a large sigma on the course data; the learned score's error
    against the exact score of p, by how likely the point is under p."""
    from score_toy import DSMLoss, GaussianMixture2D, ScoreMLP, course_samples, fit

    mixture = GaussianMixture2D.from_student_id(student_id)
    train, _ = course_samples(student_id)
    data = torch.as_tensor(train, dtype=torch.float32)
    xs = torch.linspace(-12, 12, 121, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    log_p = mixture.log_prob(grid.double()).numpy()
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    result = {}
    for ax, sigma in zip(axes[:2], (0.1, 3.0), strict=True):
        model = ScoreMLP(sigma=sigma, input_scale=float(math.sqrt(data.var(0).mean() + sigma**2)))
        fit(model, DSMLoss(sigma), data, steps=steps, batch_size=512, lr=3e-3,
            generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            learned = model(grid, sigma).double()
        exact = mixture.perturbed(sigma).score(grid.double())
        err = ((learned - exact).norm(dim=1) / exact.norm(dim=1).clamp(min=1e-3)).numpy()
        high, low = log_p >= np.quantile(log_p, 0.9), log_p <= np.quantile(log_p, 0.5)
        result[f"sigma_{sigma:g}"] = {"median_relative_error_dense": float(np.median(err[high])),
                                      "median_relative_error_sparse": float(np.median(err[low]))}
        im = ax.imshow(np.log10(err.reshape(121, 121) + 1e-4), extent=(-12, 12, -12, 12), origin="lower",
                       cmap="magma", vmin=-3, vmax=1)
        ax.contour(xs, xs, log_p.reshape(121, 121), levels=[-8, -5, -3], colors="w", linewidths=0.6)
        ax.set_title(f"log10 relative score error, sigma = {sigma:g}", fontsize=9)
        ax.set(xlabel="x_1", ylabel="x_2")
        axes[2].scatter(log_p[::7], np.log10(err[::7] + 1e-4), s=2, label=f"sigma = {sigma:g}", alpha=0.5)
    fig.colorbar(im, ax=axes[:2], shrink=0.8, label="log10 relative score error")
    axes[2].set(xlabel="log p(x)", ylabel="log10 relative error", title="error against density")
    axes[2].legend(fontsize=8)
    save_figure(fig, out / "why_noise.png")
    return result


def loss(pipeline: str, out: Path) -> dict:
    """The training loss of ``pipeline`` from its training record, its axis named by the loss it trained."""
    import yaml

    from training.train import loss_label, plot_loss

    card = Path(pipeline) / "training"
    cfg = yaml.safe_load((card / "config.yaml").read_text())
    weighting = cfg.get("loss_weighting") or "none"
    label = loss_label(weighting)
    plot_loss(card / "stats.jsonl", out / "loss.png", ylabel=label)
    return {"loss_weighting": weighting, "ylabel": label, "stats": str(card / "stats.jsonl")}


FRONTIER_SERIES = 10  # at most this many series (distinct colours) per panel
LABELLED_NFE = (4, 5, 10, 20, 50, 100, 500)  # the NFE ticks that carry a label (the others would collide on a log axis)


def frontier(results: Path, out: Path) -> dict:
    """sprite-FID against NFE of a sampler_frontier results file: our samplers and diffusers' in separate panels,
    each of at most FRONTIER_SERIES series, so that no colour is used twice in a panel."""
    from evaluation.plots import plain_log_ticks

    info = json.loads(Path(results).read_text())
    rows = info["rows"]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    groups = [[x for x in labels if not x.startswith("stock")], [x for x in labels if x.startswith("stock")]]
    panels = [g[i:i + FRONTIER_SERIES] for g in groups for i in range(0, len(g), FRONTIER_SERIES) if g]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.2), squeeze=False, sharey=True)
    for ax, names in zip(axes[0], panels, strict=True):
        for i, label in enumerate(names):
            rr = sorted((r for r in rows if r["label"] == label), key=lambda r: r["nfe"])
            ax.plot([r["nfe"] for r in rr], [r["scores"]["sprite_fid"] for r in rr], marker="o" if len(rr) > 1 else
                    "*", ms=5 if len(rr) > 1 else 11, ls="-" if len(rr) > 1 else "none", color=f"C{i}",
                    label=label.replace("stock ", "diffusers' "))
        ax.axhline(info["floor"]["sprite_fid"], color="grey", ls=":", label="real against real sprites")
        nfes = sorted({r["nfe"] for r in rows})
        ax.set(xscale="log", yscale="log", xlabel="UNet calls per sample (NFE, log scale)")
        ax.set_xticks(nfes)
        ax.set_xticklabels([str(n) if n in LABELLED_NFE else "" for n in nfes], fontsize=7)
        ax.minorticks_off()
        plain_log_ticks(ax.yaxis)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title("diffusers' schedulers" if names[0].startswith("stock") else "this package's samplers",
                     fontsize=9)
    axes[0][0].set_ylabel("sprite-FID (log scale)")
    fig.tight_layout()
    save_figure(fig, out / "frontier.png")
    return {"results": str(results), "panels": panels}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=["schedule", "forward", "no-noise", "why-noise", "loss", "frontier"])
    p.add_argument("--results", type=Path, default=None, help="frontier: a bench.sampler_frontier results.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pipeline", default="pretrained/sprites_ddpm")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--ddpm_steps", type=int, default=None, help="no-noise: DDPM steps (default all T)")
    p.add_argument("--grid", type=Path, default=None, help="no-noise: also save the samples with the noise here")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--student_id", type=int, default=None,
                   help="why-noise: the student number (default: the placeholder of configs/score_toy.yaml)")
    p.add_argument("--steps", type=int, default=2000, help="why-noise: training steps per score model")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.figure == "schedule":
        result = schedule(args.out)
    elif args.figure == "forward":
        result = forward(args.out)
    elif args.figure == "no-noise":
        result = no_noise(args.pipeline, args.out, args.n, args.ddpm_steps, args.grid)
    elif args.figure == "loss":
        result = loss(args.pipeline, args.out)
    elif args.figure == "frontier":
        if args.results is None:
            p.error("frontier needs --results, a bench.sampler_frontier results.json")
        result = frontier(args.results, args.out)
    else:
        if args.student_id is None:
            from score_toy.config import load_config

            args.student_id = int(load_config()["student_id"])
        result = why_noise(args.student_id, args.out, args.steps)
    name = args.figure.replace("-", "_")
    write_text_atomic(args.out / f"{name}.json", json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
