"""Train a DDPM on the sprites with accelerate.

    accelerate launch training/train.py --config configs/tiny.yaml [--key value ...] [--resume latest] [--overwrite]
    python training/train.py --help      # every config key with its default and one line of help

Epsilon-prediction MSE loss (Ho et al. 2020, Algorithm 1), AdamW with warm-up and cosine decay, gradient
clipping, an EMA of the weights (used for samples and the saved pipeline). All randomness of a step (batch
order, flips, timesteps, noise, label drop) is drawn from a generator seeded by (seed, step) for the whole
batch of the step, and each process takes its own slice of each forward pass: runs resume exactly and give the
same weights on one or several processes. With ``gradient_accumulation_steps`` k a step's batch of k x
``train_batch_size`` images is drawn as one and its k forward passes accumulate their gradients
(``accelerator.accumulate``): the same draws, and up to float rounding the same step, as one pass of the whole.

The run folder holds ``run.lock`` (an OS lock, held while a run writes the folder: a second start on it stops;
:mod:`training.run_lock`), ``config.yaml``, ``stats.jsonl``, ``log.txt``, ``loss.png``, ``samples/``,
``checkpoints/checkpoint-NNNNNNN`` (``accelerator.save_state``) and, at the end, ``pipeline/`` (unet +
scheduler via ``save_pretrained``: loadable by our pipelines, by diffusers' stock pipelines without trusting code,
and through the code it carries by ``DiffusionPipeline(..., custom_pipeline=...)``); with ``eval_every``
also ``eval.jsonl``, ``eval.png`` and ``best/`` (:mod:`training.periodic_eval`), with ``log_with`` the
trackers' files in ``logs/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from pipelines.atomic import atomic_dir, atomic_file
from pipelines.labels import NULL_CLASS, NUM_CLASSES
from pipelines.prior import DataMoments
from sprites.data import SpritesDataError, fit_images, images_to_tensor
from sprites.errors import ConfigError
from sprites.machine import machine_info
from training.checkpoints import (
    find_checkpoint,
    prune_checkpoints,
    refuse_foreign_run,
    truncate_stats,
)
from training.config import TrainConfig, keys_help, load_config, save_config
from training.hub import HubError, check_hub_access, push_pipeline
from training.loss import DiffusionLoss
from training.model import build_scheduler, build_unet, init_unet_from, save_pipeline
from training.run_lock import RunLock
from training.training_data import check_batch, fit_unet_to_data, load_training_data

logger = logging.getLogger("spritediff.train")
TRACKERS_DIR = "logs"  # accelerate's trackers write under the run folder here (TensorBoard: logs/train/)


def step_randomness(cfg: TrainConfig, step: int, n_data: int):
    """Everything random about global step ``step``, for the whole batch of the step: its
    ``gradient_accumulation_steps`` forward passes one after another, each with its rows in process order."""
    b = cfg.step_batch_size
    epoch, pos = divmod(step, n_data // b)
    perm = torch.randperm(n_data, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch))
    idx = perm[pos * b:(pos + 1) * b]
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7919 * (step + 1))
    size = cfg.unet.get("sample_size", 16)
    shape = (cfg.unet.get("in_channels", 3), *((size, size) if isinstance(size, int) else size))
    t = torch.randint(0, cfg.num_train_timesteps, (b,), generator=g)
    noise = torch.randn(b, *shape, generator=g)
    flip = (torch.rand(b, generator=g) < 0.5) & cfg.hflip  # drawn either way: the other draws do not move
    drop = torch.rand(b, generator=g) < cfg.cond_drop_prob
    return epoch, idx, t, noise, flip, drop


def pass_rows(own_rows: slice, batch_size: int, k: int) -> slice:
    """This process's rows of forward pass ``k`` of a step (``own_rows``: its rows of one pass)."""
    return slice(k * batch_size + own_rows.start, k * batch_size + own_rows.stop)


