"""Open a report in headless Chromium: check that every image loads, and take a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--virtual-time-budget=5000"]


def find_chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _run(args: list[str], user_dir: Path) -> str:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found: install Debian's chromium package (apt-get install chromium)")
    cmd = [exe, *FLAGS, f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def image_status(page: Path, user_dir: Path) -> tuple[int, int]:
    """(images on the page, images that failed to load), as the page's own script records them."""
    dom = _run(["--dump-dom", page.resolve().as_uri()], user_dir)
    body = re.search(r"<body[^>]*>", dom)
    attrs = dict(re.findall(r'data-(images|broken)="(\d+)"', body.group(0) if body else ""))
    if "images" not in attrs:
        raise RuntimeError(f"{page}: the page did not finish loading in the browser")
    return int(attrs["images"]), int(attrs["broken"])


def screenshot(page: Path, out: Path, user_dir: Path, size: str = "1100,1500") -> Path:
    _run([f"--screenshot={out.resolve()}", f"--window-size={size}", "--hide-scrollbars", page.resolve().as_uri()],
         user_dir)
    return out


def recompress_pdf(src: Path, dst: Path) -> Path:
    """Write ``src`` again as ``dst``, losslessly smaller: every stream flate-compressed at the best level and the
    objects packed into object streams (pikepdf). The decoded content of every object stays the same."""
    import pikepdf

    with pikepdf.open(src) as pdf:
        pdf.save(dst, compress_streams=True, recompress_flate=True,
                 object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return Path(dst)


def print_pdf(page: Path, out: Path, user_dir: Path) -> Path:
    """Print ``page`` to a PDF (A4, no browser header or footer): what a student hands in. Chromium's file is
    recompressed (:func:`recompress_pdf`: the same text and pages at about two thirds of the size)."""
    out = Path(out)
    printed, tmp = out.with_name(f".{out.name}.printed.pdf"), out.with_name(f".{out.name}.tmp.pdf")
    try:
        _run([f"--print-to-pdf={printed.resolve()}", "--no-pdf-header-footer", page.resolve().as_uri()], user_dir)
        if not printed.is_file() or printed.stat().st_size == 0:
            raise RuntimeError(f"Chromium wrote no PDF for {page}")
        recompress_pdf(printed, tmp).replace(out)
    finally:
        printed.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out
