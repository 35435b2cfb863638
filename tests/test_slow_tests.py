"""tests.slow_tests reads pytest's JUnit XML into rows (outcome, seconds) and its table; the default test command
leaves the slow tests out."""

from __future__ import annotations

from pathlib import Path

from tests.slow_tests import markdown, read_junit

ROOT = Path(__file__).resolve().parents[1]

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.test_a" name="test_ok" time="61.250"/>
<testcase classname="tests.test_a" name="test_bad" time="2.5"><failure message="assert 1 == 2">x</failure></testcase>
<testcase classname="tests.test_b" name="test_skip[x]" time="0.001"><skipped message="no browser"/></testcase>
</testsuite></testsuites>"""


def test_rows_and_table_from_junit(tmp_path):
    path = tmp_path / "j.xml"
    path.write_text(JUNIT)
    rows = read_junit(path)
    assert rows == [{"test": "tests/test_a.py::test_ok", "outcome": "passed", "seconds": 61.25},
                    {"test": "tests/test_a.py::test_bad", "outcome": "failed", "seconds": 2.5},
                    {"test": "tests/test_b.py::test_skip[x]", "outcome": "skipped", "seconds": 0.001}]
    table = markdown(rows, 70.0).splitlines()
    assert table[2] == "| `tests/test_a.py::test_ok` | passed | 61.2 |" and table[-1] == "| all (3) | 1 passed | 70.0 |"


def test_default_run_leaves_the_slow_tests_out_and_bench_selects_them():
    """pyproject's addopts deselect the ``slow`` mark; tests.slow_tests selects it (``-m slow``, which pytest lets
    override the addopts' ``-m``); the torch.compile test carries the mark."""
    import re
    import shlex

    from tests.test_speed_options import test_torch_compile_gives_the_same_samples as compile_test

    addopts = shlex.split(re.search(r'^addopts = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1])
    assert addopts[addopts.index("-m") + 1] == "not slow"
    assert any(m.name == "slow" for m in compile_test.pytestmark)
    assert '"-m", "slow"' in (ROOT / "tests" / "slow_tests.py").read_text()


def test_ci_runs_the_slow_tests_after_the_default_command_and_they_include_the_two_process_launches():
    """.ci/run: the default command first (it must pass on its own), then tests.slow_tests, whose set holds the
    two-process training equality and the refused two-process launch (both multi-process: accelerate launch
    --multi_gpu with ACCELERATE_USE_CPU=1, two gloo processes)."""
    import subprocess
    import sys

    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines.index("bash scripts/test.sh") < lines.index("python -m tests.slow_tests") == len(lines) - 1
    assert "set -euo pipefail" in lines  # a failing default command stops CI before the slow tests
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "slow", "-p",
                             "no:cacheprovider", "tests/test_train_faults.py", "tests/test_train_settings.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    for name in ("test_train_faults.py::test_two_processes_match_one_with_the_same_global_batch",
                 "test_train_settings.py::test_refused_two_process_launch_stops_every_process_with_one_message"):
        assert f"tests/{name}" in listed
    from tests.test_train_faults import LAUNCH_2

    assert LAUNCH_2[LAUNCH_2.index("--num_processes") + 1] == "2" and "--multi_gpu" in LAUNCH_2
