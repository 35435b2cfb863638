"""Learn the time steps of the fast solvers for a model (pipelines/learned_steps.py; the idea of LD3, Tong et al.,
ICLR 2025, "Learning to Discretize Denoising Diffusion ODEs").

    python -m training.fit_steps --nfe 4 5 6 8 10 [--solver dpmpp_2m ...] [--pipeline DIR] [--prior moments]
        [--config configs/fit_steps.yaml] [--threads 1] [--out DIR]
    python -m training.fit_steps --pipeline DIR --summary FILE.md    # a table of the folder's schedules, no fit

Every setting is in ``configs/fit_steps.yaml``. A teacher (``teacher``: DPM-Solver++(2M) with 50 UNet evaluations,
deterministic) maps ``num_fit`` fitting x_T and ``num_val`` held-out x_T, drawn from ``prior`` with seeds no
benchmark uses, to x_0. For each solver and NFE, the student is that solver with a learned schedule
(``steps`` logits, monotone by construction, started at the ``start`` schedule) from the same x_T; Adam moves the
logits to lower the pixel-space distance (``loss``: l2, the mean squared error, or l1, the mean absolute error, of
x_0 in [-1, 1]) to the teacher on batches of the fitting x_T, back-propagating through the student's UNet calls
(the UNet frozen). LD3's soft teacher forcing: the student starts from x_T + delta, each delta kept inside a ball
of radius ``ball_radius`` * sqrt(pixels) around the teacher's x_T and moved along its own gradient, so a handful
of parameters need not match every sample exactly. The held-out x_T (delta = 0) give the distance before and
after. DDIM with eta = 0 is Euler's step in the sigma variables, so DDIM's schedule is fitted through that rule
(from DDIM's trailing timesteps). The stochastic ``dpmpp_2m_sde`` is fitted with fixed noise: one z per fitting
x_T and step, drawn once, against the same deterministic teacher.

Each schedule goes to ``schedules/{solver}_nfe{N}_{prior}.json`` in the pipeline folder (``--out``: another
folder), with the model's hash, the teacher, the seeds and the loss before and after; sample with
``pipe(sampler=..., nfe=N, sigma_schedule="learned", prior=...)`` or ``python -m training.sample ...
--sigma_schedule learned``.
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
import yaml

from pipelines.atomic import write_text_atomic
from pipelines.common import check_number
from pipelines.learned_steps import (
    FOLDER,
    LEARNABLE,
    LearnedSchedule,
    logits_from_sigmas,
    schedule_file,
    sigmas_from_logits,
    unet_sha256_16,
)
from pipelines.loading import PipelineFolderError, load_pipeline
from pipelines.samplers import RULES, Denoiser, solver_steps, steps_for_nfe, steps_from_sigmas, unet_calls
from pipelines.schedule import read_schedule, spaced_timesteps
from pipelines.shipped import config_file

CONFIG = config_file("fit_steps.yaml")
LOSSES = ("l2", "mse", "l1")


def load_settings(path: str | Path = CONFIG, **overrides: Any) -> dict[str, Any]:
    """The settings of ``path`` with ``overrides`` (those not None), checked; one clear error for a bad one."""
    s = yaml.safe_load(Path(path).read_text())
    s.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("num_fit", "num_val", "iters", "batch", "threads"):
        check_number(f"{path}: {key}", s.get(key), 1, integer=True)
    for key in ("lr", "ball_step"):
        check_number(f"{path}: {key}", s.get(key), above=0)
    check_number(f"{path}: ball_radius", s.get("ball_radius"), 0, text="a finite number >= 0 (0: plain teacher "
                 "forcing)")
    if s.get("loss") not in LOSSES:
        raise ValueError(f"{path}: loss must be one of {', '.join(LOSSES)}, got {s.get('loss')!r}")
    wrong = [v for v in s["solvers"] if v not in LEARNABLE]
    if wrong:
        raise ValueError(f"--solver: learned schedules exist for {', '.join(LEARNABLE)}, not {wrong[0]!r}")
    missing = [v for v in s["solvers"] if v not in s.get("start", {})]
    if missing:
        raise ValueError(f"{path}: start has no schedule for {missing[0]}")
    if any(isinstance(n, bool) or not isinstance(n, int) or not 2 <= n < s["teacher"]["nfe"] for n in s["nfe"]):
        raise ValueError(f"--nfe: each must be an integer from 2 to below the teacher's {s['teacher']['nfe']}, got "
                         f"{s['nfe']}")
    return s


def rule_of(solver: str):
    """The update rule the fit runs: the solver's own; DDIM with eta = 0 is Euler's step in sigma."""
    return RULES["euler" if solver == "ddim" else solver]


def run(denoise: Denoiser, rule, plan, x_T: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """x_0 of the solver ``rule`` over ``plan`` from the VP ``x_T`` (``noise``: one z per step, for the SDE);
    differentiable in the plan's sigmas when they are tensors."""
    x = x_T * torch.sqrt(1 + torch.as_tensor(plan[0].sigma, dtype=torch.float64) ** 2).to(x_T.dtype)
    memory: dict = {}
    draws = iter(noise) if noise is not None else iter(())
    for step in plan:
        x = rule(denoise, x, step, memory, lambda: next(draws))
    return x


