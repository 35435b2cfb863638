"""Atomic writes: a file or folder appears complete, or not at all (a temporary sibling renamed into place).

The project's one atomic writer: every file and folder of results goes through here, the pipelines' own files
(data moments, fitted solvers and steps, the code of a saved folder) included, so it lives in the lowest layer;
every layer above uses it from here. A saved folder's code does not carry it (it only writes). Only score_toy keeps
its own small copy, so that it depends on nothing but torch, NumPy and matplotlib.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it is renamed onto ``path``, on error
    removed. A reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``final`` by rename, on error it is removed.

    A crash mid-write leaves ``final`` as it was (readers skip names starting with a dot).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(parent: str | Path, prefix: str = ".staging-") -> Iterator[Path]:
    """Yield a new hidden temporary folder inside ``parent`` (created if missing), for files that are moved into
    ``parent`` by ``os.replace`` once complete and checked (one file system, so each move is atomic). The folder
    and whatever is left in it are removed on exit, on success or error.

    For files that join a folder holding other things; :func:`atomic_dir` replaces the whole folder.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
