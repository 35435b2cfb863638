"""Fit DPM-Solver++(2M)'s per-step weights to a model (pipelines/fitted_solver.py; the idea of S4S, Frankel et
al. 2025, with only the multistep weights free).

    python -m training.fit_solver --pipeline pretrained/sprites_ddpm --nfe 5 [--teacher_nfe 50] [--prior moments]
        [--num_x 256] [--num_val 64] [--iters 150] [--batch 32] [--lr 0.02] [--seed 1234] [--threads 1] [--out FILE]

A teacher (DPM-Solver++(2M) with ``--teacher_nfe`` evaluations, unclipped: nearly the model's exact ODE solution) maps
``num-x + num-val`` x_T, drawn from ``--prior`` with a seed no benchmark uses, to x_0. The student is the
``nfe``-step solver from the same x_T; Adam moves its weights to lower the mean squared difference of the two
x_0 on the first ``num-x`` (back-propagating through the student's UNet calls, the UNet itself frozen), starting
from DPM-Solver++(2M)'s own weights, and the held-out ``num-val`` report whether the fit generalises. Default
output: ``solvers/dpmpp_2m_nfe{N}.json`` in the pipeline folder; sample with
``pipe(sampler="dpmpp_2m", nfe=N, fitted="solvers/dpmpp_2m_nfe{N}.json", prior="moments")`` (the prior it
was fitted from, recorded in the file).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from pipelines.fitted_solver import FittedSolver
from pipelines.loading import PipelineFolderError, load_pipeline
from pipelines.samplers import Denoiser, dpmpp_2m, solver_steps
from pipelines.schedule import read_schedule
from sprites.cli import ArgumentParser


def initial_weights(plan) -> list[float]:
    """DPM-Solver++(2M)'s weights c = 1/(2r), r = h_{i-1} / h_i (0 on the first step and on the last)."""
    lam = [-math.log(s.sigma) for s in plan] + [math.inf]
    h = [lam[i + 1] - lam[i] for i in range(len(plan))]
    return [0.0] + [1 / (2 * h[i - 1] / h[i]) if math.isfinite(h[i]) else 0.0 for i in range(1, len(plan))]


def student(denoise: Denoiser, plan, weights: torch.Tensor, x_T: torch.Tensor) -> torch.Tensor:
    """x_0 of the fitted solver from the VP x_T (differentiable in ``weights``)."""
    x = x_T * math.sqrt(1 + plan[0].sigma**2)
    memory: dict = {}
    for step, c in zip(plan, weights, strict=True):
        x = dpmpp_2m(denoise, x, dataclasses.replace(step, coef=c), memory, lambda: None)
    return x


def fit(folder: str, nfe: int, teacher_nfe: int, prior: str, num_x: int, num_val: int, iters: int, batch: int,
        lr: float, seed: int) -> FittedSolver:
    pipe = load_pipeline(folder, "dpmpp_2m")
    unet = pipe.unet.requires_grad_(False)
    if getattr(unet, "class_embedding", None) is not None:
        raise ValueError(f"{folder} holds a class-conditional UNet; fit_solver fits unconditional models only")
    _, alphas_cumprod = read_schedule(pipe.scheduler)
    denoise = Denoiser(lambda x, t: unet(x, t).sample, alphas_cumprod)
    plan = solver_steps(denoise, "dpmpp_2m", nfe, "karras")
    g = torch.Generator().manual_seed(seed)
    shape = (num_x + num_val, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    x_T = pipe.make_prior(prior, 1 / (1 + plan[0].sigma ** 2))(torch.randn(shape, generator=g))
    start = time.perf_counter()
    teacher_plan = solver_steps(denoise, "dpmpp_2m", teacher_nfe, "karras")  # same first sigma as ``plan``
    with torch.no_grad():  # DPM-Solver++(2M) itself (its own weights), unclipped
        target = torch.cat([student(denoise, teacher_plan, torch.tensor(initial_weights(teacher_plan)), x)
                            for x in x_T.split(128)])
    weights = torch.tensor(initial_weights(plan), requires_grad=True)
    opt = torch.optim.Adam([weights], lr=lr)

    def val_mse() -> float:
        with torch.no_grad():
            return float(((student(denoise, plan, weights, x_T[num_x:]) - target[num_x:]) ** 2).mean())

    val0, log = val_mse(), []
    for i in range(iters):
        idx = torch.randperm(num_x, generator=g)[:batch]
        loss = ((student(denoise, plan, weights, x_T[idx]) - target[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % 25 == 0 or i + 1 == iters:
            now = [round(float(w), 5) for w in weights.detach()]
            log.append({"iter": i + 1, "train_mse": float(loss.detach()), "weights": now})
            print(f"iter {i + 1:4d}  train mse {float(loss.detach()):.5f}  weights {log[-1]['weights']}", flush=True)
    info = {"teacher": f"dpmpp_2m, {teacher_nfe} NFE, karras", "prior": prior, "num_x": num_x, "num_val": num_val,
            "iters": iters, "batch": batch, "lr": lr, "seed": seed, "initial_weights": initial_weights(plan),
            "val_mse_dpmpp_2m": val0, "val_mse_fitted": val_mse(), "log": log,
            "seconds": round(time.perf_counter() - start, 1), "pipeline": str(folder)}
    return FittedSolver(nfe=nfe, coefs=[float(w) for w in weights.detach()], prior=prior, fit=info)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", required=True)
    p.add_argument("--nfe", type=int, required=True)
    p.add_argument("--teacher_nfe", type=int, default=50)
    p.add_argument("--prior", default="moments")
    p.add_argument("--num_x", type=int, default=256)
    p.add_argument("--num_val", type=int, default=64)
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="default: PIPELINE/solvers/dpmpp_2m_nfe{N}.json")
    args = p.parse_args(argv)
    if not 2 <= args.nfe < args.teacher_nfe:
        print(f"error: --nfe must be at least 2 and below --teacher_nfe ({args.teacher_nfe})", file=sys.stderr)
        return 2
    for name in ("num_x", "num_val", "iters", "batch", "lr"):
        if not getattr(args, name) > 0:
            print(f"error: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    try:
        solver = fit(args.pipeline, args.nfe, args.teacher_nfe, args.prior, args.num_x, args.num_val, args.iters,
                     args.batch, args.lr, args.seed)
    except (PipelineFolderError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or Path(args.pipeline) / "solvers" / f"dpmpp_2m_nfe{args.nfe}.json")
    try:
        solver.save(out)
    except OSError as e:
        print(f"error: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"held-out mse to the teacher: {solver.fit['val_mse_dpmpp_2m']:.5f} (DPM-Solver++(2M)) -> "
          f"{solver.fit['val_mse_fitted']:.5f} (fitted); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
