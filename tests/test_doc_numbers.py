"""Numbers in README.md and docs/*.md come from committed results, never from typing (issue 20, item 1).

A decimal number in a page's prose (outside code, link targets, comments and the tables quoted by
``python -m bench.doc_tables``) must be one of:

- a number shown in a table the same page quotes (``<!-- table: PATH -->``), as shown there: the prose points at
  the table and goes stale with it;
- at its precision, a number of a results file named in the same paragraph or in the code block just before it
  (a path such as ``docs/figures/priors/results.json``, a folder such as ``--out docs/figures/guidance``, or a
  relative link): the command and the file are next to the number;
- at its precision, a declared constant of the course (``configs/report.yaml``: the schedule, the score_toy
  settings and the schedule's closed forms), as the report allows.

And no page says that what it shows was measured on another model than the shipped one.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from report.homework import declared_constants
from report.numbers import DECIMAL, NOT_PROSE, _canonical, _rounds_to, _value_and_decimals

ROOT = Path(__file__).resolve().parents[1]
QUOTED = re.compile(r"<!-- table: (?P<path>\S+) -->(?P<body>.*?)<!-- end table -->", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
PATHLIKE = re.compile(r"[\w.][\w./-]*")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Where results live: a benchmark's folder under docs/figures (and docs/speed/), the JSON beside a doc, the sprite
# network's record (evaluation/weights), a shipped model's training record and JSON files (not its card), the
# configs (the settings a run was made with).
RESULTS = ("docs/figures/", "docs/speed/", "configs/", "evaluation/weights/")
RESULT_SUFFIXES = {".json", ".jsonl", ".md", ".yaml", ".txt"}
STALE = re.compile(r"previous (default )?model|not re-?measured|earlier (default )?model", re.I)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def paragraphs(text: str) -> list[tuple[str, str]]:
    """(paragraph, the fenced code block just before it or "") for every paragraph outside fenced code."""
    out, code_before, pos = [], "", 0
    for m in [*FENCE.finditer(text), None]:
        chunk = text[pos:m.start()] if m else text[pos:]
        for para in (p for p in re.split(r"\n[ \t]*\n", chunk) if p.strip()):
            out.append((para, code_before))
            code_before = ""
        if m:
            code_before, pos = m.group(0), m.end()
    return out


def is_results(path: Path, root: Path = ROOT) -> bool:
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        return False
    inside = rel.startswith(RESULTS) or (rel.startswith("docs/") and rel.endswith(".json")) or \
        (rel.startswith("pretrained/") and ("/training" in rel or rel.endswith(".json")))
    return inside and path.exists()


@cache
def numbers_of(path: Path) -> tuple[float, ...]:
    """Every number written in a results file, or in the results files of a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    values = []
    for f in (f for f in files if f.suffix in RESULT_SUFFIXES):
        for m in NUMBER.finditer(f.read_text(errors="replace")):
            try:
                values.append(float(m.group(0).replace(",", "")))
            except ValueError:
                continue
    return tuple(values)


@cache
def course_constants() -> tuple[float, ...]:
    return tuple(declared_constants())


def named_results(text: str, page: Path, root: Path = ROOT) -> list[Path]:
    """The results files and folders that ``text`` names (from the project root or relative to the page)."""
    found = set()
    for m in PATHLIKE.finditer(text):
        token = m.group(0).rstrip(".,:;")
        for base in {root, page.parent}:
            if "/" in token or token.endswith(".json"):
                p = base / token
                if is_results(p, root):
                    found.add(p.resolve())
    return sorted(found)


def unsourced(page: Path, root: Path = ROOT) -> list[str]:
    """The decimal numbers of the page's prose that no quoted table, named results file or constant holds."""
    text = page.read_text()
    shown = {_canonical(m.group(0)) for q in QUOTED.finditer(text) for m in DECIMAL.finditer(q.group("body"))}
    constants = course_constants()
    bad = []
    for para, code_before in paragraphs(QUOTED.sub("\n\n", text)):
        prose = NOT_PROSE.sub(" ", COMMENT.sub(" ", para))
        sources = None
        for m in DECIMAL.finditer(prose):
            token = m.group(0)
            if _canonical(token) in shown:
                continue
            value, decimals = _value_and_decimals(token)
            if sources is None:
                sources = [x for p in named_results(para + "\n" + code_before, page, root) for x in numbers_of(p)]
            if not any(_rounds_to(c, value, decimals) for c in (*constants, *sources)):
                bad.append(token)
    return bad


# Pages whose owners have not yet brought them under the rule, each with what is left. strict: the test fails as
# soon as the page passes, so the entry cannot outlive its reason.
PENDING: dict[str, str] = {}


def _page_param(page: Path):
    rel = page.relative_to(ROOT).as_posix()
    marks = [pytest.mark.xfail(reason=PENDING[rel], strict=True)] if rel in PENDING else []
    return pytest.param(page, id=rel, marks=marks)


@pytest.mark.parametrize("page", [_page_param(p) for p in pages()])
def test_every_number_in_prose_is_quoted_or_from_a_named_results_file(page):
    bad = unsourced(page)
    assert not bad, (f"{page.relative_to(ROOT)}: numbers typed into prose, from no quoted table, named results "
                     f"file or course constant (quote the table, or name the file): {bad}")


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_shows_another_model_than_the_shipped_one(page):
    lines = [line for line in page.read_text().splitlines() if STALE.search(line)]
    assert not lines, f"{page.relative_to(ROOT)}: regenerate on the shipped model or remove: {lines}"


def test_the_check_finds_a_typed_number_and_accepts_a_quoted_or_named_one(tmp_path):
    """The rule itself, on a page made here: a quoted cell and a named file's value pass, a typed one fails."""
    (tmp_path / "docs" / "figures" / "b").mkdir(parents=True)
    (tmp_path / "docs" / "figures" / "b" / "table.md").write_text("| FID |\n|---:|\n| 0.298 |\n")
    (tmp_path / "docs" / "figures" / "b" / "results.json").write_text('{"fid": 1.83649, "time_s": 160.7}')
    page = tmp_path / "docs" / "page.md"
    page.write_text("<!-- table: docs/figures/b/table.md -->\n| FID |\n|---:|\n| 0.298 |\n<!-- end table -->\n\n"
                    "DDPM scores 0.298 (the table).\n\n"
                    "```bash\npython -m bench.b --out docs/figures/b\n```\n\nDDIM scores 1.84 in 161 s.\n\n"
                    "Typed from memory: 0.343, and `code 0.1` and [a link](v0.3.md) are not prose.\n\n"
                    "The folder [figures/b/results.json](figures/b/results.json) says 1.836.\n")
    assert unsourced(page, tmp_path) == ["0.343"]
    page.write_text(page.read_text().replace("python -m bench.b --out docs/figures/b", "python -m bench.b"))
    assert unsourced(page, tmp_path) == ["1.84", "0.343"]  # the command no longer names the file next to the number
    assert STALE.search("*Measured on the previous default model, not re-measured*")
    assert not STALE.search("the shipped model, measured on 2 Dec")