def make_batch(cfg: TrainConfig, step: int, images: torch.Tensor, labels: torch.Tensor, rows: slice,
               device, null_class: int = NULL_CLASS) -> tuple[int, tuple]:
    """(epoch, (x0, t, noise, y)) of global step ``step``: the rows ``rows`` of the step's batch (see
    :func:`pass_rows`), flipped and labelled (y is None for an unconditional model; dropped labels are
    ``null_class``)."""
    epoch, idx, t, noise, flip, drop = step_randomness(cfg, step, len(images))
    idx, t, noise, flip, drop = idx[rows], t[rows], noise[rows], flip[rows], drop[rows]
    x0 = torch.where(flip.view(-1, 1, 1, 1), images[idx].flip(-1), images[idx]).to(device)
    y = torch.where(drop, null_class, labels[idx]).to(device) if cfg.conditional else None
    return epoch, (x0, t.to(device), noise.to(device), y)


def make_optimization(cfg: TrainConfig, unet) -> tuple:
    """(AdamW, warm-up + decay LR schedule, EMA of the weights) for ``unet`` as the config says."""
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                  eps=cfg.adam_epsilon, weight_decay=cfg.weight_decay)
    lr_scheduler = get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps,
                                 num_training_steps=cfg.max_train_steps)
    if cfg.ema_power is None:
        ema = EMAModel(unet.parameters(), decay=cfg.ema_decay)
    else:  # EDM2's power EMA (Karras et al. 2024, eq. 3): decay t / (t + gamma + 1), capped at ema_decay
        ema = EMAModel(unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=cfg.ema_power + 1,
                       power=1.0)
    return optimizer, lr_scheduler, ema


def forward_loss(accelerator: Accelerator, unet, loss_fn: DiffusionLoss, batch: tuple) -> torch.Tensor:
    """The loss of one batch (x0, t, noise, y), under accelerate's autocast."""
    x0, t, noise, y = batch
    with accelerator.autocast():
        return loss_fn(unet, x0, t, noise, y)


def optimizer_step(accelerator: Accelerator, unet, optimizer, lr_scheduler, ema: EMAModel, loss: torch.Tensor,
                   max_grad_norm: float) -> None:
    """Backward, gradient clipping, AdamW, the LR schedule and the EMA: the rest of a step of one forward pass."""
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    update_weights(accelerator, unet, optimizer, lr_scheduler, ema, max_grad_norm)


