"""Numbers in README.md and docs/*.md come from committed results, never from typing.

A decimal number in a page's prose (outside code, link targets and the tables quoted by
``python -m report.doc_tables``) must be one of:

- a declared constant of the course (``configs/report.yaml``: the schedule, the score_toy settings and the
  schedule's closed forms), as the report allows;
- a number that names its value: ``0.978<!-- evaluation/weights/sprite_features_v1.json:held_out_accuracy -->``, an
  HTML comment right after it holding a results file and a key path in it. For JSON the path is dotted keys and
  ``[i]`` list indices, or ``[key=value]`` for the first dict of a list whose ``key`` is ``value`` (``rows[setting=DDIM
  50].fid``); a ``.jsonl`` file is the list of its lines (``stats.jsonl:[step=500].loss``); for a Markdown table,
  ``[row]`` and a column header (``table.md:[DDIM 50 eta=0].precision``, the row whose first cell is ``DDIM 50
  eta=0``; ``[DDIM eta 0, moments|50]`` names the row by its first two cells), a number of that cell. The number
  must equal that value at its written precision, so a number found elsewhere in the same file, or in a table the
  page quotes, does not pass.

And no page says that what it shows was measured on another model than the shipped one.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from report.homework import declared_constants
from report.numbers import DECIMAL, NOT_PROSE, _rounds_to, _value_and_decimals

ROOT = Path(__file__).resolve().parents[1]
QUOTED = re.compile(r"<!-- table: (?P<path>\S+) -->(?P<body>.*?)<!-- end table -->", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
MARKED = re.compile(r"(?P<number>-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?)%?"
                    r"<!-- (?P<path>[\w./-]+\.(?:jsonl|json|md)):(?P<key>[^>]*?) -->")
STALE = re.compile(r"previous (default )?model|not re-?measured|earlier (default )?model", re.I)


def resolve(path: Path, key: str) -> list[float]:
    """The value at ``key`` of the results file ``path`` (see the module doc for the key syntax): one number for a
    JSON path, every number of the cell for a table key."""
    if path.suffix == ".md":
        m = re.fullmatch(r"\[(?P<row>[^\]]+)\]\.(?P<col>.+)", key)
        if not m:
            raise ValueError(f"{path}:{key}: a table key is [first cell].column header")
        blocks, block = [], []  # the file's tables: runs of lines that start with "|"
        for line in [*path.read_text().splitlines(), ""]:
            if line.lstrip().startswith("|"):
                block.append([c.strip() for c in line.strip().strip("|").split("|")])
            elif block:
                blocks, block = [*blocks, block], []
        lead = [c.strip() for c in m.group("row").split("|")]
        found = [(b[0], r) for b in blocks for r in b[2:] if r[:len(lead)] == lead and m.group("col") in b[0]]
        if len(found) != 1:
            raise ValueError(f"{path}:{key}: {len(found)} rows start with {lead} (name more leading cells: [a|b])")
        header, row = found[0]
        cell = row[header.index(m.group("col"))]
        numbers = [float(v.group(0).replace(",", "")) for v in DECIMAL.finditer(cell)]
        return numbers or [float(cell.strip("*%").replace(",", ""))]
    text = path.read_text()
    value = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else \
        json.loads(text)
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", key):
        if part.startswith("[") and "=" in part:
            field, want = part[1:-1].split("=", 1)
            value = next(v for v in value if str(v.get(field)) == want)
        elif part.startswith("["):
            value = value[int(part[1:-1])]
        else:
            value = value[part]
    return [float(value)]


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
        scale = 100 if m.group(0)[len(token)] == "%" and m.group("path").endswith((".json", ".jsonl")) else 1
        if not any(_rounds_to(v * scale, number, decimals) for v in value):
            bad.append(f"{token} ({ref} is {value[0] if len(value) == 1 else value})")
    return bad


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@cache
def course_constants() -> tuple[float, ...]:
    return tuple(declared_constants())


def unsourced(page: Path, root: Path = ROOT) -> list[str]:
    """The decimal numbers of the page's prose that neither name their value nor are a course constant."""
    text = MARKED.sub(" ", page.read_text())
    prose = NOT_PROSE.sub(" ", COMMENT.sub(" ", FENCE.sub(" ", QUOTED.sub(" ", text))))
    bad = []
    for m in DECIMAL.finditer(prose):
        value, decimals = _value_and_decimals(m.group(0))
        if not any(_rounds_to(c, value, decimals) for c in course_constants()):
            bad.append(m.group(0))
    return bad


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_number_in_prose_is_quoted_marked_or_a_course_constant(page):
    bad = unsourced(page)
    assert not bad, (f"{page.relative_to(ROOT)}: numbers typed into prose, from no quoted table, mark or course "
                     f"constant (quote the table, or name the value: NUMBER<!-- FILE:KEY -->): {bad}")


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
    (folder / "two.md").write_text("| a | b |\n|---|---|\n| x | 1.5 (0.9 to 2.1) |\n\ntext\n\n| setting | NFE | FID |\n"
                                   "|---|---:|---:|\n| DDIM | 10 | 2.07 |\n| DDIM | 50 | 1.84 |\n")
    two = "docs/figures/b/two.md"
    assert wrong_marks(f"0.9<!-- {two}:[x].b --> 1.84<!-- {two}:[DDIM|50].FID -->", tmp_path) == []  # a cell's
    # numbers; a row named by its first two cells, in the second table of the file
    assert len(wrong_marks(f"2.07<!-- {two}:[DDIM|50].FID -->", tmp_path)) == 1
    assert "2 rows start with" in wrong_marks(f"2.07<!-- {two}:[DDIM].FID -->", tmp_path)[0]  # ambiguous row
    (folder / "s.jsonl").write_text('{"step": 500, "loss": 0.0916}\n{"step": 1000, "loss": 0.0652}\n')
    assert wrong_marks("0.065<!-- docs/figures/b/s.jsonl:[step=1000].loss -->", tmp_path) == []
    assert len(wrong_marks("0.092<!-- docs/figures/b/s.jsonl:[step=1000].loss -->", tmp_path)) == 1
    page = tmp_path / "docs" / "p.md"
    page.write_text(f"Named [r.json](figures/b/r.json): 1.836 and 0.978<!-- {r}:acc -->.\n")
    assert unsourced(page, tmp_path) == ["1.836"]  # only a mark vouches, not a file named beside the number


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_shows_another_model_than_the_shipped_one(page):
    lines = [line for line in page.read_text().splitlines() if STALE.search(line)]
    assert not lines, f"{page.relative_to(ROOT)}: regenerate on the shipped model or remove: {lines}"


