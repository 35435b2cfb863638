"""The flag style of every command of the project: underscores (``--num_images``), as diffusers' and accelerate's
scripts spell them. For one release the dashed spelling of a flag (``--num-images``, ``--no-clip-sample``) is
still accepted, as a hidden alias: it is rewritten to the flag before parsing and never shown in ``--help``.

    from sprites.cli import ArgumentParser
    p = ArgumentParser(description=...)
    p.add_argument("--num_images", type=int, default=50)      # --num-images 8 still works, for one release
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` that reads ``--a-b`` as ``--a_b`` when only the latter is a flag of its own."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        end = args.index("--") if "--" in args else len(args)
        args[:end] = [self._underscored(arg) for arg in args[:end]]
        return super().parse_known_args(args, namespace)

    def _underscored(self, arg: str) -> str:
        """The flag ``arg`` (or ``arg=value``) stands for: itself, or its underscored spelling (after the ``--``
        or, for argparse's ``--no-`` flags, after the ``--no-``) when only that one is defined."""
        flag, eq, value = arg.partition("=")
        if not flag.startswith("--") or flag in self._option_string_actions:
            return arg
        for prefix in ("--", "--no-"):
            spelled = prefix + flag[len(prefix):].replace("-", "_")
            if flag.startswith(prefix) and spelled in self._option_string_actions:
                return spelled + eq + value
        return arg


def rel(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (what commands and results files show), else
    as given."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
