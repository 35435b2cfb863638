"""Recipe study: quality per CPU-hour of short training runs, one change at a time.

    python -m experiments.recipe_study train    [--config configs/recipe_study.yaml] [--only NAME ...]
    python -m experiments.recipe_study evaluate [--config configs/recipe_study.yaml] [--json PATH] [--plot PATH]

``train`` runs ``python -m training.train --config BASE --output_dir ROOT/NAME <common> <variant>`` for every
variant in turn; a finished run (its ``pipeline/`` exists) is skipped and an interrupted one resumes from its
last checkpoint, so the same command continues the study. ``evaluate`` samples every finished run with DDPM-500
and DDIM-50 (eta 0, the data prior), scores them with sprite-FID against real half B, and writes a table
(stdout and JSON) and the loss curves against wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_study(path: str | Path) -> dict[str, Any]:
    """The study's YAML: base_config, output_root, common overrides, variants, evaluate settings."""
    study = yaml.safe_load(Path(path).read_text())
    for key in ("base_config", "output_root", "common", "variants"):
        if key not in study:
            raise SystemExit(f"error: {path} lacks the key {key!r}")
    return study


def overrides(settings: dict[str, Any]) -> list[str]:
    """``{key: value}`` as the trainer's ``--key value`` arguments (values as YAML flow text)."""
    args = []
    for key, value in settings.items():
        args += [f"--{key}", yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()]
    return args


def train_command(study: dict[str, Any], name: str) -> list[str]:
    """The command that trains variant ``name``."""
    out = Path(study["output_root"]) / name
    return [sys.executable, "-m", "training.train", "--config", study["base_config"], "--output_dir", str(out),
            "--resume", "latest", *overrides(study["common"]), *overrides(study["variants"][name] or {})]


def train(study: dict[str, Any], only: list[str] | None) -> int:
    for name in study["variants"]:
        if only and name not in only:
            continue
        if (Path(study["output_root"]) / name / "pipeline").is_dir():
            print(f"[recipe] {name}: done, skipped", flush=True)
            continue
        command = train_command(study, name)
        print(f"[recipe] {name}: {' '.join(command[1:])}", flush=True)
        code = subprocess.call(command, cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"})  # the log: stats.jsonl
        if code:
            print(f"[recipe] {name}: the trainer exited with {code}; stopping", flush=True)
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", choices=["train", "evaluate"])
    p.add_argument("--config", default="configs/recipe_study.yaml")
    p.add_argument("--only", nargs="*", help="variant names (default: all)")
    p.add_argument("--json", default="docs/figures/training/recipe_study.json")
    p.add_argument("--plot", default="docs/figures/training/recipe_study.png")
    args = p.parse_args(argv)
    study = load_study(args.config)
    if args.phase == "train":
        return train(study, args.only)
    from experiments.recipe_eval import evaluate

    return evaluate(study, args.only, Path(args.json), Path(args.plot), argv)


if __name__ == "__main__":
    sys.exit(main())
