"""Output folders of the benchmarks: they appear only when complete and never replace unrelated data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.atomic import atomic_dir

__all__ = ["OUTPUT_SUFFIXES", "check_output_dir", "output_dir"]

OUTPUT_SUFFIXES = {".png", ".json", ".md", ".npz"}


def check_output_dir(directory: str | Path, marker: str, overwrite: bool) -> None:
    """Refuse (``FileExistsError``) an existing non-empty ``directory`` unless ``overwrite``; even then refuse one
    that does not look like an earlier output of the same command (no ``marker`` file, or files other than
    .png/.json/.md/.npz), so a mistyped path cannot wipe unrelated data. Call before any expensive work."""
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a folder")
    entries = list(directory.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f"{directory} already holds results ({len(entries)} entries); pass --overwrite to "
                              "replace them, or choose another --out")
    if not (directory / marker).is_file():
        raise FileExistsError(f"{directory} has no {marker}: it is not an output of this command; refusing to replace "
                              "it even with --overwrite")
    others = [p.name for p in entries if p.is_dir() or p.suffix.lower() not in OUTPUT_SUFFIXES]
    if others:
        raise FileExistsError(f"{directory} holds other files or folders ({others[:3]}); refusing to replace it")


@contextmanager
def output_dir(directory: str | Path, marker: str, overwrite: bool) -> Iterator[Path]:
    """A temporary sibling folder to write into (:func:`pipelines.atomic.atomic_dir`); on success it replaces
    ``directory`` (checked by :func:`check_output_dir` before and after), on failure it is deleted and
    ``directory`` is untouched."""
    directory = Path(directory)
    check_output_dir(directory, marker, overwrite)
    with atomic_dir(directory) as tmp:
        yield tmp
        if not (tmp / marker).is_file():
            raise RuntimeError(f"internal error: {marker} was not written")
        check_output_dir(directory, marker, overwrite)  # again: another run may have written meanwhile
