"""docs/theory.md, item 10, measured: what a deterministic and a stochastic sampler do with the error of their
prior at T, on Gaussian data where the exact epsilon is known in closed form.

    python -m experiments.theory_prior [--samples 200000] [--json docs/figures/theory/prior_check.json]

Data N(M, S^2) per pixel (M = 0.6, S = 0.5), the perfect network E[eps | x_t] in closed form, the project's own
``ddim_update`` (eta = 0) and ``ddpm_update`` over all 500 trailing steps of the course's schedule, from N(0, 1)
and from q(x_T) itself; the KL divergence of the samples' Gaussian fit to the data. Writes the JSON and, beside
it, the Markdown table docs/theory.md quotes; tests/test_theory_prior.py checks the same functions.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from pipelines.atomic import write_text_atomic
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_ddpm import ddpm_steps, ddpm_update
from pipelines.schedule import make_scheduler, read_schedule, spaced_timesteps

T, M, S = 500, 0.6, 0.5  # the course's steps; data N(M, S^2) per pixel
BETAS, AB = read_schedule(make_scheduler())


def exact_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    """E[eps | x_t] for data N(M, S^2): the perfect network."""
    a = AB[t]
    return (x - math.sqrt(a) * M) * math.sqrt(1 - a) / (a * S * S + 1 - a)


def kl_gauss(mu: float, var: float, mu0: float, var0: float) -> float:
    """KL(N(mu, var) || N(mu0, var0))."""
    return 0.5 * (var / var0 + (mu - mu0) ** 2 / var0 - 1 + math.log(var0 / var))


def q_T() -> tuple[float, float]:
    """The mean and variance of q(x_T) for the data N(M, S^2)."""
    a = AB[T - 1]
    return math.sqrt(a) * M, a * S * S + 1 - a


def sample(sampler: str, exact_prior: bool, n: int = 200_000, seed: int = 0) -> torch.Tensor:
    """``n`` samples of ``sampler`` ("ddim", eta 0, or "ddpm") over all T steps from N(0, 1) or from q(x_T)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=g, dtype=torch.float64)
    mean_T, var_T = q_T()
    x = mean_T + math.sqrt(var_T) * z if exact_prior else z
    timesteps = spaced_timesteps(T, T, "trailing")
    steps = ddim_steps(AB, timesteps, 0.0) if sampler == "ddim" else ddpm_steps(BETAS, AB, timesteps, "beta")
    update = ddim_update if sampler == "ddim" else ddpm_update
    for step in steps:
        noise = torch.randn(n, generator=g, dtype=torch.float64) if step.sigma > 0 else None
        x = update(x, exact_eps(x, step.t), step, noise)
    return x


def kl_to_data(x: torch.Tensor) -> float:
    """KL of the samples' Gaussian fit to the data N(M, S^2)."""
    return kl_gauss(x.mean().item(), x.var().item(), M, S * S)


def measure(n: int) -> list[dict]:
    """One row per start: the KL at T, then after DDIM-500 (eta 0) and after DDPM-500."""
    rows = []
    for exact, start in ((False, "$N(0, 1)$"), (True, "$q(x_T)$ (the moment prior)")):
        kl_T = 0.0 if exact else kl_gauss(0.0, 1.0, *q_T())
        rows.append({"start": start, "exact_prior": exact, "kl_T": kl_T,
                     "kl_ddim": kl_to_data(sample("ddim", exact, n)), "kl_ddpm": kl_to_data(sample("ddpm", exact, n))})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [r"| start | $\mathrm{KL}$ at $T$ | DDIM-500, $\eta = 0$ | DDPM-500 |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['start']} | {r['kl_T']:.5f} | {r['kl_ddim']:.5f} | {r['kl_ddpm']:.5f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from bench.common import result_envelope, write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--json", default="docs/figures/theory/prior_check.json")
    args = p.parse_args(argv)
    if args.samples < 1000:
        p.error(f"--samples must be at least 1000 for a KL estimate, got {args.samples}")
    rows = measure(args.samples)
    table = markdown(rows)
    out = Path(args.json)
    write_json(out, {**result_envelope("experiments.theory_prior", argv), "data": {"mean": M, "std": S},
                     "samples": args.samples, "steps": T, "spacing": "trailing", "rows": rows})
    write_text_atomic(out.with_suffix(".md"), table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
