"""Markdown with TeX math to HTML for the report: the prose of docs/theory.md, rendered offline.

The text goes through a CommonMark parser (markdown-it-py, with GitHub's tables) and its dollar-math plugin
(mdit-py-plugins' ``dollarmath``): ``$...$`` is inline math, ``$$...$$`` display math, while code spans and fenced
blocks keep their dollars as written and ``\\$`` is a plain dollar sign. A ``$`` followed by a digit does not close
a formula (``$5 and $6`` stays text). Each formula becomes MathML through latex2mathml (Chromium and every modern
browser draw MathML natively, so the HTML and the PDF need no script and no network); a formula latex2mathml
cannot read is shown as its TeX source.
"""

from __future__ import annotations

import html
import posixpath
import re
from functools import lru_cache
from pathlib import Path


def tex_to_mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any parse failure: show the source, never lose the formula
        return f"<code>{html.escape(tex.strip())}</code>"


@lru_cache(maxsize=1)
def _parser():
    """markdown-it (CommonMark + tables) with dollar math rendered as MathML in place of the plugin's markup."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    dollarmath_plugin(md, allow_labels=False, allow_digits=False, double_inline=True)
    for rule, display in (("math_inline", False), ("math_inline_double", True), ("math_block", True)):
        md.add_render_rule(rule, lambda self, tokens, idx, options, env, display=display:
                           tex_to_mathml(tokens[idx].content, display) + ("\n" if tokens[idx].block else ""))
    return md


def markdown_to_html(text: str, link_base: str = "") -> str:
    """HTML of Markdown ``text`` with its TeX math as MathML; relative links are prefixed with ``link_base``."""
    out = _parser().render(text)
    if link_base:
        out = re.sub(r'href="(?!https?:|#|/)([^"]+)"', lambda m: f'href="{join_link(link_base, m.group(1))}"', out)
    return out


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
