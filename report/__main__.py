"""``python -m report``: the whole spritediff report from one command (HTML and Markdown).

With the shipped model (no training): 50-sample DDPM and DDIM grids, the timing comparison, the sprite-FID
table of DDPM against DDIM, the training curve of the shipped model, and the score_toy experiments; every figure
and table numbered, captioned, and followed by the command that reproduces it. Each part runs as the same
command a user would type, so the report shows exactly what those commands give.

    python -m report [--pipeline pretrained/sprites_ddpm] [--out outputs/report] [--quick] [--retrain]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from report.document import Report, environment

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINE = ROOT / "pretrained" / "sprites_ddpm"


def load_settings(quick: bool) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "report.yaml").read_text())
    return {**cfg["full"], **(cfg["quick"] if quick else {})}


class Runner:
    """Runs each part as a command line from the project root, logs it, and keeps the command for the report."""

    def __init__(self, log: Path):
        self.log = log

    def __call__(self, *args: str) -> str:
        cmd = [sys.executable if args[0] == "python" else args[0], *args[1:]]
        shown = shlex.join(["python", *args[1:]] if args[0] == "python" else list(args))
        print(f"[report] $ {shown}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        with self.log.open("a") as f:
            f.write(f"$ {shown}\n{proc.stdout}{proc.stderr}\n[{time.perf_counter() - start:.1f} s, exit "
                    f"{proc.returncode}]\n\n")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise SystemExit(f"error: `{shown}` failed: {tail[0]} (full log: {self.log})")
        return shown


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m report", description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", type=Path, default=DEFAULT_PIPELINE, help="the sprites pipeline folder to report on")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "report")
    p.add_argument("--quick", action="store_true", help="tiny sample counts: a check of the machinery, not numbers")
    p.add_argument("--retrain", action="store_true",
                   help="train configs/sprites_ddpm.yaml from scratch first (about 1.5 h on 2 CPU cores)")
    args = p.parse_args(argv)
    from training.data import default_data_path, holds_sprites, no_default_data_error

    if not holds_sprites(default_data_path()):  # the FID parts need the sprites: stop now, not minutes later
        print(f"error: {no_default_data_error()}", file=sys.stderr)
        return 2
    s = load_settings(args.quick)
    work = args.out.with_name(args.out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    run = Runner(work / "commands.log")
    start = time.perf_counter()

    pipeline = args.pipeline
    if args.retrain:
        train_dir = work / "retrain"
        run("accelerate", "launch", "--config_file", "accelerate_config.yaml", "training/train.py", "--config",
            "configs/sprites_ddpm.yaml", "--output_dir", rel(train_dir), "--resume", "latest")
        pipeline = train_dir / "pipeline"
    if not (pipeline / "model_index.json").is_file():
        print(f"error: {pipeline} is not a pipeline folder (no model_index.json); pass --pipeline or --retrain",
              file=sys.stderr)
        return 2

    r = Report("spritediff report")
    r.text(f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} from `{rel(pipeline)}`"
           f"{' (quick mode: tiny sample counts, numbers not meaningful)' if args.quick else ''}.")

    r.heading("Sprites: DDPM and DDIM samples")
    n = s["grid_images"]
    cmd = run("python", "-m", "training.sample", "--pipeline", rel(pipeline), "--sampler", "ddpm", "--num_images",
              str(n), "--out", rel(work / "ddpm_grid.png"))
    r.figure(work / "ddpm_grid.png", f"{n} sprites from the DDPM pipeline (Ho et al. 2020, Algorithm 2, all 500 "
             "steps, sigma_t^2 = beta_t), seed 0.", cmd)
    cmd = run("python", "-m", "training.sample", "--pipeline", rel(pipeline), "--sampler", "ddim", "--steps",
              str(s["ddim_steps"]), "--num_images", str(n), "--out", rel(work / "ddim_grid.png"))
    r.figure(work / "ddim_grid.png", f"{n} sprites from the DDIM pipeline (Song et al. 2021, eq. 12, eta = 0, "
             f"{s['ddim_steps']} steps), seed 0: the same initial noise as the DDPM grid.", cmd)

    r.heading("Sampling time")
    cmd = run("python", "-m", "bench.sampling_time", "--pipeline", rel(pipeline), "--num_images",
              str(s["timing_images"]), "--repeats", str(s["timing_repeats"]), "--json", rel(work / "timing.json"))
    timing = json.loads((work / "timing.json").read_text())
    r.table(timing["wall"]["table_markdown"], f"Wall time of sampling {s['timing_images']} sprites (median of "
            f"{s['timing_repeats']}): a bare loop of UNet calls, our pipelines and diffusers' stock ones on the "
            "same model and inputs.", cmd)

    r.heading("Sample quality: sprite-FID of DDPM against DDIM")
    fid_out = work / "fid"
    cmd = run("python", "-m", "bench.fid_vs_steps", "--pipeline", rel(pipeline), "--num-images",
              str(s["fid_images"]), "--batch-size", str(s["fid_batch_size"]), "--ddim-steps",
              *map(str, s["fid_ddim_steps"]), "--out", rel(fid_out), "--overwrite")
    fid = json.loads((fid_out / "results.json").read_text())
    r.table(fid["table_markdown"], f"sprite-FID and sprite-KID (our sprite feature network, not Inception), "
            f"precision, recall and the class-mix gap of {s['fid_images']} samples per sampler against held-out real "
            "sprites, with wall time; the floor row compares real sprites with real sprites.", cmd)
    if (fid_out / "fid_vs_steps.png").is_file():
        r.figure(fid_out / "fid_vs_steps.png", "sprite-FID against the number of sampling steps (DDIM, eta 0 and "
                 "1; DDPM at 500), with wall time on the second axis.", cmd)

    card = pipeline / "training"
    if (card / "loss.png").is_file():
        r.heading("Training of the model")
        r.figure(card / "loss.png", "Training loss (epsilon MSE, log scale) of the reported model against steps.",
                 "accelerate launch training/train.py --config configs/sprites_ddpm.yaml")

    r.heading("score_toy: 2D score-based models")
    toy = work / "score_toy"
    toy_args = ["--quick"] if args.quick else []
    cmd = run("python", "-m", "score_toy", "--out", rel(toy), "--force", *toy_args)
    for fig in json.loads((toy / "figures.json").read_text()):
        r.figure(toy / fig["file"], fig["caption"], cmd)

    r.heading("Environment")
    r.table(environment(), "Where these numbers were measured.")
    r.text(f"The report took {time.perf_counter() - start:.0f} s. Every command's output is in "
           f"`{rel(work / 'commands.log')}`.")
    md, page = r.write(args.out)
    print(f"wrote {rel(md)} and {rel(page)} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
