"""The slow tests, run as a benchmark: the tests marked ``slow`` (each over a minute on 2 CPU cores, or a
multi-process launch) are left out of the default test command (``bash scripts/test.sh``, pytest's ``-m "not
slow"`` in pyproject.toml) so the suite stays under 10 minutes; this runs them, prints a table of outcome and
seconds per test and writes it as JSON (and Markdown beside it).

    python -m tests.slow_tests [--json docs/figures/tests/slow_tests.json] [-- extra pytest arguments]

Exit status: pytest's (0 when every slow test passed).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.common import result_envelope, write_json
from pipelines.atomic import write_text_atomic
from sprites.cli import ArgumentParser

ROOT = Path(__file__).resolve().parents[1]


def read_junit(path: Path) -> list[dict]:
    """``[{test, outcome, seconds}]`` of a pytest JUnit XML file, in run order."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((o.tag for o in case if o.tag in ("failure", "error", "skipped")), "passed")
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        rows.append({"test": name, "outcome": {"failure": "failed"}.get(outcome, outcome),
                     "seconds": float(case.get("time", 0))})
    return rows


def markdown(rows: list[dict], total: float) -> str:
    lines = ["| slow test | outcome | seconds |", "|---|---|---:|"]
    lines += [f"| `{r['test']}` | {r['outcome']} | {r['seconds']:.1f} |" for r in rows]
    lines.append(f"| all ({len(rows)}) | {sum(r['outcome'] == 'passed' for r in rows)} passed | {total:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None, help="write the results here (and the table beside it as .md)")
    p.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "slow.xml"
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "pytest", "-m", "slow", "-q", "-p", "no:cacheprovider",
                                f"--junitxml={junit}", *args.pytest_args], cwd=ROOT)
        total = time.perf_counter() - start
        rows = read_junit(junit) if junit.is_file() else []
    if not rows:
        print("error: pytest ran no slow test (see its output above)", file=sys.stderr)
        return code or 2
    table = markdown(rows, total)
    print(table)
    if args.json:
        write_json(args.json, {**result_envelope("tests.slow_tests", argv), "pytest_exit": code, "seconds": total,
                               "tests": rows})
        write_text_atomic(Path(args.json).with_suffix(".md"), table + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
