"""``python -m score_toy [--student_id N] [--out DIR] [--config PATH] [--quick] [--force]``: run every experiment."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from score_toy.config import ConfigError, load_config
from score_toy.experiments import OutputDirError, claim_output_dir, format_tables, run
from score_toy.mixture import GaussianMixture2D


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m score_toy", description=(
        "Score-based models on the course's 2D Gaussian mixture and data set for a student number: analytic "
        "scores, scores learned on the training split and measured on the held-out test split, "
        "deterministic ascent, Langevin and annealed Langevin dynamics, and Song & Ermon (2019)'s mode-weight "
        "experiment. Writes numbered, captioned figures and metrics.json."))
    parser.add_argument("--student_id", help="your student number (0 .. 2**32 - 1): it defines the mixture and the "
                        "data set (default: the config's placeholder)")
    parser.add_argument("--student-id", dest="student_id", help=argparse.SUPPRESS)  # the old spelling, one release
    parser.add_argument("--out", default="outputs/score_toy", help="output folder (default: outputs/score_toy)")
    parser.add_argument("--config", default=None, help="a YAML file merged over configs/score_toy.yaml")
    parser.add_argument("--quick", action="store_true", help="a tiny run of seconds (the config's quick section)")
    parser.add_argument("--force", action="store_true", help="overwrite an output folder that holds another run")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, quick=args.quick)
        student_id = args.student_id if args.student_id is not None else cfg["student_id"]
        GaussianMixture2D.from_student_id(student_id)  # refuse a bad id before touching the output folder
        out = Path(args.out)
        claim_output_dir(out, {"student_id": str(student_id).strip(), "quick": args.quick, "config": cfg},
                         force=args.force)
    except (ConfigError, OutputDirError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    print(f"score_toy: student {student_id}, {'quick' if args.quick else 'full'} run into {out}")
    metrics = run(cfg, str(student_id).strip(), out)
    print()
    print(format_tables(metrics))
    print(f"wrote {len(metrics['figures'])} figures, metrics.json, figures.json, captions.md to {out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
