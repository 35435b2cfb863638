"""Copy each benchmark's committed table into the docs that quote it, so the prose never holds stale numbers.

    python -m report.doc_tables [--check]

A Markdown file quotes a table between two markers::

    <!-- table: docs/figures/priors/table.md -->
    | ... the table, replaced on every run ... |
    <!-- end table -->

The path is relative to the project root; the table files are written by the benchmarks themselves
(``python -m bench.sampler_frontier``, ``python -m bench.fid_vs_steps``, ...). ``--check`` changes nothing and
exits 1 if any quoted table differs from its source (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from pipelines.atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table: (?P<path>\S+) -->[ \t]*\r?\n)(?P<body>(?:(?!<!-- table:).)*?)(<!-- end table -->)",
                   re.S)
START = re.compile(r"<!-- table:")


def refresh(text: str, root: Path = ROOT) -> str:
    """``text`` with every quoted table replaced by the current content of its source file."""

    def fill(m: re.Match) -> str:
        source = root / m.group("path")
        if not source.is_file():
            raise FileNotFoundError(f"{m.group('path')}: a quoted table's source is missing (run its benchmark)")
        return f"{m.group(1)}{source.read_text().strip()}\n{m.group(4)}"

    out, n = BLOCK.subn(fill, text)
    if n != len(START.findall(text)):
        raise ValueError("a '<!-- table: PATH -->' marker without its '<!-- end table -->'")
    return out


def documents(root: Path = ROOT) -> list[Path]:
    """The README, docs/*.md and the model cards of pretrained/."""
    return sorted([root / "README.md", *(root / "docs").glob("*.md"), *(root / "pretrained").glob("*/README.md")])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="report stale tables, change nothing")
    args = p.parse_args(argv)
    stale = []
    for doc in documents():
        text = doc.read_text()
        try:
            new = refresh(text)
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {doc.relative_to(ROOT)}: {e}", file=sys.stderr)
            return 2
        if new != text:
            stale.append(doc.relative_to(ROOT))
            if not args.check:
                write_text_atomic(doc, new)
    for doc in stale:
        print(f"{'stale' if args.check else 'refreshed'}: {doc}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
