"""The report's trust machinery: numbers in prose come from results; references and links resolve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from report.checks import broken_links, dangling_references, uncaptioned
from report.document import Report
from report.homework import declared_constants
from report.numbers import Numbers, schedule_values, unsourced

ROOT = Path(__file__).resolve().parents[1]


def test_a_number_the_run_wrote_passes_and_a_typed_one_does_not():
    n = Numbers()
    shown = n.fmt(0.298123, ".3f")
    assert unsourced(f"DDPM reaches {shown}.", n) == []
    assert unsourced("DDPM reaches 0.147, the first model's.", n) == ["0.147"]
    assert unsourced(f"{n.fmt(1574.4, ',.1f')} s and 1,574.5 s", n) == ["1,574.5"]


def test_code_links_citations_and_versions_are_not_prose():
    n = Numbers()
    text = "`lr = 2.5e-3`, [x](docs/v0.3.md), arXiv:2205.12524, torch 2.13.0, ```\nx = 0.7\n```"
    assert unsourced(text, n) == []
    assert unsourced("but 0.7 here is", n) == ["0.7"]


def test_declared_constants_hold_at_the_precision_shown():
    """alpha_bar_T of the course's schedule (0.006353) may be shown as 0.0064 or 0.00635, never as 0.0070."""
    n = Numbers(declared_constants())
    assert unsourced("alpha_bar_T = 0.0064, 0.00635, beta_end 0.02, sigma_max 20.0", n) == []
    assert unsourced("alpha_bar_T = 0.0070", n) == ["0.0070"]


def test_schedule_values_are_the_closed_forms():
    beta = np.linspace(1e-4, 0.02, 500)
    ab = np.cumprod(1 - beta)
    values = schedule_values(beta, [2, 200])
    assert np.isclose(values[0], ab[-1]) and np.isclose(values[3], -0.5 * np.log(1 - ab[-1]))
    assert np.isclose(values[4], beta[1] / (2 * (1 - beta[1]) * (1 - ab[0])))  # w_2
    assert np.isclose(values[-3], ab[199]) and np.isclose(values[-1], (1 - ab[199]) / (1 - ab[198]))


def test_the_report_lists_typed_numbers_in_text_and_captions(tmp_path):
    r = Report("T", numbers=Numbers())
    r.text(f"measured {r.num(1.2345, '.2f')}")
    r.table([{"a": 0.123}], "A caption that types 0.5.")
    assert r.unsourced_numbers() == ["0.5"]  # the table's own cells come from results and are not prose


def test_checks_find_dangling_references_gaps_and_broken_links(tmp_path):
    good = "*Figure 1. A.*\n\n![Figure 1](figures/a.png)\n\nSee Figure 1 and Table 1.\n\n*Table 1. T.*\n"
    assert dangling_references(good) == [] and uncaptioned(good) == []
    assert dangling_references(good + "As Figure 4 shows.") == ["Figure 4"]
    assert uncaptioned(good + "*Table 3. Skipped two.*\n") == ["Tables numbered [1, 3]"]
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"")
    md = tmp_path / "report.md"
    md.write_text('<a id="cmd-C1"></a>\n![x](figures/a.png) [c](#cmd-C1) [gone](figures/b.png) [no](#cmd-C9) '
                  "[web](https://example.org/x)")
    assert broken_links(md) == ["figures/b.png", "#cmd-C9"]