def test_the_check_finds_a_typed_number_and_accepts_a_quoted_or_marked_one(tmp_path):
    """The rule itself, on a page made here: a quoted cell, a marked value and a course constant pass; a typed
    number fails, and so does a marked number whose value changed."""
    (tmp_path / "docs" / "figures" / "b").mkdir(parents=True)
    (tmp_path / "docs" / "figures" / "b" / "table.md").write_text("| FID |\n|---:|\n| 0.298 |\n")
    (tmp_path / "docs" / "figures" / "b" / "results.json").write_text('{"fid": 1.83649, "time_s": 160.7}')
    r = "docs/figures/b/results.json"
    page = tmp_path / "docs" / "page.md"
    page.write_text("<!-- table: docs/figures/b/table.md -->\n| FID |\n|---:|\n| 0.298 |\n<!-- end table -->\n\n"
                    f"DDPM scores 0.298 (the table). DDIM scores 1.84<!-- {r}:fid --> in 161<!-- {r}:time_s --> s.\n\n"
                    "```bash\npython -m bench.b 0.777\n```\n\nbeta ends at 0.02.\n\n"
                    "Typed from memory: 0.343, and `code 0.1` and [a link](v0.3.md) are not prose.\n")
    assert unsourced(page, tmp_path) == ["0.298", "0.343"]  # a quoted table's cell must be named too
    marked = "scores 0.298<!-- docs/figures/b/table.md:[0.298].FID --> ("
    page.write_text(page.read_text().replace("scores 0.298 (", marked))
    assert unsourced(page, tmp_path) == ["0.343"]
    assert wrong_marks(page.read_text(), tmp_path) == []
    (tmp_path / r).write_text('{"fid": 1.9, "time_s": 160.7}')
    assert wrong_marks(page.read_text(), tmp_path) == [f"1.84 ({r}:fid is 1.9)"]
    assert STALE.search("*Measured on the previous default model, not re-measured*")
    assert not STALE.search("the shipped model, measured on 2 Dec")