def update_weights(accelerator: Accelerator, unet, optimizer, lr_scheduler, ema: EMAModel,
                   max_grad_norm: float) -> None:
    """Gradient clipping, AdamW, the LR schedule and the EMA, on the gradients of the step's passes."""
    if max_grad_norm > 0:
        accelerator.clip_grad_norm_(unet.parameters(), max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    ema.step(unet.parameters())


def shared_error(accelerator: Accelerator, error: str | None) -> str | None:
    """The first error any process met, on every process, so that all stop together (a process left waiting
    at a barrier would die with a traceback of its own and bury the message)."""
    if accelerator.num_processes == 1:
        return error
    from accelerate.utils import gather_object

    return next((e for e in gather_object([error]) if e), None)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False, epilog=keys_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/tiny.yaml", help="YAML config (see configs/)")
    p.add_argument("--resume", default=None, help="'latest' or a checkpoint folder; 'latest' with none starts anew")
    p.add_argument("--overwrite", action="store_true", help="move an existing run in output_dir aside and start anew")
    return p.parse_known_args(argv)


def sample_grid(unet, scheduler, cfg: TrainConfig, path: Path, caption: str) -> None:
    """Save a DDIM sample grid of the (EMA) model with a fixed seed (a conditional model cycles its classes)."""
    from pipelines import SpritesDDIMPipeline
    from sprites.images import save_grid, to_uint8

    pipe = SpritesDDIMPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    classes = (unet.config.get("num_class_embeds") or NUM_CLASSES + 1) - 1  # the last row is the null class
    extra = {"class_labels": [i % classes for i in range(cfg.num_sample_images)]} if cfg.conditional else {}
    images = pipe(batch_size=cfg.num_sample_images, num_inference_steps=cfg.sample_inference_steps,
                  generator=torch.Generator().manual_seed(cfg.seed), output_type="np", **extra).images
    save_grid(to_uint8(images), path, caption)


def log_grid(accelerator: Accelerator, path: Path, step: int) -> None:
    """A saved sample grid (the PNG as written, caption included) to the trackers as the image ``samples``."""
    if not accelerator.trackers:
        return
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        grid = np.asarray(im.convert("RGB"))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({"samples": grid[None]}, step, dataformats="NHWC")
        elif hasattr(tracker, "log_images"):  # wandb, aim, clearml, swanlab: a list of HWC images
            tracker.log_images({"samples": [grid]}, step)


def loss_label(weighting: str | None) -> str:
    """The name of the loss a config trains, for the loss plot's axis."""
    return "L_simple (epsilon MSE)" if weighting in (None, "none") else f"epsilon MSE weighted by {weighting}"


def plot_loss(stats_file: Path, out: Path, ylabel: str = "training loss") -> None:
    """The training-loss curve (the course asks for it) from stats.jsonl; ``ylabel`` names the loss trained."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [json.loads(line) for line in stats_file.read_text().splitlines() if line.strip()]
    if not rows:
        return
    steps, minutes = [r["step"] for r in rows], [r.get("time_s", 0.0) / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(steps, [r["loss"] for r in rows], lw=1)
    ax.set(xlabel="training step", ylabel=f"{ylabel} (log scale)", yscale="log")
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    if len(rows) > 1 and minutes[-1] > minutes[0]:  # training time on the top axis (time_s is monotone)
        top = ax.secondary_xaxis("top", functions=(lambda s: np.interp(s, steps, minutes),
                                                   lambda m: np.interp(m, minutes, steps)))
        top.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        top.tick_params(labelsize=8)
        top.set_xlabel("training time (min)", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_file(out) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------------------ setup


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """accelerate's Accelerator, with the CPU threads shared out between the processes. Mixed precision is the
    config's, or with ``mixed_precision: null`` accelerate's (``accelerate launch --mixed_precision``, its config
    file, else "no"); gradient accumulation is the config's."""
    from accelerate.utils import GradientAccumulationPlugin

    trackers = {}
    if cfg.log_with:  # diffusers' train_unconditional does the same: the trackers' files under the run folder
        from accelerate.utils import ProjectConfiguration

        out = Path(cfg.output_dir)
        trackers = {"log_with": cfg.log_with,
                    "project_config": ProjectConfiguration(project_dir=str(out), logging_dir=str(out / TRACKERS_DIR))}
    accumulation = GradientAccumulationPlugin(num_steps=cfg.gradient_accumulation_steps, sync_with_dataloader=False)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_plugin=accumulation,
                              **trackers)
    if accelerator.device.type == "cpu":
        # accelerate launch exports OMP_NUM_THREADS=1 unless told otherwise, which halves speed on 2 cores.
        torch.set_num_threads(cfg.num_threads or max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    return accelerator


def precision_source(cfg: TrainConfig) -> str:
    """Where the run's mixed precision comes from, for the log."""
    if cfg.mixed_precision is not None:
        return "the config's mixed_precision"
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return "accelerate's (accelerate launch --mixed_precision or its config file; the config sets none)"
    return "accelerate's default (neither the config nor the launcher sets it)"


def check_launch(cfg: TrainConfig, accelerator: Accelerator) -> None:
    """Refuse a launch whose processes accelerate does not see, a global batch that does not split evenly, or a
    launcher's gradient accumulation that differs from the config's."""
    launcher = os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS")
    if launcher and int(launcher) != cfg.gradient_accumulation_steps:
        raise ConfigError(f"accelerate launch --gradient_accumulation_steps {launcher} (a DeepSpeed setting) differs "
                          f"from the config's {cfg.gradient_accumulation_steps}; give it after the script instead: "
                          f"training/train.py --gradient_accumulation_steps {launcher}")
    n_proc = accelerator.num_processes
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != n_proc:
        raise ConfigError(f"{launched} processes were launched but accelerate sees {n_proc}: on CPU set "
                          "ACCELERATE_USE_CPU=1 (torchrun) or use accelerate launch --multi_gpu")
    if cfg.train_batch_size % n_proc:
        raise ConfigError(f"train_batch_size ({cfg.train_batch_size}) is the global batch and must divide evenly "
                          f"over {n_proc} processes")


def load_inputs(cfg: TrainConfig, args: argparse.Namespace, accelerator: Accelerator, out: Path,
                held: contextlib.ExitStack) -> tuple:
    """``(checkpoint to resume or None, the image set, the initial UNet)``, after every check that can stop the run
    (ConfigError, SpritesDataError or HubError). The UNet's image shape and classes follow the data where the config
    leaves them (training.training_data). The checks that only read come first; then the main process locks the run
    folder (``held`` keeps the lock until the run ends) before it judges or writes it."""
    check_launch(cfg, accelerator)
    if cfg.push_to_hub:
        check_hub_access(cfg.hub_model_id)
    data = load_training_data(cfg)
    data.notes += fit_unet_to_data(cfg, data)
    check_batch(cfg, data)
    if accelerator.is_main_process:
        held.enter_context(RunLock(out))
        refuse_foreign_run(out, cfg, resume=args.resume is not None, overwrite=args.overwrite)
    ckpt = find_checkpoint(out, args.resume) if args.resume else None
    torch.manual_seed(cfg.seed)  # the initial weights follow the seed
    unet = build_unet(cfg.unet, cfg.conditional)
    if cfg.init_from and ckpt is None:
        init_unet_from(unet, cfg.init_from)
    return ckpt, data, unet


def start_run_folder(cfg: TrainConfig, out: Path) -> None:
    """The run folder with samples/ and config.yaml, and the log (log.txt and stderr)."""
    (out / "samples").mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(out / "log.txt"), logging.StreamHandler(sys.stderr)])
    logging.getLogger("accelerate").setLevel(logging.WARNING)


