"""report/claims.py: every sentence that reads a result says what the numbers say, on both outcomes."""

from __future__ import annotations

import pytest

from report import claims
from report.numbers import Numbers


def test_comparison_follows_the_values():
    assert claims.comparison(0.461, 1.836) == "lower than"
    assert claims.comparison(1.836, 0.461) == "higher than"
    assert claims.comparison(1.0, 1.0) == "equal to"
    assert claims.compare("eta = 1", 0.461, "eta = 0", 1.836) == "eta = 1 (0.461) is lower than eta = 0 (1.836)"
    assert claims.compare("eta = 1", 1.599, "eta = 0", 1.084) == "eta = 1 (1.599) is higher than eta = 0 (1.084)"


def test_trend_says_falls_only_when_every_step_falls():
    """The ES-DDPM rows of the issue: 1.706, 1.842, 1.677 does not fall at every T'; 14.64, 10.33, 10.54 neither."""
    ddim = [("T' = 50", 1.706), ("T' = 100", 1.842), ("T' = 200", 1.677)]
    gauss = [("T' = 50", 14.640), ("T' = 100", 10.332), ("T' = 200", 10.538)]
    assert claims.trend(ddim).startswith("does not fall at every step") and "lowest at T' = 200" in claims.trend(ddim)
    assert claims.trend(gauss).startswith("does not fall at every step") and "T' = 100" in claims.trend(gauss)
    assert claims.trend([("a", 3.0), ("b", 2.0), ("c", 1.0)]).startswith("falls at every step")
    assert claims.trend([("a", 1.0), ("b", 2.0)]).startswith("rises at every step")


@pytest.mark.parametrize("values", [[0.80, 0.94, 0.92], [0.8, 0.9], [0.9407, 0.5], [1.0], [0.001]])
def test_at_most_prints_a_bound_that_holds(values):
    """The issue's ratios 0.80, 0.94, 0.92 were printed "at most 0.9": the printed bound must hold."""
    text = claims.at_most(values)
    bound = float(text.split()[-1])
    assert max(values) <= bound and bound - max(values) < 0.01 + 1e-9
    assert claims.at_most([0.80, 0.94, 0.92]) == "at most 0.94"


def test_rank_counts_the_rows_above():
    """The issue's "highest of all rows" while two rows of the table were higher."""
    values = [-3.67, -4.35, -3.65, -3.07, -3.06, -3.02, -4.06]
    assert claims.rank(-3.07, values) == "the third highest of the 7 rows"
    assert claims.rank(-3.02, values) == "the highest of the 7 rows"
    assert claims.rank(-4.35, values, highest=False) == "the lowest of the 7 rows"


def test_within_two_standard_errors_or_how_many():
    assert claims.within(0.801, 0.825, 0.012, "it") == "within two standard errors of it"
    assert claims.within(0.793, 0.825, 0.012, "it") == "2.7 standard errors from it"
    assert claims.differ(0.529, 0.825, 0.012) and not claims.differ(0.529, 0.531, 0.012)


def test_below_count_a_bound_in_expectation_can_be_crossed():
    assert claims.below_count([0.5716, 0.0228], [0.5717, 0.0229]) == (2, 2)
    assert claims.below_count([0.6, 0.7], 0.5) == (0, 2) and claims.below_count([0.6, 0.03], 0.5) == (1, 2)


def test_load_note_says_when_the_machine_was_busy():
    busy = claims.load_note({"cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 1, "load_average": [5.8, 4, 3]})
    idle = claims.load_note({"cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2, "load_average": [1.2, 1, 1]})
    assert "more than its cores" in busy and "waiting for the CPU" in busy and "5.8" in busy
    assert "no more than its cores" in idle and "2 torch threads" in idle
    assert claims.load_note(None) == "not recorded in the results file"


def test_numbers_in_claims_go_through_the_report_formatter():
    numbers = Numbers()
    claims.compare("a", 0.4612, "b", 1.8361, numbers.fmt)
    claims.at_most([0.9407], numbers.fmt)
    assert {"0.461", "1.836", "0.95"} <= numbers.written


def test_and_list():
    assert claims.and_list(["a"]) == "a" and claims.and_list(["a", "b"]) == "a and b"
    assert claims.and_list(["a", "b", "c"]) == "a, b and c"
