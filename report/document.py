"""A small report document: numbered, captioned figures and tables, referred to by label, each linked to the
command that reproduces it in an appendix of commands (each command printed once), written as Markdown and as a
self-contained HTML folder (images copied beside the pages).

Prose refers to a figure or table as ``@fig:label`` / ``@tab:label``; :meth:`Report.write` numbers them in order and
replaces every reference with "Figure N" / "Table N" (an unknown label is an error, never a wrong number)."""

from __future__ import annotations

import dataclasses
import html
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from pipelines.atomic import atomic_dir
from report.numbers import Numbers, unsourced
from sprites.machine import cpu_model


@dataclass
class Item:
    kind: str  # "figure" | "table" | "text" | "heading" | "appendix" | "subheading" | "markdown" | "command"
    body: str = ""  # markdown text, or a table as markdown
    caption: str = ""
    command: str = ""
    image: Path | None = None
    number: int = 0
    label: str = ""  # figures and tables: the name prose refers to them by (@fig:label, @tab:label)
    link_base: str = ""  # "markdown" items: the prefix of their relative links
    source_dir: Path | None = None  # "markdown" items: the folder their relative image paths start from
    quoted: bool = False  # "markdown" items quoted whole from a page whose numbers its own tests check


class ReportError(ValueError):
    """A report that would contradict itself: a reference to no figure or table, or a label used twice."""


REF = re.compile(r"@(fig|tab|cmd|app):([\w-]+)")


@dataclass
class Report:
    """Collects sections; figures and tables are numbered in order of addition; ``numbers`` formats (and
    remembers) every measured number the prose quotes (report/numbers.py)."""

    title: str
    items: list[Item] = field(default_factory=list)
    numbers: Numbers = field(default_factory=Numbers)

    def num(self, value: float, spec: str = ".3g") -> str:
        """``value`` formatted with ``spec``, remembered as a number this run wrote."""
        return self.numbers.fmt(value, spec)

    def heading(self, text: str) -> None:
        self.items.append(Item("heading", text))

    def appendix(self, title: str, label: str) -> str:
        """Start the next appendix (lettered A, B, ... in order; the commands are the last); return ``@app:label``,
        which prose anywhere may use to name it."""
        if any(i.kind == "appendix" and i.label == label for i in self.items):
            raise ReportError(f"appendix label @app:{label} is used twice")
        n = sum(i.kind == "appendix" for i in self.items)
        self.items.append(Item("appendix", title, label=label, number=n))
        return f"@app:{label}"

    def text(self, markdown: str) -> None:
        self.items.append(Item("text", markdown))

    def subheading(self, text: str) -> None:
        self.items.append(Item("subheading", text))

    def markdown(self, text: str, docs_link_base: str = "", source_dir: str | Path | None = None,
                 quoted: bool = False) -> None:
        """A block of Markdown with TeX math (e.g. an item of docs/theory.md); its relative links point into
        docs/, so they are prefixed with ``docs_link_base``; its images (relative to ``source_dir``) are copied
        into the report's figures, so the folder stays self-contained."""
        self.items.append(Item("markdown", text, link_base=docs_link_base,
                               source_dir=Path(source_dir) if source_dir else None, quoted=quoted))

    def figure(self, image: str | Path, caption: str, command: str = "", label: str = "") -> str:
        """Add the next figure; return the reference ``@fig:label`` (a label is made up when none is given)."""
        n = 1 + sum(i.kind == "figure" for i in self.items)
        label = self._new_label("fig", label or f"auto{n}")
        self.items.append(Item("figure", caption=caption, command=command, image=Path(image), number=n,
                               label=label))
        return f"@fig:{label}"

    def table(self, rows: list[dict] | str, caption: str, command: str = "", label: str = "") -> str:
        """Add the next table, from rows (dicts with the same keys) or already written as Markdown; return its
        reference ``@tab:label``."""
        n = 1 + sum(i.kind == "table" for i in self.items)
        label = self._new_label("tab", label or f"auto{n}")
        body = rows if isinstance(rows, str) else markdown_table(rows)
        self.items.append(Item("table", body=body.strip(), caption=caption, command=command, number=n,
                               label=label))
        return f"@tab:{label}"

    def _new_label(self, kind: str, label: str) -> str:
        if any(i.kind == ("figure" if kind == "fig" else "table") and i.label == label for i in self.items):
            raise ReportError(f"label @{kind}:{label} is used twice; give each figure and table its own label")
        return label

    def commands(self) -> list[str]:
        """Every command of the report, once each, in order of first use (the appendix's numbering)."""
        seen: dict[str, None] = {}
        for item in self.items:
            if item.command:
                seen.setdefault(item.command, None)
        return list(seen)

    def references(self) -> dict[str, str]:
        """``{"@fig:label": "Figure 3", "@tab:x": "Table 1", "@cmd:..."}``: what each reference prints."""
        refs = {f"@{'fig' if i.kind == 'figure' else 'tab'}:{i.label}":
                f"{'Figure' if i.kind == 'figure' else 'Table'} {i.number}"
                for i in self.items if i.kind in ("figure", "table")}
        refs.update({f"@cmd:C{k}": f"command C{k}" for k in range(1, len(self.commands()) + 1)})
        refs.update({f"@app:{i.label}": f"Appendix {letter(i.number)}" for i in self.items if i.kind == "appendix"})
        if self.commands():
            refs["@app:commands"] = f"Appendix {letter(sum(i.kind == 'appendix' for i in self.items))}"
        return refs

    def resolve(self, text: str) -> str:
        """``text`` with every ``@fig:`` / ``@tab:`` reference replaced by its number; unknown ones raise."""
        refs = self.references()

        def sub(m: re.Match) -> str:
            if m.group(0) not in refs:
                raise ReportError(f"{m.group(0)} refers to no figure or table of the report (known: "
                                  f"{', '.join(sorted(refs)) or 'none'})")
            return refs[m.group(0)]

        return REF.sub(sub, text)

    def prose(self) -> list[str]:
        """The report's prose as written (text, theory Markdown and captions; not tables nor commands)."""
        return [self.resolve(i.caption if i.kind in ("figure", "table") else i.body)
                for i in self.items if i.kind in ("text", "markdown", "figure", "table") and not i.quoted]

    def unsourced_numbers(self) -> list[str]:
        """Decimal numbers in the prose that this run did not write and that are no declared constant."""
        return [tok for text in self.prose() for tok in unsourced(text, self.numbers)]

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
        commands = {c: f"C{k}" for k, c in enumerate(self.commands(), start=1)}
        for item in [*self.items, *self._appendix(commands)]:
            item = dataclasses.replace(item, body=self.resolve(item.body), caption=self.resolve(item.caption))
            if item.kind in ("heading", "appendix"):
                title = f"Appendix {letter(item.number)}: {item.body}" if item.kind == "appendix" else item.body
                md += [f"## {title}", ""]
                body.append(f"<h2>{html.escape(title)}</h2>")
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
                md += [f'<a id="fig-{item.label}"></a>', "", f"![Figure {item.number}](figures/{name})", "",
                       f"*{label}*{_command_link_md(item, commands)}", ""]
                body.append(f'<figure id="fig-{html.escape(item.label)}"><img src="figures/{html.escape(name)}" '
                            f'alt="Figure {item.number}"><figcaption>{html.escape(label)}'
                            f"{_command_link_html(item, commands)}</figcaption></figure>")
            elif item.kind == "table":
                label = f"Table {item.number}. {item.caption}"
                md += [f'<a id="tab-{item.label}"></a>', "", f"*{label}*{_command_link_md(item, commands)}", "",
                       item.body, ""]
                # the caption above the table as a figcaption: the page's width, not the table's
                body.append(f'<figure class="table" id="tab-{html.escape(item.label)}"><figcaption>'
                            f"{html.escape(label)}{_command_link_html(item, commands)}</figcaption>"
                            f"<table>{_html_table(item.body)}</table></figure>")
            elif item.kind == "command":
                md += [f'<a id="cmd-{item.label}"></a>**{item.label}**', "", "```bash", item.body, "```", ""]
                body.append(f"<p class='cmdname' id='cmd-{item.label}'><b>{item.label}</b></p>"
                            f"<pre class='cmd'>$ {html.escape(item.body)}</pre>")
        return md, body

    def _appendix(self, commands: dict[str, str]) -> list[Item]:
        """The appendix of commands: each command once, named C1, C2, ... as the captions link to them."""
        if not commands:
            return []
        n = sum(i.kind == "appendix" for i in self.items)
        return [Item("appendix", "the commands", label="commands", number=n),
                Item("text", "Each figure and table names the command that made it; run from the project folder "
                             "with its virtual environment active."),
                *(Item("command", cmd, label=name) for cmd, name in commands.items())]