@dataclasses.dataclass
class TrainingRun:
    """Everything the training loop works with."""

    cfg: TrainConfig
    out: Path
    accelerator: Accelerator
    unet: torch.nn.Module
    images: torch.Tensor  # the whole data set, (N, C, H, W) in [-1, 1]
    labels: torch.Tensor
    scheduler: object
    loss_fn: DiffusionLoss
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    ema: EMAModel
    own_rows: slice  # this process's rows of every global batch
    evaluator: object | None = None  # training.periodic_eval.RunEvaluator on the main process when eval_every > 0
    class_names: list[str] | None = None  # of the labels (saved with a conditional pipeline)
    null_class: int = NULL_CLASS  # the class embedding row of "no label"

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process


def build_training(cfg: TrainConfig, accelerator: Accelerator, data, unet, out: Path) -> TrainingRun:
    """The data as tensors, the schedule and loss, and the optimizer, LR schedule and EMA, prepared by accelerate."""
    images = fit_images(images_to_tensor(data.images), cfg.unet)
    labels = torch.as_tensor(data.labels if data.labels is not None else [0] * len(images), dtype=torch.long)
    scheduler = build_scheduler(cfg)
    loss_fn = DiffusionLoss(scheduler.alphas_cumprod, cfg.loss_weighting, cfg.min_snr_gamma)
    optimizer, lr_scheduler, ema = make_optimization(cfg, unet)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema.to(accelerator.device)  # the EMA copied the weights before prepare moved them to the device
    # The LR schedule counts global steps: stepped by hand, not through accelerate (which steps it per process).
    accelerator.register_for_checkpointing(lr_scheduler)
    accelerator.register_for_checkpointing(ema)
    local = cfg.train_batch_size // accelerator.num_processes
    own_rows = slice(accelerator.process_index * local, (accelerator.process_index + 1) * local)
    null_class = (accelerator.unwrap_model(unet).config.get("num_class_embeds") or NULL_CLASS + 1) - 1  # DDP wraps
    return TrainingRun(cfg, out, accelerator, unet, images, labels, scheduler, loss_fn, optimizer, lr_scheduler, ema,
                       own_rows, class_names=data.class_names, null_class=null_class)


