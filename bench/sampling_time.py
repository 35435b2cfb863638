"""Sampling time: DDPM (all T steps) against DDIM (25 and 50 steps), ours against diffusers' stock pipelines.

    python -m bench.sampling_time --pipeline runs/tiny/pipeline [--num_images 50] [--repeats 3] [--json out.json]
    python -m bench.sampling_time --random_unet configs/sprites_ddpm.yaml ...   (before a model is trained)

The course's ``%timeit -r 1 sample_ddim(50)`` against ``sample_ddpm(50)``, done fairly on a noisy machine: in one
run, each setting is timed as (1) a bare loop of UNet calls on fixed inputs, the floor any sampler pays, (2) our
pipeline, (3) the stock ``DDPMPipeline`` / ``DDIMPipeline`` on the same model; the three are interleaved and
their order rotates from repeat to repeat; medians are reported. Timing does not depend on the weights, so a
randomly initialised UNet of a config's size gives the same numbers as a trained one.

Targets (thresholds in bench.targets.THRESHOLDS): our pipelines at most 5% over the bare loop, never
slower than stock; DDIM's speed-up over DDPM at least 90% of the step-count ratio (T / DDIM steps).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.common import load_unet, result_envelope, write_json
from bench.targets import THRESHOLDS
from pipelines.atomic import write_text_atomic
from sprites.cli import ArgumentParser

CLOCKS = ("wall", "cpu")


def timing_settings(T: int, ddpm_steps: int | None, ddim_steps: list[int]) -> list[tuple[str, str, int]]:
    """``(name, sampler, steps)`` of DDPM (``ddpm_steps``, default all T) and of DDIM at each of ``ddim_steps``;
    a step count outside 1..T is a one-line SystemExit."""
    ddpm_steps = ddpm_steps or T
    for n in (ddpm_steps, *ddim_steps):
        if not 1 <= n <= T:
            raise SystemExit(f"error: steps must lie in 1..{T}, got {n}")
    return [(f"DDPM {ddpm_steps}", "ddpm", ddpm_steps), *[(f"DDIM {n}", "ddim", n) for n in ddim_steps]]


def make_runners(unet, scheduler, num_images: int, seed: int, variants: dict | None = None,
                 stock: bool = True) -> dict[str, Callable[[str, int], Callable[[], None]]]:
    """For each implementation, a factory (sampler, steps) -> a no-argument callable that samples once.

    ``variants`` ({name: unet-like}) adds our pipelines run with another UNet (e.g. a sped-up one) as "ours NAME";
    ``stock=False`` leaves out diffusers' stock pipelines (the bare loop and ours only: the course's timing).
    """
    from diffusers import DDIMPipeline, DDPMPipeline

    from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline
    from pipelines.schedule import spaced_timesteps

    conditional = unet.config.num_class_embeds is not None
    labels = [i % (unet.config.num_class_embeds - 1) for i in range(num_images)] if conditional else None
    T = scheduler.config.num_train_timesteps
    ours = {"ddpm": SpritesDDPMPipeline(unet=unet, scheduler=scheduler),
            "ddim": SpritesDDIMPipeline(unet=unet, scheduler=scheduler)}
    stock = stock and not conditional  # the stock pipelines cannot pass class labels
    stocks = {"ddpm": DDPMPipeline(unet=unet, scheduler=scheduler),
              "ddim": DDIMPipeline(unet=unet, scheduler=scheduler)} if stock else {}
    others = {name: {"ddpm": SpritesDDPMPipeline(unet=other, scheduler=scheduler),
                     "ddim": SpritesDDIMPipeline(unet=other, scheduler=scheduler)}
              for name, other in (variants or {}).items()}
    for pipe in (*ours.values(), *stocks.values(), *(p for o in others.values() for p in o.values())):
        pipe.set_progress_bar_config(disable=True)
    size = unet.config.sample_size
    x = torch.randn(num_images, unet.config.in_channels, size, size, generator=torch.Generator().manual_seed(seed))
    class_labels = torch.tensor(labels) if conditional else None

    def bare(sampler: str, steps: int) -> Callable[[], None]:
        timesteps = [torch.tensor(t) for t in spaced_timesteps(T, steps)]

        def run() -> None:
            with torch.inference_mode():
                for t in timesteps:
                    unet(x, t, class_labels=class_labels)
        return run

    # configured like the stock pipelines (x_0 clipping, DDPM variance), so both feed the UNet the same x_t
    alike = {"clip_sample": bool(scheduler.config.get("clip_sample", False))}
    if conditional:
        alike["class_labels"] = labels
    variance = "beta" if scheduler.config.get("variance_type") == "fixed_large" else "posterior"

    def ours_run(sampler: str, steps: int, pipes: dict = ours) -> Callable[[], None]:
        extra = {**alike, "variance": variance} if sampler == "ddpm" else alike
        return lambda: pipes[sampler](batch_size=num_images, generator=torch.Generator().manual_seed(seed),
                                      num_inference_steps=steps, output_type="pt", **extra)

    def stock_run(sampler: str, steps: int) -> Callable[[], None]:
        return lambda: stocks[sampler](batch_size=num_images, generator=torch.Generator().manual_seed(seed),
                                      num_inference_steps=steps, output_type="pt")

    runners = {"bare": bare, "ours": ours_run}
    if stock:
        runners["stock"] = stock_run
    for name, pipes in others.items():
        runners[f"ours {name}"] = lambda sampler, steps, pipes=pipes: ours_run(sampler, steps, pipes)
    return runners


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call. CPU time is this process's, all threads."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(runners, settings: list[tuple[str, str, int]], repeats: int) -> dict[str, dict[str, dict[str, list]]]:
    """Interleaved timings, {clock: {setting: {impl: [seconds per repeat]}}}: for each repeat, every setting,
    every implementation (order rotated per repeat)."""
    calls = {name: {impl: make(sampler, steps) for impl, make in runners.items()} for name, sampler, steps in settings}
    for _, sampler, _ in settings:  # warm-up: allocator, first-call code paths
        for make in runners.values():
            make(sampler, 2)()
    times = {clock: {name: {impl: [] for impl in runners} for name, _, _ in settings} for clock in CLOCKS}
    impls = list(runners)
    for r in range(repeats):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        for name, _, _ in settings:
            for impl in order:
                wall, cpu = timed(calls[name][impl])
                times["wall"][name][impl].append(wall)
                times["cpu"][name][impl].append(cpu)
                print(f"  repeat {r + 1}/{repeats} {name:>9} {impl:>5}: wall {wall:7.2f} s, cpu {cpu:7.2f} s",
                      file=sys.stderr, flush=True)
    return times


def sampler_cost(unet, runners, settings, repeats: int) -> dict[str, dict[str, float]]:
    """Per-step cost of each pipeline without the UNet, in ms: ``unet.forward`` is swapped for a stub that returns
    a fixed eps, so only the sampler's own work is timed (best of ``repeats``; low-noise, unlike a difference of
    two end-to-end times)."""
    from diffusers.models.unets.unet_2d import UNet2DOutput

    fixed: dict[tuple, torch.Tensor] = {}  # one eps per input shape, made once

    def stub(sample, timestep, class_labels=None, **kwargs):
        if sample.shape not in fixed:
            fixed[sample.shape] = torch.full(sample.shape, 0.1, dtype=sample.dtype)
        return UNet2DOutput(sample=fixed[sample.shape])

    cost = {}
    unet.forward = stub
    try:
        for name, sampler, steps in settings:
            calls = {impl: make(sampler, steps) for impl, make in runners.items() if impl != "bare"}
            cost[name] = {impl: 1e3 * min(timed(fn)[0] for _ in range(repeats)) / steps for impl, fn in calls.items()}
    finally:
        del unet.forward  # back to the class's forward
    return cost


def summarise(times, settings, ddpm_name: str) -> tuple[list[dict], list[dict]]:
    rows = []
    for name, sampler, steps in settings:
        med = {impl: statistics.median(v) for impl, v in times[name].items()}
        rows.append({"setting": name, "sampler": sampler, "steps": steps, "times_s": times[name], "median_s": med,
                     "ours_over_bare_pct": 100 * (med["ours"] / med["bare"] - 1),
                     "ours_over_stock": med["ours"] / med["stock"] if "stock" in med else None})
    ddpm = next(r for r in rows if r["setting"] == ddpm_name)
    speedups = []
    for row in rows:
        if row["sampler"] != "ddim":
            continue
        ratio = ddpm["steps"] / row["steps"]
        entry = {"ddim": row["setting"], "step_ratio": ratio}
        for impl in row["median_s"]:
            speedup = ddpm["median_s"][impl] / row["median_s"][impl]
            entry[impl] = {"speedup": speedup, "fraction_of_step_ratio": speedup / ratio}
        speedups.append(entry)
    return rows, speedups


def cells(*values: str | None) -> str:
    """A Markdown table row of the values that are not None (a column left out is None)."""
    return "| " + " | ".join(v for v in values if v is not None) + " |"


def markdown(rows, speedups) -> str:
    """The timing table and the speed-up table; the stock columns only when the stock pipelines were timed."""
    stock = any("stock" in r["median_s"] for r in rows)

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = [cells("setting", "bare loop s", "ours s", "stock s" if stock else None, "ours/bare overhead %",
                   "ours/stock ratio" if stock else None),
             "|---|" + "---:|" * (5 if stock else 3)]
    for r in rows:
        m = r["median_s"]
        lines.append(cells(r["setting"], f"{m['bare']:.2f}", f"{m['ours']:.2f}",
                           f(m.get("stock"), ".2f") if stock else None, f"{r['ours_over_bare_pct']:+.1f}",
                           f(r["ours_over_stock"], ".3f") if stock else None))
    lines += ["", cells("DDPM / DDIM speed-up", "step ratio", "ours (fraction of ratio)", "bare loop",
                        "stock" if stock else None), "|---|" + "---:|" * (4 if stock else 3)]
    for s in speedups:
        def cell(impl, s=s):
            if impl not in s:
                return "n/a"
            return f"{s[impl]['speedup']:.2f}x ({100 * s[impl]['fraction_of_step_ratio']:.0f}%)"
        lines.append(cells(f"DDPM {rows[0]['steps']} / {s['ddim']}", f"{s['step_ratio']:.0f}", cell("ours"),
                           cell("bare"), cell("stock") if stock else None))
    return "\n".join(lines)


def cost_table(cost, rows) -> str:
    stock = any("stock" in c for c in cost.values())
    lines = [cells("setting", "UNet call ms/step (bare loop)", "ours ms/step", "stock ms/step" if stock else None,
                   "ours/bare overhead %"), "|---|" + "---:|" * (4 if stock else 3)]
    for r in rows:
        c, unet_ms = cost[r["setting"]], 1e3 * r["median_s"]["bare"] / r["steps"]
        lines.append(cells(r["setting"], f"{unet_ms:.1f}", f"{c['ours']:.3f}",
                           (f"{c['stock']:.3f}" if "stock" in c else "n/a") if stock else None,
                           f"{100 * c['ours'] / unet_ms:.2f}"))
    return "\n".join(lines)


def check_targets(rows, speedups) -> dict[str, bool]:
    """This run's targets, thresholds from bench.targets (the ``timing_*`` targets)."""
    overhead, not_slower = THRESHOLDS["timing_overhead_pct"], THRESHOLDS["timing_ours_over_stock"]
    fraction = THRESHOLDS["timing_speedup_fraction"]
    targets = {f"overhead <= {overhead:g}% ({r['setting']})": r["ours_over_bare_pct"] <= overhead for r in rows}
    targets.update({f"not slower than stock ({r['setting']})": r["ours_over_stock"] <= not_slower
                    for r in rows if r["ours_over_stock"] is not None})
    targets.update({f"speed-up >= {100 * fraction:.0f}% of step ratio ({s['ddim']})":
                    s["ours"]["fraction_of_step_ratio"] >= fraction for s in speedups})
    return targets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pipeline", help="a saved pipeline folder (unet + scheduler)")
    src.add_argument("--random_unet", dest="random_unet", metavar="CONFIG",
                     help="a training config: time a randomly initialised UNet of its size")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ddim_steps", type=int, nargs="+", default=[50, 25])
    p.add_argument("--ddpm_steps", type=int, default=None, help="default: all T steps")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=CLOCKS, default="wall",
                   help="clock for the targets: wall, or this process's CPU time (steadier on a shared machine "
                        "with --threads 1); both are reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_stock", action="store_true",
                   help="time the bare loop and our pipelines only, not diffusers' stock ones (the course's timing)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.num_images < 1 or args.repeats < 1:
        p.error("--num_images and --repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    unet, scheduler, what = load_unet(args.pipeline, args.random_unet, args.seed)
    T = scheduler.config.num_train_timesteps
    settings = timing_settings(T, args.ddpm_steps, args.ddim_steps)
    runners = make_runners(unet, scheduler, args.num_images, args.seed, stock=not args.no_stock)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"{what}: {n_params:,} parameters, {args.num_images} images, {args.repeats} repeat(s), "
          f"{torch.get_num_threads()} torch thread(s)", file=sys.stderr)
    gc.collect()
    gc.freeze()  # the objects of the imports stay put: the collections between timings are then quick
    try:
        times = measure(runners, settings, args.repeats)
        cost = sampler_cost(unet, runners, settings, max(3, args.repeats))
    finally:
        gc.unfreeze()
    results = {clock: summarise(times[clock], settings, settings[0][0]) for clock in CLOCKS}
    tables = {clock: markdown(*results[clock]) for clock in CLOCKS}
    tables["sampler_cost"] = cost_table(cost, results[args.clock][0])
    targets = check_targets(*results[args.clock])
    for clock in sorted(CLOCKS, key=lambda c: c != args.clock):
        print(f"{'Wall-clock' if clock == 'wall' else 'CPU'} time, median of {args.repeats} "
              f"({'targets' if clock == args.clock else 'for reference'}):\n\n{tables[clock]}\n")
    print(f"Sampler cost without the UNet (stub eps; wall, best of {max(3, args.repeats)}) against the UNet calls "
          f"of the bare loop:\n\n{tables['sampler_cost']}\n")
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'MISS'}  {name} [{args.clock}]")
    if args.json:
        result = {
            **result_envelope("bench.sampling_time", argv, args.pipeline),
            "model": what, "parameters": n_params, "num_images": args.num_images, "repeats": args.repeats,
            "clock_for_targets": args.clock, "targets": targets,
            "sampler_cost_ms_per_step": cost, "sampler_cost_table": tables["sampler_cost"],
            **{clock: {"rows": results[clock][0], "speedups": results[clock][1], "table_markdown": tables[clock]}
               for clock in CLOCKS},
        }
        print(f"\nwrote {write_json(args.json, result)}", file=sys.stderr)
        write_text_atomic(Path(args.json).with_suffix(".md"), tables[args.clock] + "\n")  # the docs quote it
    return 0


if __name__ == "__main__":
    sys.exit(main())
