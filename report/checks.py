"""Checks of a written report: every "Figure N" / "Table N" the text names exists, every figure and table has a
caption, and every relative link and image resolves (tests/test_report.py runs them on a real report)."""

from __future__ import annotations

import re
from pathlib import Path

CAPTION = re.compile(r"^\*(Figure|Table) (\d+)\. \S", re.M)
MENTION = re.compile(r"\b(Figure|Table) (\d+)\b")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def dangling_references(markdown: str) -> list[str]:
    """The "Figure N" / "Table N" mentions with no captioned figure or table of that number."""
    captioned = {(kind, int(n)) for kind, n in CAPTION.findall(markdown)}
    return sorted({f"{kind} {n}" for kind, n in MENTION.findall(markdown) if (kind, int(n)) not in captioned})


def uncaptioned(markdown: str) -> list[str]:
    """Figures and tables numbered out of order or with gaps (each must be 1, 2, ... with a caption)."""
    problems = []
    for kind in ("Figure", "Table"):
        numbers = [int(n) for k, n in CAPTION.findall(markdown) if k == kind]
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append(f"{kind}s numbered {numbers}")
    images = len(re.findall(r"^!\[", markdown, re.M))
    if images != sum(k == "Figure" for k, _ in CAPTION.findall(markdown)) + len(
            re.findall(r"^!\[[^\]]*\]\(figures/md_", markdown, re.M)):
        problems.append("an image without a figure caption")
    return problems


def broken_links(report_md: Path) -> list[str]:
    """Relative link and image targets of ``report_md`` that do not exist (files, or #anchors of the page)."""
    text = report_md.read_text()
    anchors = set(ANCHOR.findall(text))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        if not path:
            if anchor not in anchors:
                broken.append(target)
        elif not (report_md.parent / path).exists():
            broken.append(target)
    return broken