def resume(run: TrainingRun, ckpt: Path | None, resume_arg: str | None) -> int:
    """Load the checkpoint (if any) and return the step to start from; log rows past it are dropped."""
    step = 0
    if ckpt is not None:
        run.accelerator.load_state(str(ckpt))
        run.ema.to(run.accelerator.device)  # accelerate loads custom state on the CPU
        step = int(ckpt.name.split("-")[-1])
    if run.is_main and resume_arg:
        for rows in ("stats.jsonl", "eval.jsonl"):  # rows past the checkpoint come again, the same
            truncate_stats(run.out / rows, step)
        if ckpt is None:
            logger.info("no checkpoint in %s: starting from step 0", run.out / "checkpoints")
        else:
            logger.info("resumed from %s at step %d", ckpt, step)
    return step


def start_trackers(run: TrainingRun, step: int) -> str | None:
    """accelerate's trackers of ``log_with`` (an error line if one cannot start). On resume, TensorBoard hides the
    events a killed run logged past the checkpoint (``purge_step``), as eval.jsonl and stats.jsonl drop them."""
    if not run.cfg.log_with:
        return None
    flat = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in run.cfg.to_dict().items()}
    try:
        run.accelerator.init_trackers("train", config=flat,
                                      init_kwargs={"tensorboard": {"purge_step": step + 1}} if step else None)
    except Exception as exc:  # noqa: BLE001 - a tracker's client raises its own kinds (no login, offline, ...)
        return f"error: log_with: the {run.cfg.log_with} tracker did not start ({type(exc).__name__}: {exc})"
    return None


# ------------------------------------------------------------------------------------------------------- loop