def start_sigmas(denoise: Denoiser, solver: str, steps: int, start: dict[str, Any], spacing: str) -> np.ndarray:
    """The schedule a fit starts from (``start``: sigma_schedule and karras_range), ``steps`` sigmas then 0."""
    schedule, rng = start.get("sigma_schedule", "karras"), start.get("karras_range", "full")
    timesteps = spaced_timesteps(len(denoise.sigmas), steps, spacing)
    plan = solver_steps(denoise, "euler" if solver == "ddim" else solver, steps, schedule, timesteps,
                        karras_range=rng)
    return np.array([p.sigma for p in plan] + [0.0])


def distance(a: torch.Tensor, b: torch.Tensor, loss: str) -> torch.Tensor:
    """The mean over samples of the Euclidean distance per pixel, ||a - b||_2 / sqrt(pixels) (l2: one sample's
    miss counts in proportion to its size, not its square), of the mean squared difference (mse), or of the mean
    absolute difference (l1)."""
    d = (a - b).flatten(1)
    if loss == "l2":
        return d.square().mean(1).sqrt().mean()
    return d.square().mean() if loss == "mse" else d.abs().mean()


class Fitter:
    """One model, one prior: the fitting and held-out x_T, their teacher x_0, and a fit per solver and NFE."""

    def __init__(self, folder: str | Path, settings: dict[str, Any]):
        self.folder, self.s = str(folder), settings
        pipe = load_pipeline(folder, "dpmpp_2m")
        self.unet = pipe.unet.requires_grad_(False)
        if getattr(self.unet, "class_embedding", None) is not None:
            raise ValueError(f"{folder} holds a class-conditional UNet; fit_steps fits unconditional models only")
        _, alphas_cumprod = read_schedule(pipe.scheduler)
        self.denoise = Denoiser(lambda x, t: self.unet(x, t).sample, alphas_cumprod)
        self.sigma_max, self.sigma_min = float(self.denoise.sigmas[-1]), float(self.denoise.sigmas[0])
        size = self.unet.config.sample_size
        self.shape = (self.unet.config.in_channels, size, size)
        prior = pipe.make_prior(settings["prior"], 1 / (1 + self.sigma_max**2))
        seed = int(settings["seed"])
        self.x_fit = prior(torch.randn(settings["num_fit"], *self.shape, generator=torch.Generator().manual_seed(seed)))
        self.x_val = prior(torch.randn(settings["num_val"], *self.shape,
                                       generator=torch.Generator().manual_seed(seed + 1)))
        t = settings["teacher"]
        teacher_plan = solver_steps(self.denoise, t["sampler"], steps_for_nfe(t["sampler"], t["nfe"]),
                                    t.get("sigma_schedule", "karras"))
        with torch.no_grad():
            self.y_fit, self.y_val = (torch.cat([run(self.denoise, RULES[t["sampler"]], teacher_plan, x)
                                                 for x in xs.split(64)]) for xs in (self.x_fit, self.x_val))
        self.teacher = {**t, "x0": "unclipped"}

    def noise(self, steps: int, n: int, seed: int) -> torch.Tensor:
        """Fixed z for the SDE: (steps, n, C, H, W) from ``seed``."""
        return torch.randn(steps, n, *self.shape, generator=torch.Generator().manual_seed(seed))

    def evaluate(self, solver: str, sigmas: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                 noise: torch.Tensor | None) -> dict[str, float]:
        """The loss and the mean squared error of the student to the teacher on (x, y), without a gradient."""
        plan = steps_from_sigmas(self.denoise, sigmas.detach())
        with torch.no_grad():
            out = torch.cat([run(self.denoise, rule_of(solver), plan, xb, None if noise is None else noise[:, i:i + 64])
                             for i, xb in zip(range(0, len(x), 64), x.split(64), strict=True)])
        return {"loss": float(distance(out, y, self.s["loss"])), "mse": float(distance(out, y, "mse")),
                "rms": float(distance(out, y, "l2"))}

    def fit(self, solver: str, nfe: int, bar=None) -> LearnedSchedule:
        """The learned schedule of ``solver`` at ``nfe`` UNet evaluations (at most; Heun: its odd count)."""
        s, steps = self.s, steps_for_nfe("euler" if solver == "ddim" else solver, nfe)
        start = start_sigmas(self.denoise, solver, steps, s["start"][solver], s["timestep_spacing"])
        logits = torch.tensor(logits_from_sigmas(start, self.sigma_min), dtype=torch.float64, requires_grad=True)
        sde = solver == "dpmpp_2m_sde"
        seed = int(s["seed"])
        noise_fit = self.noise(steps, s["num_fit"], seed + 2) if sde else None
        noise_val = self.noise(steps, s["num_val"], seed + 3) if sde else None

        def sigmas() -> torch.Tensor:
            return sigmas_from_logits(logits, self.sigma_max, self.sigma_min)

        before = {"fit": self.evaluate(solver, sigmas(), self.x_fit, self.y_fit, noise_fit),
                  "held_out": self.evaluate(solver, sigmas(), self.x_val, self.y_val, noise_val)}
        opt = torch.optim.Adam([logits], lr=s["lr"])
        decay = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.1 + 0.45 * (1 + math.cos(math.pi * i / max(s["iters"], 1))))
        radius = s["ball_radius"] * math.sqrt(math.prod(self.shape))
        delta = torch.zeros_like(self.x_fit)
        g = torch.Generator().manual_seed(seed + 4)
        log, begin = [], time.perf_counter()
        for i in range(s["iters"]):
            idx = torch.randperm(s["num_fit"], generator=g)[:s["batch"]]
            x_in = (self.x_fit[idx] + delta[idx]).requires_grad_(radius > 0)
            out = run(self.denoise, rule_of(solver), steps_from_sigmas(self.denoise, sigmas()), x_in,
                      None if noise_fit is None else noise_fit[:, idx])
            loss = distance(out, self.y_fit[idx], s["loss"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            decay.step()
            if radius > 0:  # soft teacher forcing: each x_T moves along its own normalised gradient, inside its ball
                grad = x_in.grad.flatten(1)
                step = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12) * (s["ball_step"] * radius)
                moved = delta[idx].flatten(1) - step
                moved = moved * (radius / moved.norm(dim=1, keepdim=True).clamp_min(radius))
                delta[idx] = moved.view(-1, *self.shape)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{solver} {nfe} NFE, {s['loss']} {float(loss.detach()):.4f}")
            if (i + 1) % 10 == 0 or i + 1 == s["iters"]:
                log.append({"iter": i + 1, "batch_loss": float(loss.detach()),
                            "sigmas": [round(float(v), 5) for v in sigmas().detach()[:-1]]})
        after = {"fit": self.evaluate(solver, sigmas(), self.x_fit, self.y_fit, noise_fit),
                 "held_out": self.evaluate(solver, sigmas(), self.x_val, self.y_val, noise_val)}
        info = {"model": {"path": self.folder, "unet_sha256_16": unet_sha256_16(self.folder)},
                "teacher": self.teacher, "start": {**s["start"][solver], "timestep_spacing": s["timestep_spacing"],
                                                   "sigmas": [float(v) for v in start]},
                "rule": "euler (DDIM with eta = 0 in sigma)" if solver == "ddim" else solver,
                "noise": "fixed: one z per fitting x_T and step (seed + 2); held-out z from seed + 3" if sde else None,
                "loss": s["loss"], "space": "x_0 in [-1, 1], unclipped, per pixel",
                "seeds": {"fit_x_T": seed, "held_out_x_T": seed + 1, "batches": seed + 4},
                "num_fit": s["num_fit"], "num_val": s["num_val"], "iters": s["iters"], "batch": s["batch"],
                "lr": s["lr"], "ball_radius": s["ball_radius"], "ball_step": s["ball_step"],
                "before": before, "after": after, "log": log, "seconds": round(time.perf_counter() - begin, 1)}
        return LearnedSchedule(solver=solver, nfe=unet_calls(solver, steps), prior=s["prior"],
                               logits=[float(a) for a in logits.detach()], sigma_max=self.sigma_max,
                               sigma_min=self.sigma_min, fit=info)


def jobs(solvers: list[str], nfes: list[int]) -> list[tuple[str, int]]:
    """(solver, NFE) pairs with distinct step counts (Heun's 5 and 6 are both 3 steps: one fit)."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for solver in solvers:
        for n in nfes:
            steps = steps_for_nfe("euler" if solver == "ddim" else solver, n)
            out.setdefault((solver, steps), (solver, n))
    return list(out.values())


def summary(folder: str | Path) -> str:
    """A Markdown table of the learned schedules in ``folder``: held-out distance to the teacher before and after
    the fit, and the sigmas."""
    lines = ["| solver | NFE | prior | loss | held-out MSE to the teacher: start | learned | ratio | fit s | "
             "learned sigmas (then 0) |", "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    found = []
    for path in sorted((Path(folder) / FOLDER).glob("*.json")):
        learned = LearnedSchedule.load(path)
        found.append((LEARNABLE.index(learned.solver), learned.prior, learned.nfe, learned))
    for _, _, _, learned in sorted(found, key=lambda r: r[:3]):
        f = learned.fit
        b, a = f["before"]["held_out"]["mse"], f["after"]["held_out"]["mse"]
        sig = ", ".join(f"{v:.3g}" for v in learned.sigmas()[:-1])
        lines.append(f"| {learned.solver} | {learned.nfe} | {learned.prior} | {f['loss']} | {b:.4f} | {a:.4f} | "
                     f"{a / b:.2f} | {f['seconds']:.0f} | {sig} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(CONFIG))
    p.add_argument("--pipeline", default=None, help="default: the config's")
    p.add_argument("--solver", nargs="+", default=None, choices=LEARNABLE, help="default: the config's solvers")
    p.add_argument("--nfe", nargs="+", type=int, default=None, help="default: the config's")
    p.add_argument("--prior", default=None, help="default: the config's")
    p.add_argument("--ball_radius", type=float, default=None,
                   help="LD3's soft teacher forcing radius, RMS per pixel (0: plain teacher forcing); "
                        "default: the config's")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help=f"folder for {FOLDER}/*.json (default: the pipeline folder)")
    p.add_argument("--summary", default=None, help="write a Markdown table of the folder's schedules; fit nothing")
    args = p.parse_args(argv)
    try:
        s = load_settings(args.config, pipeline=args.pipeline, solvers=args.solver, nfe=args.nfe, prior=args.prior,
                          threads=args.threads, ball_radius=args.ball_radius)
        if args.summary:
            write_text_atomic(args.summary, summary(args.out or s["pipeline"]))
            print(f"wrote {args.summary}")
            return 0
        torch.set_num_threads(s["threads"])
        from diffusers.utils.logging import disable_progress_bar
        from tqdm.auto import tqdm

        disable_progress_bar()  # diffusers' loading bar; the fit has its own

        todo = jobs(s["solvers"], s["nfe"])
        start = time.perf_counter()
        fitter = Fitter(s["pipeline"], s)
        print(f"teacher ({s['teacher']['sampler']}, {s['teacher']['nfe']} NFE) on {s['num_fit']} + {s['num_val']} "
              f"x_T from the {s['prior']} prior: {time.perf_counter() - start:.0f} s", flush=True)
        with tqdm(total=len(todo) * s["iters"], desc="fit_steps", unit="it") as bar:
            for solver, nfe in todo:
                learned = fitter.fit(solver, nfe, bar)
                out = Path(args.out or s["pipeline"]) / schedule_file(solver, learned.nfe, learned.prior)
                learned.save(out)
                b, a = learned.fit["before"]["held_out"]["mse"], learned.fit["after"]["held_out"]["mse"]
                bar.write(f"{solver} {learned.nfe} NFE: held-out MSE to the teacher {b:.4f} -> {a:.4f}; wrote {out}")
    except (PipelineFolderError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
