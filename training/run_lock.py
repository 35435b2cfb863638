"""An OS lock on a run folder while a run writes it.

``fcntl.flock`` on ``<run>/run.lock``: the kernel holds the lock for the open file and drops it when the process
ends in any way (return, exception, ``kill -9``), so a stale lock never survives its process. The file stays
behind and records who took the lock last (pid, host, start time); it is read only when the lock is busy, to name
the running process in the refusal. POSIX only (``fcntl``), as the run folders' atomic renames already are.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from sprites.errors import ConfigError

LOCK_NAME = "run.lock"


class RunFolderBusy(ConfigError):
    """Another live process holds the run folder's lock."""


def holder(folder: Path) -> dict:
    """What the lock file of ``folder`` says about the process that took the lock last (``{}`` if unreadable)."""
    try:
        return json.loads((Path(folder) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}


class RunLock:
    """Hold ``<folder>/run.lock`` exclusively (``acquire`` creates the folder); use as a context manager."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunFolderBusy` in one line naming the holder (pid, host, start)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderBusy(self.busy_message()) from None
        self._fd = fd
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return self

    def busy_message(self) -> str:
        info = {}
        for _ in range(20):  # the holder writes its record just after it takes the lock
            if info := holder(self.folder):
                break
            time.sleep(0.05)
        who = (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
               if info else "a process that left no record")
        return (f"output_dir {self.folder} is in use by a running training ({who}); wait for it to end or "
                "choose another --output_dir")

    def release(self) -> None:
        """Drop the lock (the file stays; the OS drops the lock anyway when the process ends)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