class LossLog:
    """The losses since the last row of stats.jsonl, and the clocks of the run and of that row."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.losses: list[float] = []

    def seconds(self) -> float:
        """Seconds since the run (this process) started training."""
        return time.perf_counter() - self.start


def train_step(run: TrainingRun, step: int) -> tuple[int, torch.Tensor | None]:
    """One optimisation step at global step ``step`` (its ``gradient_accumulation_steps`` forward passes, their
    gradients accumulated): ``(epoch, mean loss)``, or ``(epoch, None)`` without an update when a loss is not
    finite."""
    cfg, accelerator = run.cfg, run.accelerator
    run.optimizer.zero_grad(set_to_none=True)
    losses = []
    for k in range(cfg.gradient_accumulation_steps):
        rows = pass_rows(run.own_rows, cfg.train_batch_size, k)
        epoch, batch = make_batch(cfg, step, run.images, run.labels, rows, accelerator.device,
                                  run.null_class)
        with accelerator.accumulate(run.unet):  # no gradient all-reduce before the step's last pass
            loss = forward_loss(accelerator, run.unet, run.loss_fn, batch)
            if not torch.isfinite(loss):
                logger.error("step %d: the loss is %s; stopping. The last good checkpoint is kept in %s "
                             "(lower learning_rate or max_grad_norm and --resume latest).", step, loss.item(),
                             run.out / "checkpoints")
                return epoch, None
            accelerator.backward(loss)  # divided by gradient_accumulation_steps: the mean over the step's batch
        losses.append(loss.detach())
    update_weights(accelerator, run.unet, run.optimizer, run.lr_scheduler, run.ema, cfg.max_grad_norm)
    return epoch, losses[0] if len(losses) == 1 else torch.stack(losses).mean()


def log_stats(run: TrainingRun, log: LossLog, step: int, epoch: int, bar) -> None:
    """Append a row of stats.jsonl (mean loss since the last row, LR, images/s, time) and show it on the bar."""
    now = time.perf_counter()
    ips = len(log.losses) * run.cfg.step_batch_size / (now - log.last)
    row = {"step": step, "epoch": epoch, "loss": sum(log.losses) / len(log.losses),
           "lr": run.lr_scheduler.get_last_lr()[0], "images_per_s": round(ips, 1), "time_s": round(now - log.start, 2)}
    if run.is_main:
        with (run.out / "stats.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{ips:.0f}")
    run.accelerator.log({k: v for k, v in row.items() if k != "step"}, step=step)  # trackers (main process only)
    log.losses, log.last = [], now


def save_checkpoint(run: TrainingRun, step: int) -> None:
    """``accelerator.save_state`` into checkpoints/checkpoint-NNNNNNN (atomically), then prune old ones."""
    run.accelerator.wait_for_everyone()
    if run.is_main:
        with atomic_dir(run.out / "checkpoints" / f"checkpoint-{step:07d}") as tmp:
            run.accelerator.save_state(str(tmp))
        prune_checkpoints(run.out, run.cfg.checkpoints_total_limit)


def ema_unet(run: TrainingRun) -> torch.nn.Module:
    """A float32 UNet with the EMA weights, in eval mode, on the accelerator's device: sampled
    outside accelerate's mixed-precision wrapper, with the training weights and the global random state (which
    dropout draws from) untouched."""
    with torch.random.fork_rng(devices=[]):  # building a UNet draws its initial weights
        unet = build_unet(run.cfg.unet, run.cfg.conditional)
    unet.load_state_dict(run.accelerator.unwrap_model(run.unet).state_dict())
    run.ema.copy_to(unet.parameters())
    return unet.to(run.accelerator.device).eval()


def save_ema_samples(run: TrainingRun, step: int) -> None:
    """A sample grid of the EMA weights at ``step``."""
    path = run.out / "samples" / f"step_{step:07d}.png"
    sample_grid(ema_unet(run), run.scheduler, run.cfg, path,
                f"{run.out.name}: step {step}, EMA weights, DDIM {run.cfg.sample_inference_steps} steps")
    log_grid(run.accelerator, path, step)


def evaluate_ema(run: TrainingRun, step: int) -> None:
    """Evaluate the EMA weights at ``step`` (training.periodic_eval): a row of eval.jsonl, eval.png, best/ when
    it is the best so far, and the row to the trackers."""
    from training.periodic_eval import record, summary, tracker_values

    row = record(run.out, run.evaluator, ema_unet(run), run.scheduler, step)
    logger.info(summary(row, run.cfg))
    run.accelerator.log(tracker_values(row), step=step)


def train_loop(run: TrainingRun, step: int) -> tuple[str, int]:
    """Train from ``step`` to ``max_train_steps``, logging, checkpointing and sampling on the way; returns
    ``(status, last step)`` with status "done", "time" (max_train_minutes) or "nan"."""
    cfg = run.cfg
    bar = tqdm(total=cfg.max_train_steps, initial=step, disable=not run.is_main, desc="train")
    log, status = LossLog(), "done"
    run.unet.train()
    while step < cfg.max_train_steps:
        epoch, loss = train_step(run, step)
        if loss is None:
            status = "nan"
            break
        step += 1
        log.losses.append(run.accelerator.reduce(loss.detach(), reduction="mean").item())
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_train_steps:
            log_stats(run, log, step, epoch, bar)
        out_of_time = cfg.max_train_minutes is not None and log.seconds() > 60 * cfg.max_train_minutes
        last = step == cfg.max_train_steps or out_of_time
        # before the checkpoint: a run killed between the two evaluates this step again after resuming
        if run.evaluator is not None and (step % cfg.eval_every == 0 or last):
            evaluate_ema(run, step)
        if step % cfg.checkpoint_every == 0 or last:
            save_checkpoint(run, step)
        if run.is_main and cfg.sample_every and step % cfg.sample_every == 0:
            save_ema_samples(run, step)
        if out_of_time:
            status = "time"
            logger.info("max_train_minutes reached at step %d", step)
            break
    bar.close()
    return status, step


# ------------------------------------------------------------------------------------------------------- save


def save_final(run: TrainingRun, step: int, status: str) -> int:
    """The EMA model as the run's pipeline/ (with the loss curve, a last sample grid and the model card), pushed
    to the hub when asked; returns the exit code (4: the push failed)."""
    cfg, out = run.cfg, run.out
    final_unet = ema_unet(run)
    stats = out / "stats.jsonl"
    plot_loss(stats, out / "loss.png", loss_label(cfg.loss_weighting))
    sample_grid(final_unet, run.scheduler, cfg, out / "samples" / "final.png",
                f"{out.name}: step {step}, EMA weights, DDIM {cfg.sample_inference_steps} steps")
    log_grid(run.accelerator, out / "samples" / "final.png", step)
    rows = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
    card = {"config": cfg.to_dict(), "steps": step, "final_loss": rows[-1]["loss"] if rows else None,
            "train_time_s": rows[-1]["time_s"] if rows else None,
            "parameters": sum(p.numel() for p in run.unet.parameters()), "processes": run.accelerator.num_processes}
    save_pipeline(final_unet, run.scheduler, out / "pipeline", card, DataMoments.from_images(run.images, cfg.hflip),
                  class_names=run.class_names)
    logger.info("saved the pipeline to %s (%d steps%s)", out / "pipeline", step,
                ", stopped by max_train_minutes" if status == "time" else "")
    if cfg.push_to_hub:
        try:
            url = push_pipeline(out / "pipeline", cfg.hub_model_id, private=cfg.hub_private)
            logger.info("pushed to %s", url)
        except HubError as exc:
            print(f"error: {exc} (the pipeline is saved in {out / 'pipeline'})", file=sys.stderr)
            return 4
    return 0


def main(argv: list[str] | None = None) -> int:
    with contextlib.ExitStack() as held:  # the run folder's lock, released however the run ends
        return run_training(argv, held)


def run_training(argv: list[str] | None, held: contextlib.ExitStack) -> int:
    """The whole run (``main`` without the lock's release); returns the exit code."""
    args, overrides = parse_args(argv)
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(cfg.output_dir)
    accelerator = make_accelerator(cfg)
    precision = precision_source(cfg)
    cfg.mixed_precision = accelerator.mixed_precision  # what runs, as config.yaml records it
    try:
        ckpt, data, unet = load_inputs(cfg, args, accelerator, out, held)
        error = None
    except (ConfigError, SpritesDataError, HubError) as exc:
        error = f"error: {exc}"
    error = shared_error(accelerator, error)
    if error:  # every process stops, the main one says why in one line
        if accelerator.is_main_process:
            print(error, file=sys.stderr)
        return 2

    if accelerator.is_main_process:
        start_run_folder(cfg, out)
    run = build_training(cfg, accelerator, data, unet, out)
    step = resume(run, ckpt, args.resume)
    error = shared_error(accelerator, start_trackers(run, step) if run.is_main else None)
    if error:
        if run.is_main:
            print(error, file=sys.stderr)
        return 2
    if run.is_main and cfg.eval_every:
        from training.periodic_eval import RunEvaluator

        run.evaluator = RunEvaluator(cfg, run.accelerator.device)
    if run.is_main:
        logger.info("training %s: %d images, %d parameters, global batch %d on %d process(es), steps %d -> %d",
                    out, len(run.images), sum(p.numel() for p in run.unet.parameters()), cfg.step_batch_size,
                    accelerator.num_processes, step, cfg.max_train_steps)
        logger.info("device %s, mixed precision %s", accelerator.device, accelerator.mixed_precision)
        if cfg.gradient_accumulation_steps > 1:
            logger.info("gradient accumulation: %d forward passes of %d images per step",
                        cfg.gradient_accumulation_steps, cfg.train_batch_size)
        logger.info("mixed precision: %s, %s", cfg.mixed_precision, precision)
        logger.info("machine: %s", json.dumps(machine_info()))  # float rounding can differ between machines
        logger.info("data: %s", data.describe())
        for note in data.notes:
            logger.info("data: %s", note)
    status, step = train_loop(run, step)
    accelerator.wait_for_everyone()
    if status == "nan":
        accelerator.end_training()
        return 3
    if run.is_main and (code := save_final(run, step, status)):
        return code
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
