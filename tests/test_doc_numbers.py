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

A number may name its value: ``0.978<!-- evaluation/weights/sprite_features_v1.json:held_out_accuracy -->``, an
HTML comment right after it holding a results file and a key path in it. For JSON the path is dotted keys and
``[i]`` list indices, or ``[key=value]`` for the first dict of a list whose ``key`` is ``value`` (``rows[setting=DDIM
50].fid``); for a Markdown table, ``[row]`` and a column header (``table.md:[DDIM 50 eta=0].precision``, the row whose
first cell is ``DDIM 50 eta=0``). The number must equal that value at its written precision. On the pages of
``STRICT`` every number of the prose outside quoted tables and course constants must name its value this way (a
named file no longer vouches for it).
"""

from __future__ import annotations

import json
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
MARKED = re.compile(r"(?P<number>-?\d[\d,]*(?:\.\d+)?)%?<!-- (?P<path>[\w./-]+\.(?:json|md)):(?P<key>[^>]*?) -->")
STRICT = {"docs/ddpm_vs_ddim.md", "docs/evaluation.md", "docs/guidance.md"}
STALE = re.compile(r"previous (default )?model|not re-?measured|earlier (default )?model", re.I)


def resolve(path: Path, key: str) -> float:
    """The value at ``key`` of the results file ``path`` (see the module doc for the key syntax)."""
    if path.suffix == ".md":
        m = re.fullmatch(r"\[(?P<row>[^\]]+)\]\.(?P<col>.+)", key)
        if not m:
            raise ValueError(f"{path}:{key}: a table key is [first cell].column header")
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in path.read_text().splitlines()
                if line.lstrip().startswith("|")]
        header, body = rows[0], [r for r in rows[2:]]
        row = next(r for r in body if r[0] == m.group("row"))
        cell = row[header.index(m.group("col"))].strip("*%")
        return float(cell.replace(",", ""))
    value = json.loads(path.read_text())
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", key):
        if part.startswith("[") and "=" in part:
            field, want = part[1:-1].split("=", 1)
            value = next(v for v in value if str(v.get(field)) == want)
        elif part.startswith("["):
            value = value[int(part[1:-1])]
        else:
            value = value[part]
    return float(value)


def wrong_marks(text: str, root: Path = ROOT) -> list[str]:
    """The marked numbers of ``text`` that differ from their named value at their precision (or name none)."""
    bad = []
    for m in MARKED.finditer(text):
        token, ref = m.group("number"), f"{m.group('path')}:{m.group('key')}"
        try:
            value = resolve(root / m.group("path"), m.group("key"))
        except (OSError, KeyError, IndexError, StopIteration, ValueError, TypeError) as exc:
            bad.append(f"{token} ({ref}: {type(exc).__name__} {exc})")
            continue
        number, decimals = _value_and_decimals(token)
        if not _rounds_to(value * (100 if m.group(0)[len(token)] == "%" else 1), number, decimals):
            bad.append(f"{token} ({ref} is {value})")
    return bad


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


def unsourced(page: Path, root: Path = ROOT, strict: bool | None = None) -> list[str]:
    """The decimal numbers of the page's prose that no quoted table, named results file or constant holds (on a
    strict page: no quoted table, constant or mark of its own)."""
    text = page.read_text()
    if strict is None:
        strict = page.resolve().relative_to(root.resolve()).as_posix() in STRICT
    if strict:
        text = MARKED.sub(" ", text)
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
                sources = [] if strict else [x for p in named_results(para + "\n" + code_before, page, root)
                                             for x in numbers_of(p)]
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
def test_every_marked_number_equals_its_named_value(page):
    bad = wrong_marks(page.read_text())
    assert not bad, f"{page.relative_to(ROOT)}: marked numbers that are not their named value: {bad}"


def test_marks_resolve_json_paths_and_table_cells_at_the_quoted_precision(tmp_path):
    """The markup on files made here: a JSON path, a list selection, a table cell; a right number at a coarser
    precision passes, a number of the same file under another key fails, as does a key that is not there."""
    folder = tmp_path / "docs" / "figures" / "b"
    folder.mkdir(parents=True)
    (folder / "r.json").write_text('{"rows": [{"setting": "DDIM 50", "fid": 1.83649}, {"setting": "DDPM", '
                                   '"fid": 0.29812}], "acc": 0.97765}')
    (folder / "t.md").write_text("| setting | FID | share |\n|---|---:|---:|\n| DDPM 500 | 0.298 | 14.5% |\n")
    r, t = "docs/figures/b/r.json", "docs/figures/b/t.md"
    good = (f"1.84<!-- {r}:rows[0].fid --> 0.298<!-- {r}:rows[setting=DDPM].fid --> 97.8%<!-- {r}:acc --> "
            f"0.298<!-- {t}:[DDPM 500].FID --> 14.5<!-- {t}:[DDPM 500].share -->")
    assert wrong_marks(good, tmp_path) == []
    assert len(wrong_marks(f"0.298<!-- {r}:rows[0].fid -->", tmp_path)) == 1  # in the file, not at that key
    assert len(wrong_marks(f"0.978<!-- {r}:accuracy -->", tmp_path)) == 1
    page = tmp_path / "docs" / "p.md"
    page.write_text(f"Named [r.json](figures/b/r.json): 1.836 and 0.978<!-- {r}:acc -->.\n")
    assert unsourced(page, tmp_path, strict=False) == []  # the loose rule: the named file holds 1.836
    assert unsourced(page, tmp_path, strict=True) == ["1.836"]  # the strict one: only a mark vouches


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
