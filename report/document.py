"""A small report document: numbered, captioned figures and tables, each with the command that reproduces it,
written as Markdown and as a self-contained HTML folder (images copied beside the pages)."""

from __future__ import annotations

import html
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from training.atomic import atomic_dir


@dataclass
class Item:
    kind: str  # "figure" | "table" | "text" | "heading" | "subheading" | "markdown"
    body: str = ""  # markdown text, or a table as markdown
    caption: str = ""
    command: str = ""
    image: Path | None = None
    number: int = 0
    link_base: str = ""  # "markdown" items: the prefix of their relative links
    source_dir: Path | None = None  # "markdown" items: the folder their relative image paths start from


@dataclass
class Report:
    """Collects sections; figures and tables are numbered in order of addition."""

    title: str
    items: list[Item] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.items.append(Item("heading", text))

    def text(self, markdown: str) -> None:
        self.items.append(Item("text", markdown))

    def subheading(self, text: str) -> None:
        self.items.append(Item("subheading", text))

    def markdown(self, text: str, docs_link_base: str = "", source_dir: str | Path | None = None) -> None:
        """A block of Markdown with TeX math (e.g. an item of docs/theory.md); its relative links point into
        docs/, so they are prefixed with ``docs_link_base``; its images (relative to ``source_dir``) are copied
        into the report's figures, so the folder stays self-contained."""
        self.items.append(Item("markdown", text, link_base=docs_link_base,
                               source_dir=Path(source_dir) if source_dir else None))

    def figure(self, image: str | Path, caption: str, command: str = "") -> int:
        n = 1 + sum(i.kind == "figure" for i in self.items)
        self.items.append(Item("figure", caption=caption, command=command, image=Path(image), number=n))
        return n

    def table(self, rows: list[dict] | str, caption: str, command: str = "") -> int:
        """A table from rows (dicts with the same keys) or already written as Markdown."""
        n = 1 + sum(i.kind == "table" for i in self.items)
        body = rows if isinstance(rows, str) else markdown_table(rows)
        self.items.append(Item("table", body=body.strip(), caption=caption, command=command, number=n))
        return n

    def write(self, out: str | Path) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` (+ ``figures/``) into ``out``, atomically; return both paths."""
        out = Path(out)
        with atomic_dir(out) as tmp:
            (tmp / "figures").mkdir()
            md, body = self._render(tmp / "figures")
            (tmp / "report.md").write_text("\n".join(md))
            (tmp / "report.html").write_text(HTML.format(title=html.escape(self.title), body="\n".join(body)))
        return out / "report.md", out / "report.html"

    def _render(self, figures: Path) -> tuple[list[str], list[str]]:
        """The Markdown lines and the HTML body of the report; figures are copied into ``figures``."""
        md, body = [f"# {self.title}", ""], [f"<h1>{html.escape(self.title)}</h1>"]
        for item in self.items:
            if item.kind == "heading":
                md += [f"## {item.body}", ""]
                body.append(f"<h2>{html.escape(item.body)}</h2>")
            elif item.kind == "subheading":
                md += [f"### {item.body}", ""]
                body.append(f"<h3>{html.escape(item.body)}</h3>")
            elif item.kind == "text":
                md += [item.body, ""]
                body.append(f"<p>{_inline(item.body)}</p>")
            elif item.kind == "markdown":
                from report.markup import markdown_to_html, prefix_links

                text = _copy_images(item.body, item.source_dir, figures)
                md += [prefix_links(text, item.link_base), ""]
                body.append(f"<div class='md'>{markdown_to_html(text, item.link_base)}</div>")
            elif item.kind == "figure":
                name = f"fig{item.number:02d}_{item.image.name}"
                shutil.copy(item.image, figures / name)
                label = f"Figure {item.number}. {item.caption}"
                md += [f"![{label}](figures/{name})", "", f"*{label}*", ""]
                body.append(f'<figure><img src="figures/{html.escape(name)}" alt="{html.escape(label)}">'
                            f"<figcaption>{html.escape(label)}</figcaption></figure>")
            elif item.kind == "table":
                label = f"Table {item.number}. {item.caption}"
                md += [f"*{label}*", "", item.body, ""]
                body.append(f"<table><caption>{html.escape(label)}</caption>{_html_table(item.body)}</table>")
            if item.command:
                md += ["Reproduce with:", "", "```bash", item.command, "```", ""]
                body.append(f"<pre class='cmd'>$ {html.escape(item.command)}</pre>")
        return md, body


IMAGE = re.compile(r"!\[([^\]]*)\]\((?!https?:|/)([^)\s]+)\)")


def _copy_images(text: str, source_dir: Path | None, figures: Path) -> str:
    """``text`` with each relative image ``![alt](path)`` copied from ``source_dir`` into ``figures`` and its
    path rewritten to ``figures/...`` (a missing image is an error, not a broken picture in the report)."""
    if source_dir is None:
        return text

    def copy(m: re.Match) -> str:
        src = source_dir / m.group(2)
        if not src.is_file():
            raise FileNotFoundError(f"{src}: an image the report quotes is missing")
        name = "md_" + m.group(2).replace("/", "_")
        shutil.copy(src, figures / name)
        return f"![{m.group(1)}](figures/{name})"

    return IMAGE.sub(copy, text)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    fmt = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |"
                                                                                     for r in fmt])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _inline(text: str) -> str:
    """Escape text for HTML, keeping `code` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts)).replace("\n", "<br>")


def _html_table(md: str) -> str:
    """The rows of a Markdown table (or of several, one after another) as HTML: a row followed by a separator
    row (``|---|---:|``) is a header."""
    lines = [line.strip().strip("|").split("|") for line in md.splitlines() if line.strip()]
    if len(lines) < 2:
        return f"<tr><td>{html.escape(md)}</td></tr>"

    def is_separator(cells: list[str]) -> bool:
        return all(set(c.strip()) <= set("-:") and c.strip() for c in cells)

    out = []
    for i, cells in enumerate(lines):
        if is_separator(cells):
            continue
        tag = "th" if i + 1 < len(lines) and is_separator(lines[i + 1]) else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in cells) + "</tr>")
    return "<tbody>" + "".join(out) + "</tbody>"


def environment() -> list[dict]:
    """Package versions, CPU and threads, as table rows."""
    import torch

    rows = [{"item": "python", "value": sys.version.split()[0]},
            {"item": "platform", "value": platform.platform()},
            {"item": "cpu", "value": _cpu_name()},
            {"item": "cores (os.cpu_count)", "value": os.cpu_count()},
            {"item": "torch threads", "value": torch.get_num_threads()}]
    for pkg in ["torch", "diffusers", "accelerate", "datasets", "numpy", "scipy", "matplotlib", "safetensors"]:
        try:
            rows.append({"item": pkg, "value": metadata.version(pkg)})
        except metadata.PackageNotFoundError:
            rows.append({"item": pkg, "value": "not installed"})
    return rows


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }}
figcaption, caption {{ font-size: 0.92rem; color: #444; margin-top: .4rem; text-align: left; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
td, th {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }}
pre.cmd {{ background: #f5f5f5; padding: .4rem .6rem; font-size: .82rem; overflow-x: auto; }}
div.md {{ line-height: 1.45; }} div.md table td {{ text-align: right; }} math[display="block"] {{ margin: .6rem 0; }}
h2 {{ margin-top: 2.2rem; border-bottom: 1px solid #ddd; }}
@media print {{ body {{ max-width: none; margin: 0; }} figure, table {{ break-inside: avoid; }} }}
</style></head><body>
{body}
<script>
// Marks each image as loaded or broken, so a headless browser (tests/test_report.py) can check the report.
window.addEventListener("load", () => {{
  const imgs = [...document.images];
  imgs.forEach(i => i.dataset.ok = (i.complete && i.naturalWidth > 0) ? "1" : "0");
  document.body.dataset.images = imgs.length;
  document.body.dataset.broken = imgs.filter(i => i.dataset.ok === "0").length;
}});
</script>
</body></html>
"""
