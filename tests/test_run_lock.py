"""The run folder's OS lock (training.run_lock): one holder at a time across real processes, the refusal names
the holder in one line, and the kernel drops the lock when the holder is killed (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from training.run_lock import LOCK_NAME, RunFolderBusy, RunLock, holder

from .train_helpers import MICRO, ROOT, train

HOLD = "import sys, time; from training.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); print('held', " \
       "flush=True); time.sleep(600)"


def hold_in_child(folder: Path) -> subprocess.Popen:
    """A second Python process that takes the lock of ``folder`` and sleeps."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_process_is_refused_naming_the_holder_until_the_holder_is_killed(tmp_path):
    folder = tmp_path / "run"
    child = hold_in_child(folder)
    try:
        with pytest.raises(RunFolderBusy) as info:
            RunLock(folder).acquire()
        message = str(info.value)
        assert "\n" not in message and str(folder) in message
        assert f"pid {child.pid} on {socket.gethostname()}, started " in message
        assert holder(folder)["pid"] == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with RunLock(folder) as lock:  # the kernel dropped the dead process's lock; the record is now ours
        assert holder(folder)["pid"] == os.getpid()
        with pytest.raises(RunFolderBusy):  # a second open file in the same process does not get it either
            RunLock(folder).acquire()
    assert lock._fd is None
    RunLock(folder).acquire().release()  # released on exit of the with block


def pause_run(out: Path) -> subprocess.Popen:
    """The micro training run, stopped alive after step 2 (tests/fault_injection.py pause@2)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.fault_injection", "pause@2", *MICRO, "--output_dir",
                             str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = []
    for line in proc.stderr:  # ends at the pause, or at EOF if the run died
        seen.append(line)
        if "paused at step 2" in line:
            return proc
    proc.wait()
    raise AssertionError("the first run ended before its pause:\n" + "".join(seen)[-2000:])


def test_two_trainings_on_one_folder_the_second_stops_in_one_line(tmp_path):
    """A run that is alive holds its folder: a second start (plain, --resume or --overwrite) stops with one line
    naming it and touches nothing (--overwrite moves nothing aside); after the first is killed with SIGKILL,
    --resume latest takes the folder and finishes the run."""
    out = tmp_path / "run"
    first = pause_run(out)
    try:
        before = sorted((p.relative_to(out).as_posix(), p.stat().st_mtime_ns) for p in out.rglob("*"))
        for extra in ([], ["--overwrite"]):
            r = train(out, *extra)
            assert r.returncode == 2, r.stderr[-2000:]
            assert r.stderr.strip().splitlines() == [
                f"error: output_dir {out} is in use by a running training (pid {first.pid} on "
                f"{socket.gethostname()}, started {holder(out)['started']}); wait for it to end or choose another "
                "--output_dir"]
        assert sorted((p.relative_to(out).as_posix(), p.stat().st_mtime_ns) for p in out.rglob("*")) == before
        assert not list(tmp_path.glob("run.replaced-*"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    r = train(out, "--resume", "latest")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "pipeline" / "model_index.json").is_file() and holder(out)["pid"] != first.pid
    assert (out / LOCK_NAME).is_file()  # left behind, unlocked: the next run takes it
