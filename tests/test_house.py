"""The house's size targets (docs/architecture.md): the benchmarks stay lean and the measuring apparatus no larger
than the product, counted by the command the page quotes (python scripts/line_counts.py)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def line_counts():
    return load_script("line_counts")


def test_bench_holds_under_2000_lines_and_the_apparatus_is_no_larger_than_the_product():
    lc = line_counts()
    found = lc.counts(None)
    lines = {p: n for p, (_, n) in found.items()}
    assert lines["bench"] < 2000, f"bench/ is {lines['bench']:,} lines: move answered studies to experiments/"
    product, apparatus = (sum(lines[p] for p in group) for group in (lc.PRODUCT, lc.APPARATUS))
    assert apparatus <= product, f"apparatus {apparatus:,} lines > product {product:,} (bench + report + evaluation)"


def test_the_counts_see_every_package_and_only_python_files():
    """The counter itself: every top-level package of the checkout is counted, with the lines of its .py files."""
    found = line_counts().counts(None)
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert set(found) == packages
    bench = sorted((ROOT / "bench").rglob("*.py"))
    assert found["bench"] == (len(bench), sum(len(p.read_text().splitlines()) for p in bench))
