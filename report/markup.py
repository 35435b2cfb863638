"""Markdown with TeX math to HTML for the report: the prose of docs/theory.md, rendered offline.

Math is cut out first ($$...$$ display, $...$ inline), converted to MathML by latex2mathml (Chromium and every
modern browser draw MathML natively, so the HTML and the PDF need no script and no network), and put back after
Python-Markdown has turned the rest into HTML. A formula latex2mathml cannot read is shown as its TeX source.
"""

from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)\$(?!\$)")


def tex_to_mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any parse failure: show the source, never lose the formula
        return f"<code>{html.escape(tex.strip())}</code>"


def markdown_to_html(text: str, link_base: str = "") -> str:
    """HTML of Markdown ``text`` with its TeX math as MathML; relative links are prefixed with ``link_base``."""
    import markdown

    pieces: list[str] = []

    def keep(match: re.Match, display: bool) -> str:
        pieces.append(tex_to_mathml(match.group(1), display))
        return f"MATHPIECE{len(pieces) - 1}Z"

    text = DISPLAY.sub(lambda m: keep(m, True), text)
    text = INLINE.sub(lambda m: keep(m, False), text)
    out = markdown.markdown(text, extensions=["tables", "fenced_code"])
    if link_base:
        out = re.sub(r'href="(?!https?:|#|/)([^"]+)"', lambda m: f'href="{join_link(link_base, m.group(1))}"', out)
    return re.sub(r"MATHPIECE(\d+)Z", lambda m: pieces[int(m.group(1))], out)


def prefix_links(text: str, base: str) -> str:
    """Markdown ``text`` with its relative links ``[text](path)`` prefixed with ``base`` (images ``![..](..)``
    are left alone: the report copies them beside itself)."""
    if not base:
        return text
    return re.sub(r"(!?\[[^\]]*\])\((?!https?:|#|/)([^)]+)\)",
                  lambda m: m.group(0) if m.group(1)[0] == "!" else f"{m.group(1)}({join_link(base, m.group(2))})",
                  text)


def join_link(base: str, target: str) -> str:
    """``base`` + ``target`` with ``..`` folded (``../../docs/`` + ``../tests/x.py`` -> ``../../tests/x.py``)."""
    path, hash_, anchor = target.partition("#")
    return posixpath.normpath(base + path) + hash_ + anchor


def theory_items(path: str | Path) -> dict[int, tuple[str, str]]:
    """The numbered items of docs/theory.md: ``{n: (title, markdown body)}`` (body up to the next heading or
    rule), so the report quotes the one source instead of a copy."""
    items: dict[int, tuple[str, str]] = {}
    current, title, lines = None, "", []
    for line in Path(path).read_text().splitlines() + ["## end"]:
        m = re.match(r"^###\s+(\d+)\.\s+(.*)$", line)
        if m or line.startswith("## ") or line.strip() == "---":
            if current is not None:
                items[current] = (title, "\n".join(lines).strip())
            current, title, lines = (int(m.group(1)), m.group(2).strip(), []) if m else (None, "", [])
        elif current is not None:
            lines.append(line)
    return items
