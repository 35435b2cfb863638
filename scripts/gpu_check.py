"""The first run on a GPU, in one command (``bash scripts/gpu_check.sh``): under 5 minutes on one GPU.

1. the CUDA tests (``tests/test_cuda.py``: sampling, bf16/fp16 training, the data prior and the metrics on the GPU);
2. 500 steps of the default config (configs/sprites_ddpm.yaml) in bf16 through accelerate (fp16 on a GPU
   without bf16), its images/s against the CPU's (the shipped model's training record,
   ``pretrained/sprites_ddpm/training/stats.jsonl``);
3. DDIM-50 and the fast preset (configs/sampling_presets.yaml) for 1,000 sprites, each timed (wall clock of the
   command: loading included);

and writes one JSON of results (``<out>/gpu_check.json``). Without a GPU it prints one line and exits 0.
``SPRITEDIFF_GPU_CHECK_DRY=1`` runs every command on the CPU at tiny sizes (configs/tiny.yaml, a few steps and
sprites): the check of the script itself, which tests/test_gpu_check.py runs.

    python scripts/gpu_check.py [--out runs/gpu_check]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRY = os.environ.get("SPRITEDIFF_GPU_CHECK_DRY") == "1"
# The real check's sizes, and the CPU dry run's
SIZES = {"config": "configs/sprites_ddpm.yaml", "steps": 500, "sprites": 1000, "ddim_steps": 50}
DRY_SIZES = {"config": "configs/tiny.yaml", "steps": 4, "sprites": 8, "ddim_steps": 3}
CPU_RECORD = ROOT / "pretrained" / "sprites_ddpm" / "training" / "stats.jsonl"


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> tuple[float, int]:
    """Run ``cmd`` from the repository root (its output shown): (wall-clock seconds, exit code); with ``check``,
    stop on failure."""
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    code = subprocess.call(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    if code and check:
        raise SystemExit(f"error: exit {code} from: {' '.join(cmd)}")
    return time.perf_counter() - start, code


def images_per_s(stats: Path) -> float:
    """The median images/s of a run's stats.jsonl (the first row, with start-up and warm-up, left out)."""
    rows = [json.loads(line) for line in stats.read_text().splitlines() if line.strip()]
    speeds = [r["images_per_s"] for r in rows[1:] or rows]
    return statistics.median(speeds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/gpu_check", help="folder for the training run, samples and the JSON")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not DRY:
        if torch.version.cuda is None and shutil.which("nvidia-smi"):
            print(f"gpu_check: this torch ({torch.__version__}) is a CPU build, but the machine has nvidia-smi: "
                  "install a CUDA build of torch in the venv (PyPI's torch==2.13.0 for Linux is one), then run "
                  "this again")
            return 1
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False): nothing to check, exit 0")
        return 0
    sizes, device = (DRY_SIZES, "cpu") if DRY else (SIZES, "cuda")
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    result = {"dry_run": DRY, "device": device,
              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "torch": torch.__version__, "sizes": sizes}

    # a failing CUDA test is recorded and the check goes on: the JSON then holds every other number too
    result["cuda_tests_s"], result["cuda_tests_exit"] = run(
        [py, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_cuda.py"], check=False)

    # bf16 where the GPU has it (Ampere and later), else fp16 (recorded as "precision")
    precision = "bf16" if DRY or torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    result["precision"] = precision
    run_dir = out / f"train_{precision}"
    launch = [py, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--mixed_precision", precision, "--dynamo_backend", "no", *(["--cpu"] if DRY else [])]
    result["train_s"], _ = run([*launch, "-m", "training.train", "--config", sizes["config"],
                             "--mixed_precision", precision, "--eval_every", "0",
                             "--max_train_steps", str(sizes["steps"]), "--checkpoint_every", str(sizes["steps"]),
                             "--log_every", str(max(1, sizes["steps"] // 10)), "--output_dir", str(run_dir),
                             "--overwrite"])
    result["train_images_per_s"] = images_per_s(run_dir / "stats.jsonl")
    result["cpu_images_per_s"] = images_per_s(CPU_RECORD)
    result["speed_up"] = result["train_images_per_s"] / result["cpu_images_per_s"]

    sample = [py, "-m", "training.sample", "--pipeline", "pretrained/sprites_ddpm", "--device", device,
              "--num_images", str(sizes["sprites"])]
    result["ddim50_s"], _ = run([*sample, "--sampler", "ddim", "--nfe", str(sizes["ddim_steps"]),
                              "--out", str(out / "ddim.npy")])
    result["fast_preset_s"], _ = run([*sample, "--preset", "fast", "--out", str(out / "fast.npy")])
    for name in ("ddim", "fast"):
        import numpy as np

        images = np.load(out / f"{name}.npy")
        if images.shape != (sizes["sprites"], 16, 16, 3):
            raise SystemExit(f"error: {out / f'{name}.npy'} holds {images.shape}, not {sizes['sprites']} sprites")

    from pipelines.atomic import write_text_atomic

    path = out / "gpu_check.json"
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"gpu_check: wrote {path}")
    if result["cuda_tests_exit"]:
        print(f"gpu_check: the CUDA tests failed (pytest exit {result['cuda_tests_exit']}; their output is above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
