"""Speed on a CPU: sampling and training against the machine's arithmetic limit.

    python -m experiments.speed --pipeline pretrained/sprites_ddpm --threads 1 --json outputs/bench/speed.json
    python -m experiments.speed --quick ...            (a smoke test: tiny random UNet, a few steps, seconds)

With ``--json X.json`` each table (on the clock of ``--clock``) is also written as Markdown in the folder ``X/``
beside it (``machine.md``, ``sampling.md``, ``training.md``, ``options.md``, ``compile.md``, ``cost.md``,
``targets.md``), which the docs quote (``python -m report.doc_tables``).

In one run, on one model and one set of inputs:

1. Sampling of ``--num_images`` images, DDPM (all T steps) and DDIM (25 and 50 steps), for a bare loop of UNet
   calls, diffusers' stock ``DDPMPipeline`` / ``DDIMPipeline`` and ours; the timing code is
   :mod:`bench.sampling_time`'s (interleaved implementations, rotated order, medians). ``--ddpm_steps n`` times
   n < T DDPM steps and scales the time by T / n (each DDPM step costs the same: one UNet call on the same
   batch); the table says so.
2. The FLOP floor: the UNet's forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``) over the float32
   matrix-multiply rate of this machine (best of several square matmuls, same threads); each row's time is
   given as a share of its floor (floor time / measured time).
3. Training images/s: our step (``training.train``'s ``make_batch``, ``forward_loss``, ``optimizer_step``:
   the code ``train.py`` runs, with accelerate, gradient clipping, LR schedule and EMA) against a minimal
   hand-written PyTorch loop (forward, MSE, backward, AdamW) on the same model, weights and batch size.
4. Speed options, each timed against the plain bare loop on the same inputs: ``torch.no_grad`` instead of
   ``torch.inference_mode``, channels-last memory layout, other UNet batch sizes (per image), two threads, the
   UNet exported to ONNX and run by onnxruntime (when installed: ``pip install -e ".[onnx]"``; also timed in our
   pipelines as "ours onnxruntime", export time apart), and (``--compile``) ``torch.compile``, its compile time
   reported apart.

The study's targets are checked on the clock of ``--clock`` (CPU time of this process by default: steadier
on a shared machine with ``--threads 1``); both clocks are reported.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from bench import sampling_time as st  # the timing helpers: one place
from bench.common import load_unet, result_envelope, write_json
from pipelines.atomic import write_text_atomic
from pipelines.labels import NUM_CLASSES
from sprites.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
CLOCKS = st.CLOCKS


# ---------------------------------------------------------------------------------------------- the floor


def matmul_rate(n: int = 768, repeats: int = 7) -> dict[str, float]:
    """float32 GFLOP/s of an n x n matmul, best of ``repeats``, per clock (this process's threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = {clock: float("inf") for clock in CLOCKS}
    for _ in range(repeats):
        wall, cpu = st.timed(lambda: a @ b)
        best["wall"], best["cpu"] = min(best["wall"], wall), min(best["cpu"], cpu)
    return {clock: 2 * n**3 / max(best[clock], 1e-9) / 1e9 for clock in CLOCKS}


def count_flops(fn: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def unet_flops(unet, batch: int, train: bool = False) -> int:
    """FLOPs of one UNet forward on ``batch`` images (forward + backward with ``train``)."""
    size, channels = unet.config.sample_size, unet.config.in_channels
    x, t = torch.randn(batch, channels, size, size), torch.randint(0, 500, (batch,))
    labels = torch.zeros(batch, dtype=torch.long) if unet.config.num_class_embeds else None
    if not train:
        def fwd() -> None:
            with torch.inference_mode():
                unet(x, t, class_labels=labels)
        return count_flops(fwd)
    model = copy.deepcopy(unet).train()

    def fwd_bwd() -> None:
        model(x, t, class_labels=labels).sample.square().mean().backward()
    return count_flops(fwd_bwd)


# ----------------------------------------------------------------------------------------------- options


def unet_loop(unet, x: torch.Tensor, timesteps: list[int], grad_mode: str = "inference_mode",
              labels: torch.Tensor | None = None) -> Callable[[], None]:
    """A bare loop of UNet calls on fixed inputs (``sampling_time``'s, with the grad mode as a knob)."""
    ts = [torch.tensor(t) for t in timesteps]
    context = torch.inference_mode if grad_mode == "inference_mode" else torch.no_grad

    def run() -> None:
        with context():
            for t in ts:
                unet(x, t, class_labels=labels)
    return run


def option_runners(unet, num_images: int, steps: int, seed: int, threads: int,
                   onnx_unet=None) -> dict[str, tuple[Callable, int]]:
    """{option: (callable, images per call)}; every callable makes ``steps`` UNet calls."""
    from pipelines.unet_runtime import prepare_unet

    size, channels = unet.config.sample_size, unet.config.in_channels
    g = torch.Generator().manual_seed(seed)
    timesteps = list(range(0, 500, max(1, 500 // steps)))[:steps]
    labels = (lambda n: torch.zeros(n, dtype=torch.long)) if unet.config.num_class_embeds else (lambda n: None)

    def x_of(n: int) -> torch.Tensor:
        return torch.randn(n, channels, size, size, generator=g)

    x = x_of(num_images)
    channels_last = prepare_unet(copy.deepcopy(unet), channels_last=True)
    runners = {
        "plain (inference_mode)": (unet_loop(unet, x, timesteps, labels=labels(num_images)), num_images),
        "torch.no_grad": (unet_loop(unet, x, timesteps, "no_grad", labels(num_images)), num_images),
        "channels_last": (unet_loop(channels_last, x.contiguous(memory_format=torch.channels_last), timesteps,
                                    labels=labels(num_images)), num_images),
    }
    if onnx_unet is not None:
        runners["onnxruntime"] = (unet_loop(onnx_unet, x, timesteps, labels=labels(num_images)), num_images)
    for b in sorted({max(1, num_images // 2), 2 * num_images}):
        runners[f"UNet batch {b}"] = (unet_loop(unet, x_of(b), timesteps, labels=labels(b)), b)
    if threads == 1 and (os.cpu_count() or 1) > 1:
        plain = runners["plain (inference_mode)"][0]

        def two_threads() -> None:
            torch.set_num_threads(2)
            try:
                plain()
            finally:
                torch.set_num_threads(1)
        runners["2 threads"] = (two_threads, num_images)
    return runners


def measure_options(runners: dict[str, tuple[Callable, int]], repeats: int) -> dict[str, dict[str, list[float]]]:
    """{clock: {option: [seconds per image (of all the calls of a runner) per repeat]}}, interleaved, order
    rotated per repeat."""
    for fn, _ in runners.values():
        fn()  # warm-up
    names = list(runners)
    times = {clock: {name: [] for name in names} for clock in CLOCKS}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, n = runners[name]
            wall, cpu = st.timed(fn)
            times["wall"][name].append(wall / n)
            times["cpu"][name].append(cpu / n)
            print(f"  option repeat {r + 1}/{repeats} {name:>24}: wall {wall:6.2f} s, cpu {cpu:6.2f} s",
                  file=sys.stderr, flush=True)
    return times


def measure_compile(unet, num_images: int, steps: int, repeats: int, cold: bool = True) -> dict:
    """torch.compile of the UNet: compile time (first call) apart, then ``steps`` calls against the plain UNet.

    ``cold``: inductor's on-disk caches start empty (a fresh ``TORCHINDUCTOR_CACHE_DIR``), as in a new
    environment; a warm cache (a second process on the same machine) compiles in seconds instead.
    """
    import tempfile

    from pipelines.unet_runtime import prepare_unet

    if cold:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="spritediff-inductor-")

    size, channels = unet.config.sample_size, unet.config.in_channels
    x = torch.randn(num_images, channels, size, size, generator=torch.Generator().manual_seed(1))
    timesteps = list(range(0, 500, max(1, 500 // steps)))[:steps]
    compiled = prepare_unet(copy.deepcopy(unet), compile=True)
    wall, cpu = st.timed(unet_loop(compiled, x, timesteps[:1]))
    print(f"  torch.compile: first call (compile) wall {wall:.1f} s, cpu {cpu:.1f} s", file=sys.stderr, flush=True)
    runners = {"plain (inference_mode)": (unet_loop(unet, x, timesteps), num_images),
               "torch.compile": (unet_loop(compiled, x, timesteps), num_images)}
    with torch.inference_mode():
        ref = unet(x, torch.tensor(timesteps[0])).sample
        diff = (compiled(x, torch.tensor(timesteps[0])).sample - ref).abs().max().item()
    return {"compile_s": {"wall": wall, "cpu": cpu}, "cache": "cold" if cold else "warm", "steps": steps,
            "max_abs_diff": diff,
            "times": measure_options(runners, repeats)}


def make_onnx(unet, mode: str) -> tuple[object | None, dict]:
    """(``OnnxUNet`` or None, {"note", "export_s"}): the UNet run by onnxruntime, when it can be."""
    if mode == "off":
        return None, {"note": "off (--onnx off)", "export_s": None}
    if unet.config.num_class_embeds is not None:
        return None, {"note": "not timed: conditional UNet", "export_s": None}
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None, {"note": "not timed: onnxruntime is not installed (pip install -e '.[onnx]')", "export_s": None}
    from pipelines.unet_runtime import OnnxUNet

    holder = {}
    wall, cpu = st.timed(lambda: holder.setdefault("unet", OnnxUNet(unet)))
    return holder["unet"], {"note": f"export + session {wall:.1f} s wall", "export_s": {"wall": wall, "cpu": cpu}}


# ---------------------------------------------------------------------------------------------- training


def training_runners(unet, cfg, batch_size: int, steps: int, seed: int) -> dict[str, Callable[[], None]]:
    """{"ours": ``steps`` steps of train.py's step, "hand-written": ``steps`` steps of a minimal loop}, both
    from the same weights, on random images of the sprites' shape (timing does not depend on the pixels)."""
    import torch.nn.functional as F
    from accelerate import Accelerator

    from pipelines.schedule import make_scheduler
    from training.loss import DiffusionLoss
    from training.train import forward_loss, make_batch, make_optimization, optimizer_step

    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1788, 3, 16, 16, generator=g) * 2 - 1
    labels = torch.randint(0, NUM_CLASSES, (1788,), generator=g)
    cfg = copy.copy(cfg)
    cfg.train_batch_size = batch_size
    accelerator = Accelerator(cpu=True)
    scheduler = make_scheduler(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)
    loss_fn = DiffusionLoss(scheduler.alphas_cumprod)

    ours_unet = copy.deepcopy(unet).train()
    optimizer, lr_scheduler, ema = make_optimization(cfg, ours_unet)
    ours_unet, optimizer = accelerator.prepare(ours_unet, optimizer)
    state = {"step": 0}
    own_rows = slice(0, batch_size)  # one process: the whole batch

    def ours() -> None:
        for _ in range(steps):
            _, batch = make_batch(cfg, state["step"], images, labels, own_rows, accelerator.device)
            loss = forward_loss(accelerator, ours_unet, loss_fn, batch)
            optimizer_step(accelerator, ours_unet, optimizer, lr_scheduler, ema, loss, cfg.max_grad_norm)
            accelerator.reduce(loss.detach(), reduction="mean").item()
            state["step"] += 1

    hand_unet = copy.deepcopy(unet).train()
    hand_opt = torch.optim.AdamW(hand_unet.parameters(), lr=cfg.learning_rate)
    x0 = images[:batch_size].clone()
    y = labels[:batch_size] if cfg.conditional else None
    sqrt_ab, sqrt_1mab = scheduler.alphas_cumprod.sqrt(), (1 - scheduler.alphas_cumprod).sqrt()

    def hand_written() -> None:
        for _ in range(steps):
            t = torch.randint(0, cfg.num_train_timesteps, (batch_size,))
            noise = torch.randn_like(x0)
            xt = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * noise
            loss = F.mse_loss(hand_unet(xt, t, class_labels=y).sample, noise)
            hand_opt.zero_grad(set_to_none=True)
            loss.backward()
            hand_opt.step()
            loss.item()

    return {"ours": ours, "hand-written": hand_written}


def measure_training(runners: dict[str, Callable[[], None]], repeats: int) -> dict[str, dict[str, list[float]]]:
    """{clock: {impl: [seconds per repeat]}}, interleaved, warm-up first."""
    for fn in runners.values():
        fn()
    times = {clock: {name: [] for name in runners} for clock in CLOCKS}
    names = list(runners)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            wall, cpu = st.timed(runners[name])
            times["wall"][name].append(wall)
            times["cpu"][name].append(cpu)
            print(f"  training repeat {r + 1}/{repeats} {name:>12}: wall {wall:6.2f} s, cpu {cpu:6.2f} s",
                  file=sys.stderr, flush=True)
    return times


# ------------------------------------------------------------------------------------------------ tables


def sampling_rows(times, settings, T: int, flops_per_step: float, rate: float) -> list[dict]:
    """One row per setting: median seconds (scaled to all T steps for a shortened DDPM), floor and shares."""
    rows = []
    for name, sampler, steps in settings:
        scale = T / steps if sampler == "ddpm" else 1.0
        full_steps = T if sampler == "ddpm" else steps
        med = {impl: scale * statistics.median(v) for impl, v in times[name].items()}
        floor_s = full_steps * flops_per_step / (rate * 1e9)
        ours = [impl for impl in med if impl.startswith("ours")]
        rows.append({"setting": f"DDPM {T}" if sampler == "ddpm" else name, "sampler": sampler,
                     "steps": full_steps, "steps_timed": steps, "scale": scale, "median_s": med,
                     "floor_s": floor_s, "share_of_floor": {impl: floor_s / s for impl, s in med.items()},
                     "speedup_over_stock": {impl: med["stock"] / med[impl] for impl in ours} if "stock" in med
                     else None})
    return rows


def sampling_table(rows, clock: str) -> str:
    impls = ["bare", "stock", *(i for i in rows[0]["median_s"] if i.startswith("ours"))]
    names = {"bare": "bare UNet loop", "stock": "stock diffusers"}
    ours = impls[2:]
    lines = [f"| setting ({clock} s) | {' | '.join(names.get(i, i) for i in impls)} | "
             f"{' | '.join(f'{i} / stock speed-up' for i in ours)} | FLOP floor | "
             f"share of floor: {' / '.join(impls)} |", "|---|" + "---:|" * (2 * len(impls) - 2 + 2)]
    for r in rows:
        m, sh, up = r["median_s"], r["share_of_floor"], r["speedup_over_stock"] or {}
        name = r["setting"] + (f" (timed {r['steps_timed']} steps, x{r['scale']:g})" if r["scale"] != 1 else "")
        times = " | ".join(f"{m[i]:.2f}" if i in m else "n/a" for i in impls)
        speedups = " | ".join(f"{up[i]:.2f}x" if i in up else "n/a" for i in ours)
        shares = " / ".join(f"{100 * sh[i]:.0f}%" if i in sh else "n/a" for i in impls)
        lines.append(f"| {name} | {times} | {speedups} | {r['floor_s']:.2f} | {shares} |")
    return "\n".join(lines)


def training_summary(times, batch_size: int, steps: int, flops_per_step: float, rate: float) -> dict:
    floor_s = flops_per_step / (rate * 1e9)
    out = {}
    for impl, v in times.items():
        per_step = statistics.median(v) / steps
        out[impl] = {"images_per_s": batch_size / per_step, "s_per_step": per_step,
                     "share_of_floor": floor_s / per_step}
    out["ratio"] = out["ours"]["images_per_s"] / out["hand-written"]["images_per_s"]
    out["floor_s_per_step"] = floor_s
    return out


def training_table(summary, clock: str, batch_size: int) -> str:
    lines = [f"| training, batch {batch_size} ({clock}) | images/s | s/step | share of floor |",
             "|---|---:|---:|---:|"]
    for impl in ("hand-written", "ours"):
        s = summary[impl]
        lines.append(f"| {impl} | {s['images_per_s']:.1f} | {s['s_per_step']:.3f} | {100 * s['share_of_floor']:.0f}% |")
    lines.append(f"| ours / hand-written | {summary['ratio']:.3f}x | | |")
    return "\n".join(lines)


def options_summary(times: dict[str, list[float]], steps: int, base: str = "plain (inference_mode)") -> dict:
    """{option: {"ms_per_image_step", "speedup"}} from seconds per image of ``steps`` UNet calls."""
    med = {name: statistics.median(v) for name, v in times.items()}
    return {name: {"ms_per_image_step": 1e3 * m / steps, "speedup": med[base] / m} for name, m in med.items()}


def options_table(summary: dict[str, dict], steps: int, clock: str) -> str:
    lines = [f"| option ({clock}; {steps} UNet calls) | ms per image per step | speed-up over plain |",
             "|---|---:|---:|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['ms_per_image_step']:.3f} | {s['speedup']:.3f}x |")
    return "\n".join(lines)


def cost_table(cost: dict[str, dict[str, float]]) -> str:
    """The pipelines' own work per step without the UNet (``sampling_time.sampler_cost``: a stub eps)."""
    lines = ["| setting | ours ms/step without the UNet | stock ms/step without the UNet |", "|---|---:|---:|"]
    for name, c in cost.items():
        stock = f"{c['stock']:.3f}" if "stock" in c else "n/a"
        lines.append(f"| {name} | {c['ours']:.3f} | {stock} |")
    return "\n".join(lines)


def machine_table(what: str, n_params: int, flops: dict[str, float], rate: dict[str, float], threads: int,
                  load_average: float, onnx_export: dict) -> str:
    """The model, its FLOPs, the matmul rate the floor uses and the machine's load, as one table row."""
    export = f"{onnx_export['export_s']['wall']:.1f}" if onnx_export["export_s"] else "n/a"
    return "\n".join([
        "| model | parameters | UNet forward, MFLOP per image | training step, MFLOP per image (forward + backward) "
        "| float32 matmul, GFLOP/s (cpu / wall) | torch threads | load average at the end | onnxruntime export + "
        "session, s wall |", "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| {what} | {n_params:,} | {flops['unet_forward_per_image'] / 1e6:.1f} | "
        f"{flops['train_step_per_image'] / 1e6:.1f} | {rate['cpu']:.1f} / {rate['wall']:.1f} | {threads} | "
        f"{load_average:.2f} | {export} |"])


def compile_table(compiled: dict) -> str:
    """torch.compile's one-time cost (both clocks) and its largest difference from the plain UNet."""
    c = compiled["compile_s"]
    return "\n".join(["| torch.compile | compile time, s (cpu) | compile time, s (wall) | inductor cache | "
                      "max abs difference from plain |", "|---|---:|---:|---|---:|",
                      f"| first call | {c['cpu']:.1f} | {c['wall']:.1f} | {compiled['cache']} | "
                      f"{compiled['max_abs_diff']:.1e} |"])


def targets_table(targets: dict[str, bool], clock: str) -> str:
    lines = [f"| target ({clock} time) | met |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {'yes' if ok else 'no'} |" for name, ok in targets.items()])


def write_tables(json_path: str | Path, tables: dict[str, str]) -> Path:
    """Each table as Markdown in the folder beside the JSON (docs/speed.json -> docs/speed/NAME.md), for the docs
    to quote; a table this run did not make (no ``--compile``) is not left from an earlier run."""
    folder = Path(json_path).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("machine", "sampling", "training", "options", "compile", "cost", "targets"):
        if name in tables:
            write_text_atomic(folder / f"{name}.md", tables[name].strip() + "\n")
        else:
            (folder / f"{name}.md").unlink(missing_ok=True)
    return folder


def check_targets(rows, train, ddpm_name: str) -> dict[str, bool]:
    """This run's targets: at least 1.5x stock's speed and 70% of the FLOP floor, never slower than stock, and a
    training step at 0.95x a hand-written loop's images/s or better."""
    over_stock, floor_share, not_slower, train_ratio = 1.5, 0.70, 1.0, 0.95
    targets = {}
    for r in rows:
        for impl in (i for i in r["median_s"] if i.startswith("ours")):
            if r["speedup_over_stock"] is not None:
                targets[f"{impl} >= {over_stock}x stock ({r['setting']})"] = r["speedup_over_stock"][impl] >= over_stock
            targets[f"{impl} >= {100 * floor_share:.0f}% of FLOP floor ({r['setting']})"] = \
                r["share_of_floor"][impl] >= floor_share
        if r["speedup_over_stock"] is not None:
            targets[f"default (ours) not slower than stock ({r['setting']})"] = \
                r["speedup_over_stock"]["ours"] >= not_slower
    targets[f"training >= {train_ratio}x hand-written loop"] = train["ratio"] >= train_ratio
    return targets


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--pipeline", default=str(ROOT / "pretrained" / "sprites_ddpm"), help="a saved pipeline folder")
    p.add_argument("--random_unet", dest="random_unet", metavar="CONFIG", default=None,
                   help="time a randomly initialised UNet of this config's size instead")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: the tiny config's random UNet, 4 images, a few steps, 1 repeat, batch 8")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ddpm_steps", type=int, default=None, help="DDPM steps to time (default: all T); scaled to T")
    p.add_argument("--ddim_steps", type=int, nargs="+", default=[25, 50])
    p.add_argument("--option_steps", type=int, default=20, help="UNet calls per timing of an option")
    p.add_argument("--train_batch", type=int, default=128)
    p.add_argument("--train_steps", type=int, default=3, help="training steps per timing")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (compile time reported apart)")
    p.add_argument("--compile_cache", choices=("cold", "warm"), default="cold",
                   help="cold: inductor's disk caches start empty (default); warm: reuse them")
    p.add_argument("--onnx", choices=("auto", "off"), default="auto",
                   help="auto: time onnxruntime when it is installed and the UNet is unconditional")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--clock", choices=CLOCKS, default="cpu", help="clock for the targets; both are reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.random_unet = args.random_unet or str(ROOT / "configs" / "tiny.yaml")
        args.num_images, args.repeats, args.ddpm_steps, args.ddim_steps = 4, 1, 4, [2, 3]
        args.option_steps, args.train_batch, args.train_steps = 2, 8, 1
    if min(args.num_images, args.repeats, args.option_steps, args.train_batch, args.train_steps) < 1:
        p.error("--num_images, --repeats, --option_steps, --train_batch and --train_steps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return run(args, argv)
    finally:
        torch.set_num_threads(threads_before)


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    from training.config import load_config

    unet, scheduler, what = load_unet(None if args.random_unet else args.pipeline, args.random_unet, args.seed)
    cfg = load_config(args.random_unet or ROOT / "configs" / "sprites_ddpm.yaml")
    cfg.unet = dict(unet.config)  # the training part trains this very UNet (weights copied)
    T = scheduler.config.num_train_timesteps
    settings = st.timing_settings(T, args.ddpm_steps, args.ddim_steps)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"{what}: {n_params:,} parameters, {args.num_images} images, {args.repeats} repeat(s), "
          f"{torch.get_num_threads()} torch thread(s)", file=sys.stderr)

    fwd_flops = unet_flops(unet, args.num_images)
    train_flops = unet_flops(unet, args.train_batch, train=True)
    rate_before = matmul_rate()
    onnx_unet, onnx_export = make_onnx(unet, args.onnx)
    variants = {"onnxruntime": onnx_unet} if onnx_unet is not None else None
    runners = st.make_runners(unet, scheduler, args.num_images, args.seed, variants)
    gc.collect()
    gc.freeze()
    try:
        times = st.measure(runners, settings, args.repeats)
        options = measure_options(option_runners(unet, args.num_images, args.option_steps, args.seed, args.threads,
                                                 onnx_unet), args.repeats)
        train_times = measure_training(training_runners(unet, cfg, args.train_batch, args.train_steps, args.seed),
                                       args.repeats)
        compiled = measure_compile(unet, args.num_images, args.option_steps, args.repeats,
                                   args.compile_cache == "cold") if args.compile else None
        base = {impl: make for impl, make in runners.items() if impl in ("ours", "stock")}
        cost = st.sampler_cost(unet, base, settings, max(3, args.repeats))
    finally:
        gc.unfreeze()
    rate_after = matmul_rate()
    rate = {clock: max(rate_before[clock], rate_after[clock]) for clock in CLOCKS}

    results, tables, named = {}, {}, {}
    for clock in CLOCKS:
        rows = sampling_rows(times[clock], settings, T, fwd_flops, rate[clock])
        train = training_summary(train_times[clock], args.train_batch, args.train_steps, train_flops, rate[clock])
        opts = options_summary(options[clock], args.option_steps)
        comp = options_summary(compiled["times"][clock], args.option_steps) if compiled else None
        results[clock] = {"sampling": rows, "training": train, "options": opts, "compile": comp}
        parts = [sampling_table(rows, clock), training_table(train, clock, args.train_batch),
                 options_table(opts, args.option_steps, clock)]
        if comp:
            parts.append(options_table(comp, args.option_steps, clock) +
                         f"\n\ntorch.compile: compile time {compiled['compile_s'][clock]:.1f} s ({clock}, "
                         f"{compiled['cache']} cache), max |diff| {compiled['max_abs_diff']:.2e}")
        parts.append(cost_table(cost))
        tables[clock] = "\n\n".join(parts)
        if clock == args.clock:
            named = {"sampling": parts[0], "training": parts[1], "options": parts[2], "cost": parts[-1],
                     **({"compile": options_table(comp, args.option_steps, clock) + "\n\n" + compile_table(compiled)}
                        if comp else {})}
    load_average = os.getloadavg()[0]
    head = (f"{what}: {n_params:,} parameters; UNet forward {fwd_flops / args.num_images / 1e6:.1f} MFLOP per image, "
            f"training step {train_flops / args.train_batch / 1e6:.1f} MFLOP per image (forward + backward); "
            f"float32 matmul {rate['cpu']:.1f} GFLOP/s (CPU time), {rate['wall']:.1f} GFLOP/s (wall), "
            f"{torch.get_num_threads()} thread(s); load average {load_average:.2f}; ONNX: {onnx_export['note']}")
    targets = check_targets(results[args.clock]["sampling"], results[args.clock]["training"], settings[0][0])
    if any("stock" in c for c in cost.values()):
        targets["default (ours): own per-step cost <= stock's (stub UNet, all settings)"] = \
            all(c["ours"] <= c["stock"] for c in cost.values())
    table_markdown = f"{head}\n\n{tables[args.clock]}"
    print(f"{table_markdown}\n\nFor reference, the other clock:\n\n{tables[next(c for c in CLOCKS if c != args.clock)]}"
          "\n")
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'MISS'}  {name} [{args.clock}]")
    if args.json:
        result = {
            **result_envelope("experiments.speed", argv, None if args.random_unet else args.pipeline),
            "model": what, "parameters": n_params, "num_images": args.num_images, "repeats": args.repeats,
            "flops": {"unet_forward_per_image": fwd_flops / args.num_images,
                      "train_step_per_image": train_flops / args.train_batch},
            "matmul_gflops": {"before": rate_before, "after": rate_after, "used": rate},
            "clock_for_targets": args.clock, "targets": targets,
            "raw_times_s": {"sampling": times, "training": train_times, "options_per_image": options},
            "compile": compiled, "onnx": onnx_export, "sampler_cost_ms_per_step": cost, **results,
            "table_markdown": table_markdown,
            "table_markdown_other_clock": tables[next(c for c in CLOCKS if c != args.clock)],
        }
        print(f"\nwrote {write_json(args.json, result, default=float)}", file=sys.stderr)
        flops = result["flops"]
        named["machine"] = machine_table(what, n_params, flops, rate, torch.get_num_threads(), load_average,
                                         onnx_export)
        named["targets"] = targets_table(targets, args.clock)
        print(f"wrote the tables in {write_tables(args.json, named)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
