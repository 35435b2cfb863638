"""Lines of Python per top-level package, of the work tree or of a commit, as the Markdown table of
docs/architecture.md.

    python scripts/line_counts.py              # the work tree (the files on disk)
    python scripts/line_counts.py --rev 003c154   # a commit (read through git, nothing is checked out)

A package is a top-level folder with an ``__init__.py``; its lines are those of every ``.py`` file under it. The
sums compare the product (what the wheel installs to sample and train) with the measuring apparatus.
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("pipelines", "training", "sprites")
APPARATUS = ("bench", "report", "evaluation")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def python_files(rev: str | None) -> dict[str, str]:
    """path -> text of every tracked-or-present ``.py`` file (of ``rev`` when given, else of the work tree)."""
    if rev is None:
        return {p.relative_to(ROOT).as_posix(): p.read_text() for p in ROOT.rglob("*.py")
                if not {".venv", ".git", "outputs", "runs"} & set(p.relative_to(ROOT).parts)}
    names = [n for n in git("ls-tree", "-r", "--name-only", rev).splitlines() if n.endswith(".py")]
    return {n: git("show", f"{rev}:{n}") for n in names}


def counts(rev: str | None) -> dict[str, tuple[int, int]]:
    """package -> (files, lines)."""
    files = python_files(rev)
    packages = {path.split("/")[0] for path in files if path.count("/") == 1 and path.endswith("/__init__.py")}
    n_files, n_lines = Counter(), Counter()
    for path, text in files.items():
        top = path.split("/")[0]
        if top in packages:
            n_files[top] += 1
            n_lines[top] += len(text.splitlines())
    return {p: (n_files[p], n_lines[p]) for p in sorted(packages, key=lambda p: -n_lines[p])}


def table(rev: str | None) -> str:
    found = counts(rev)
    rows = ["| package | files | lines |", "| --- | ---: | ---: |"]
    rows += [f"| `{p}/` | {f} | {n:,} |" for p, (f, n) in found.items()]
    for name, group in (("product", PRODUCT), ("apparatus", APPARATUS)):
        rows.append(f"| **{name}** ({' + '.join(group)}) | {sum(found.get(p, (0, 0))[0] for p in group)} | "
                    f"**{sum(found.get(p, (0, 0))[1] for p in group):,}** |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default=None, help="a commit (default: the work tree)")
    print(table(p.parse_args(argv).rev))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
