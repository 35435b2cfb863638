"""The report's Q2 (report/q2.py) on the committed score_toy run (docs/figures/score_toy): every number of its
prose from that run, every reference resolved, the analysis written for the student's mixture whatever the order
of its components, and theory.md's links to score_toy's figures and tables turned into the report's references."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from report import q2
from report.document import Report
from report.homework import THEORY, declared_constants
from report.markup import theory_items
from report.numbers import Numbers

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "docs" / "figures" / "score_toy"


def q2_report(toy: q2.ToyRun) -> Report:
    r = Report("Q2", numbers=Numbers(declared_constants()))
    q2.add_theory(r, theory_items(THEORY), toy, "../docs/")
    q2.add_implementation(r, toy)
    q2.add_appendices(r, toy)
    return r


@pytest.fixture(scope="module")
def toy() -> q2.ToyRun:
    return q2.load_toy_run(TOY, "python -m score_toy --student_id 12345678 --out docs/figures/score_toy --force")


def test_q2_numbers_come_from_the_run_and_references_resolve(toy, tmp_path):
    r = q2_report(toy)
    assert r.unsourced_numbers() == []
    md, page = r.write(tmp_path / "out")
    text = md.read_text()
    assert "@fig:" not in text and "@tab:" not in text
    n_figures, n_tables = text.count("<a id=\"fig-"), text.count("<a id=\"tab-")
    assert n_figures == len(toy.figures) and n_tables == 4
    for kind, count in (("Figure", n_figures), ("Table", n_tables)):  # every "Figure N" names a figure that exists
        assert {int(n) for n in re.findall(rf"\b{kind} (\d+)\b", text)} == set(range(1, count + 1))
    assert not re.search(r"\bfigure \d", text)  # no lower-case reference by an old number
    for k in range(1, 6):
        assert f"### Q2 implementation {k}:" in text
    assert "### Q2 implementation 6" not in text and "## Appendix A: Song and Ermon" in text
    html = page.read_text()
    assert html.count("<math") > 20 and "$$" not in html  # the formulas render as MathML
    heavy = max(toy.metrics["mixture"]["weights"])
    assert f"{heavy:.3f}" in text  # the student's heavy weight, from its metrics


def test_the_analysis_follows_the_heavy_mode_not_the_component_order(toy):
    """The same mixture with its components listed the other way round reads the same: the text names the heavy
    mode by its weight, wherever it sits in metrics.json."""
    swapped = copy.deepcopy(toy.metrics)
    mix = swapped["mixture"]
    for key in ("weights", "means", "covariances"):
        mix[key] = mix[key][::-1]
    for row in swapped["samplers"]:
        row["weights"] = row["weights"][::-1]
    first = q2_report(toy)
    second = q2_report(q2.ToyRun(toy.folder, toy.command, swapped, toy.figures))
    assert second.prose() == first.prose()
    assert second.unsourced_numbers() == []


def test_theory_links_to_score_toy_become_references_and_exist_in_its_doc():
    text = "[a](score_toy.md#toy-samples), [b](score_toy.md#toy-sampler-metrics), [c](score_toy.md#metrics)"
    assert q2.toy_links_to_refs(text) == "a (@fig:toy-samples), b (@tab:toy-sampler-metrics), [c](score_toy.md#metrics)"
    anchors = set(re.findall(r'<a id="(toy-[\w-]+)"></a>', (ROOT / "docs" / "score_toy.md").read_text()))
    linked = set(re.findall(r"score_toy\.md#(toy-[\w-]+)", THEORY.read_text()))
    assert linked and linked <= anchors


def test_the_header_says_when_the_student_number_is_the_placeholder():
    placeholder = q2.placeholder_student()
    assert "--student_id" in q2.student_note(placeholder) and "placeholder" in q2.student_note(placeholder)
    assert q2.student_note(placeholder + 1) == ""
