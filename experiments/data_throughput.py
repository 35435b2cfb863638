"""Reading speed of the data layer: a folder of small PNGs against the sprites' ``.npz``, side by side, one thread.

    python -m experiments.data_throughput [--num_images 10000] [--repeats 3]
        [--json docs/figures/own_data/throughput.json]

A temporary folder of ``num_images`` 16x16 PNGs in 5 class subfolders is written first (the real sprites, cycled,
so the files compress as sprites do; not timed), then each source is read ``repeats`` times and the median is kept:
:func:`sprites.image_data.read_image_folder` (every PNG decoded once into one uint8 array) and the sprites' ``.npz``
through :func:`sprites.image_data.load_image_set` (the default data). Both end as the same kind of uint8 array in
memory, so a training step reads neither: it indexes the float tensor made once from that array, and the gather of
one batch from it is timed too. Prints a table and writes it as Markdown (quoted by docs/own_data.md) and, with the
machine and the command, as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import result_envelope
from pipelines.atomic import write_text_atomic

DEFAULT_JSON = Path(__file__).resolve().parents[1] / "docs" / "figures" / "own_data" / "throughput.json"


def write_png_folder(root: Path, num_images: int) -> Path:
    """``num_images`` PNGs of the real sprites (cycled) in class subfolders under ``root``."""
    from PIL import Image

    from sprites.data import SPRITE_CLASSES, read_sprites_arrays

    images, labels = read_sprites_arrays()
    for name in SPRITE_CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(num_images):
        j = i % len(images)
        Image.fromarray(images[j]).save(root / SPRITE_CLASSES[labels[j]] / f"{i:05d}.png")
    return root


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    """The median wall time of ``repeats`` calls of ``fn`` and its last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def batch_gather_seconds(images: np.ndarray, batch: int, repeats: int = 200) -> float:
    """Median seconds to gather one random batch from the float tensor of ``images`` (what a training step reads)."""
    from sprites.data import images_to_tensor

    x = images_to_tensor(images)
    g = torch.Generator().manual_seed(0)
    idx = [torch.randint(0, len(x), (batch,), generator=g) for _ in range(repeats)]
    times = []
    for i in idx:
        start = time.perf_counter()
        x[i].contiguous()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(num_images: int, repeats: int, batch: int) -> list[dict]:
    from sprites.image_data import load_image_set, read_image_folder

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_png_folder(Path(tmp) / "png", num_images)
        seconds, data = median_seconds(lambda: read_image_folder(folder), repeats)
        rows.append({"source": f"PNG folder ({num_images:,} files, 5 class subfolders)", "images": len(data.images),
                     "seconds": seconds, "images_per_s": len(data.images) / seconds,
                     "bytes_in_memory": int(data.images.nbytes),
                     "batch_gather_ms": 1e3 * batch_gather_seconds(data.images, batch)})
    seconds, data = median_seconds(load_image_set, repeats)
    npz = next(iter(sorted(Path(data.source).glob("*.npz"))), None) if Path(data.source).is_dir() else None
    rows.append({"source": f"sprites .npz ({npz.name if npz else data.source})", "images": len(data.images),
                 "seconds": seconds, "images_per_s": len(data.images) / seconds,
                 "bytes_in_memory": int(data.images.nbytes),
                 "batch_gather_ms": 1e3 * batch_gather_seconds(data.images, batch)})
    return rows


def table(rows: list[dict], batch: int) -> str:
    head = f"| source | images | read (s) | images/s | uint8 in memory | gather of a batch of {batch} (ms) |"
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['source']} | {r['images']:,} | {r['seconds']:.2f} | {r['images_per_s']:,.0f} | "
                     f"{r['bytes_in_memory'] / 2**20:.1f} MiB | {r['batch_gather_ms']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import json

    p = argparse.ArgumentParser(prog="python -m experiments.data_throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--num_images", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=128, help="batch size of the gather timing (the default config's)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)
    if args.num_images < 1 or args.repeats < 1 or args.batch < 1:
        p.error("--num_images, --repeats and --batch must be >= 1")
    torch.set_num_threads(1)
    rows = measure(args.num_images, args.repeats, args.batch)
    text = table(rows, args.batch)
    print(text)
    result = {**result_envelope("experiments.data_throughput", argv), "threads": 1, "repeats": args.repeats,
              "batch": args.batch, "rows": rows, "table": text}
    write_text_atomic(args.json, json.dumps(result, indent=1) + "\n")
    write_text_atomic(args.json.with_suffix(".md"), text + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
