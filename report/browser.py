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


def print_pdf(page: Path, out: Path, user_dir: Path) -> Path:
    """Print ``page`` to a PDF (A4, no browser header or footer): what a student hands in."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp.pdf")
    _run([f"--print-to-pdf={tmp.resolve()}", "--no-pdf-header-footer", page.resolve().as_uri()], user_dir)
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no PDF for {page}")
    tmp.replace(out)
    return out
