"""``python -m sprites download [--to DIR]``: fetch the course's sprites files from the Hugging Face Hub.

The two files of DeepLearning.AI's "How Diffusion Models Work" (``sprites_1788_16x16.npy``, 89,400 x 16 x 16 x 3
uint8, and ``sprite_labels_nc_1788_16x16.npy``, 89,400 x 5 float64) come from the hub data set
``ashis-palai/sprites_image_dataset`` at a fixed revision. Both are downloaded into a temporary folder inside DIR,
checked (shape, dtype and identity: the labels' SHA-256, the images' git blob id) and only then renamed into DIR,
so DIR never holds a partial or unchecked file. Any failure (offline, a download error, a mismatch) removes the
temporary folder and stops with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from huggingface_hub import hf_hub_download

from pipelines.atomic import staging_dir
from pipelines.hub import hub_unreachable_reason
from sprites.data import COURSE_IMAGES, COURSE_LABELS, DATA_ENV, default_data_path, user_data_path

HUB_REPO = "ashis-palai/sprites_image_dataset"
HUB_REPO_TYPE = "dataset"
HUB_REVISION = "a24918819843abc0d1bee75a239024415081a87d"
# What the files must be; module constants so that tests can stand in small files for the hub's.
N_ROWS = 89_400
IMAGES_GIT_BLOB_ID = "b1fea8dd0c4f6f8ab64bea721918a035d75c11a7"  # the same blob as the course's and Kaggle's file
LABELS_SHA256 = "b71222bd58b57cd99b1b92d830393e86ce215e0f69602f2c82aad1522f030ed7"


class DownloadError(RuntimeError):
    """The download failed or gave unexpected files; the message says what and what to do, in one line."""


def default_download_path() -> Path:
    """``$SPRITEDIFF_DATA`` when it is set to a folder, else :func:`sprites.data.user_data_path`."""
    env = os.environ.get(DATA_ENV)
    if env and Path(env).suffix not in (".npz", ".npy"):
        return Path(env)
    return user_data_path()


def file_digests(path: Path, chunk: int = 1 << 20) -> tuple[str, str]:
    """(SHA-256, git blob id) of a file in one pass; the git blob id is sha1(b"blob <size>\\0" + content)."""
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(chunk):
            sha256.update(block)
            blob.update(block)
    return sha256.hexdigest(), blob.hexdigest()


def _expected(name: str) -> tuple[tuple[int, ...], np.dtype, str, str]:
    """(shape, dtype, identity kind, identity value) that the file ``name`` must have."""
    if name == COURSE_IMAGES:
        return (N_ROWS, 16, 16, 3), np.dtype(np.uint8), "git blob id", IMAGES_GIT_BLOB_ID
    return (N_ROWS, 5), np.dtype(np.float64), "sha256", LABELS_SHA256


def check_course_file(path: Path, name: str) -> None:
    """Raise a :class:`DownloadError` unless ``path`` is the course file ``name`` (shape, dtype, identity)."""
    shape, dtype, kind, want = _expected(name)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        got_shape, got_dtype = tuple(array.shape), array.dtype
        del array
    except (ValueError, OSError, EOFError) as exc:
        raise DownloadError(f"{name}: the downloaded file is not a readable .npy ({type(exc).__name__}: {exc}); "
                            "nothing was written, try again") from None
    if got_shape != shape or got_dtype != dtype:
        raise DownloadError(f"{name}: the downloaded array has shape {got_shape} and dtype {got_dtype}, expected "
                            f"{shape} {dtype}; nothing was written (the hub file may have changed)")
    sha256, blob = file_digests(path)
    got = blob if kind == "git blob id" else sha256
    if got != want:
        raise DownloadError(f"{name}: {kind} {got} does not match the expected {want}; the download is corrupt or "
                            "the hub file changed. Nothing was written; try again")


def _is_course_file(path: Path, name: str) -> bool:
    try:
        check_course_file(path, name)
    except DownloadError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def download_sprites(dest: str | Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Download and check the two course files, then move them into ``dest`` (default
    :func:`default_download_path`); files already there and correct are kept. Returns ``dest``."""
    dest = Path(dest).expanduser() if dest is not None else default_download_path()
    names = [n for n in (COURSE_IMAGES, COURSE_LABELS) if not _is_course_file(dest / n, n)]
    if not names:
        log(f"{dest} already holds both course files (checked)")
        return dest
    reason = hub_unreachable_reason()
    if reason:
        raise DownloadError(f"cannot download the sprites from the Hugging Face Hub: {reason}. Run it where "
                            f"the hub is reachable and copy {COURSE_IMAGES} and "
                            f"{COURSE_LABELS} into {dest} (or set ${DATA_ENV} to their folder)")
    with contextlib.ExitStack() as stack:
        try:
            tmp = stack.enter_context(staging_dir(dest, prefix=".download-"))
        except OSError as exc:
            raise DownloadError(f"cannot write to {dest} ({exc.strerror or exc}); choose another folder with "
                                "--to") from None
        ready = {}
        for name in names:
            log(f"downloading {name} from {HUB_REPO} (revision {HUB_REVISION[:12]})")
            try:
                got = hf_hub_download(HUB_REPO, name, repo_type=HUB_REPO_TYPE, revision=HUB_REVISION,
                                      local_dir=tmp)
            except Exception as exc:  # network and hub errors come in many types; all mean the same here
                raise DownloadError(f"could not download {name} from {HUB_REPO} ({_first_line(exc)}); nothing was "
                                    "written, try again") from None
            check_course_file(Path(got), name)
            ready[name] = Path(got)
        for name, path in ready.items():
            if (dest / name).exists():
                log(f"replacing {dest / name}: it is not the course file")
            os.replace(path, dest / name)
    return dest


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (0 done, 2 failed with a one-line message)."""
    parser = argparse.ArgumentParser(prog="python -m sprites", description="The sprites data set.")
    commands = parser.add_subparsers(dest="command", required=True, title="commands")
    download = commands.add_parser(
        "download", help="fetch the course's sprites files from the Hugging Face Hub",
        description=f"Download {COURSE_IMAGES} and {COURSE_LABELS} (the DeepLearning.AI course files) from the hub "
                    f"data set {HUB_REPO} at revision {HUB_REVISION}, check their shapes, dtypes and hashes, and put "
                    "them into DIR.")
    download.add_argument("--to", metavar="DIR", default=None,
                          help=f"target folder (default: ${DATA_ENV} if set, else {user_data_path()}, where "
                               "load_sprites() looks after ../shared/data/sprites)")
    from sprites import export

    export.add_command(commands)
    args = parser.parse_args(argv)
    if args.command == "export":
        return export.run(args)
    try:
        dest = download_sprites(args.to)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    print(f"sprites: {dest / COURSE_IMAGES} and {dest / COURSE_LABELS}")
    found = default_data_path()
    if found.resolve() != dest.resolve():
        print(f"note: load_sprites() reads {found} first; pass --data_path {dest} (or set {DATA_ENV}={dest}) to use "
              "these files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
