"""One flag style: every command's flags are spelled with underscores; the dashed spelling of a flag is
a hidden alias for one release (sprites.cli.ArgumentParser; score_toy, apart, states its one alias itself)."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from sprites.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "sprites", "evaluation", "training", "bench", "report", "score_toy")


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="x", allow_abbrev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pipeline")
    src.add_argument("--random_unet")
    p.add_argument("--num_images", type=int, default=50)
    p.add_argument("--clip_sample", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--no_ddpm", action="store_true")
    p.add_argument("rest", nargs="*")
    return p


def test_the_dashed_spelling_is_a_hidden_alias():
    p = _parser()
    old = p.parse_args(["--random-unet", "c.yaml", "--num-images", "3", "--no-clip-sample", "--no-ddpm"])
    new = p.parse_args(["--random_unet", "c.yaml", "--num_images", "3", "--no-clip_sample", "--no_ddpm"])
    assert vars(old) == vars(new) == {"pipeline": None, "random_unet": "c.yaml", "num_images": 3,
                                      "clip_sample": False, "no_ddpm": True, "rest": []}
    assert p.parse_args(["--pipeline", "d", "--num-images=4"]).num_images == 4
    assert p.parse_args(["--pipeline", "d", "--", "--num-images"]).rest == ["--num-images"]  # after --: as given
    assert "--num-images" not in p.format_help() and "--num_images" in p.format_help()


def test_every_flag_of_the_project_is_spelled_with_underscores():
    dashed = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
                    continue
                hidden = any(k.arg == "help" and ast.unparse(k.value) == "argparse.SUPPRESS" for k in node.keywords)
                dashed += [f"{path.relative_to(ROOT)}:{node.lineno} {a.value}" for a in node.args
                           if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--")
                           and "-" in a.value[2:] and not hidden]
    assert dashed == []
