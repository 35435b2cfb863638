"""Wall time of `python -m training.sample --preset fast` against `--preset quality`, side by side in one run.

    python -m bench.presets --pipeline pretrained/sprites_ddpm [--num_images 50] [--repeats 3] [--threads 1]
        [--json docs/figures/sampling/presets.json]

Both presets sample the same number of sprites from the same seed, alternating (quality, fast, quality, ...), so
load on a shared machine hits both alike; medians and their ratio are reported. The settings are read from
configs/sampling_presets.yaml, as the sampling command reads them.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.common import result_envelope
from pipelines.atomic import write_text_atomic
from pipelines.loading import prepare_sampling
from sprites.cli import ArgumentParser


def time_presets(folder: str, num_images: int, repeats: int) -> dict:
    calls = {name: prepare_sampling(folder, name) for name in ("quality", "fast")}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, sampling in calls.items():
            start = time.perf_counter()
            sampling(num_images, seed=0)
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    return {"num_images": num_images, "repeats": repeats, "times_s": times, "median_s": med,
            "speedup": med["quality"] / med["fast"],
            "settings": {name: {"sampler": s.sampler, "nfe": s.nfe, **s.arguments} for name, s in calls.items()}}


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", default="pretrained/sprites_ddpm")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {**result_envelope("bench.presets", argv, args.pipeline),
              **time_presets(args.pipeline, args.num_images, args.repeats), "threads": args.threads}
    med = result["median_s"]
    print(f"| preset | sampler | UNet evaluations | median wall s ({args.num_images} sprites) |\n|---|---|---:|---:|")
    for name in ("quality", "fast"):
        st = result["settings"][name]
        print(f"| {name} | {st['sampler']} | {st['nfe']} | {med[name]:.2f} |")
    print(f"\nfast is {result['speedup']:.1f}x faster than quality")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