def letter(n: int) -> str:
    """The letter of the ``n``-th appendix (0: A)."""
    return chr(ord("A") + n)


def _command_link_md(item: Item, commands: dict[str, str]) -> str:
    name = commands.get(item.command)
    return f" [Command {name}](#cmd-{name})." if name else ""


def _command_link_html(item: Item, commands: dict[str, str]) -> str:
    name = commands.get(item.command)
    return f' <a href="#cmd-{name}">Command {name}</a>.' if name else ""


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
            {"item": "cpu", "value": cpu_model()},
            {"item": "cores (os.cpu_count)", "value": os.cpu_count()},
            {"item": "torch threads", "value": torch.get_num_threads()}]
    for pkg in ["torch", "diffusers", "accelerate", "datasets", "numpy", "scipy", "matplotlib", "safetensors"]:
        try:
            rows.append({"item": pkg, "value": metadata.version(pkg)})
        except metadata.PackageNotFoundError:
            rows.append({"item": pkg, "value": "not installed"})
    return rows


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }}
figcaption, caption {{ font-size: 0.92rem; color: #444; margin-top: .4rem; text-align: left; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
td, th {{ border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }}
pre.cmd {{ background: #f5f5f5; padding: .4rem .6rem; font-size: .82rem; white-space: pre-wrap;
  overflow-wrap: anywhere; }}
p.cmdname {{ margin: .8rem 0 0; }}
figure.table figcaption {{ margin: 0 0 .3rem; }} figure.table table {{ margin: 0; }}
div.md {{ line-height: 1.45; }} div.md table td {{ text-align: right; }} math[display="block"] {{ margin: .6rem 0; }}
h2 {{ margin-top: 2.2rem; border-bottom: 1px solid #ddd; }}
table {{ max-width: 100%; }} td, th {{ overflow-wrap: anywhere; }}
@media print {{ body {{ max-width: none; margin: 0; }} figure, pre.cmd {{ break-inside: avoid; }}
  p.cmdname, h2, h3 {{ break-after: avoid; }} h2 {{ break-before: auto; }}
  table {{ font-size: 0.72rem; }} td, th {{ padding: .15rem .3rem; }} }}
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
