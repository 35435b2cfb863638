"""The README is a front door: short, the two commands first, a Python block that samples sprites early, and that
block runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LINES = README.splitlines()
MAX_LINES = 200


def _blocks(language: str) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced block of ``language``."""
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M):
        found.append((README[:match.start()].count("\n") + 1, match.group(1)))
    return found


def test_the_readme_is_at_most_200_lines_and_opens_with_the_two_commands():
    assert len(LINES) <= MAX_LINES, f"README.md has {len(LINES)} lines; keep it to {MAX_LINES}, move the rest to docs/"
    first_line, first = _blocks("bash")[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.split("#")[0].strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert first_line < min(line for line, _ in _blocks("python"))
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci  # CI runs the README's test command


def test_the_student_number_is_on_the_first_screen():
    assert any("--student_id" in line for line in LINES[:60])


def test_the_first_python_block_samples_50_sprites_in_at_most_10_lines_within_the_first_40(tmp_path):
    line, code = _blocks("python")[0]
    assert line <= 40, f"the first Python block starts at line {line}"
    assert len(code.strip().splitlines()) <= 10
    assert "batch_size=50" in code
    (tmp_path / "pretrained").symlink_to(ROOT / "pretrained")  # the block's relative path, as from the checkout
    check = code + "\nassert len(images) == 50 and images[0].size == (16, 16), (len(images), images[0].size)\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_docs_page_is_in_the_readme_table():
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    missing = [p for p in pages if f"({p})" not in README]
    assert not missing, f"docs pages not linked from the README: {missing}"
