"""Sentences that read a result, computed from the result: each function returns the words the data support, so a
report that says "lower", "falls", "at most" or "the highest" is right by construction whatever the numbers turn
out to be (tests/test_report_claims.py checks each on both outcomes).

``num`` is the report's number formatter (``Report.num``: it formats and remembers every number it prints)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Num = Callable[[float, str], str]


def plain(value: float, spec: str = ".3g") -> str:
    return format(value, spec)


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def comparison(a: float, b: float) -> str:
    """``"lower than"``, ``"higher than"`` or ``"equal to"``: how ``a`` compares with ``b``."""
    return "lower than" if a < b else "higher than" if a > b else "equal to"


def compare(a_name: str, a: float, b_name: str, b: float, num: Num = plain, spec: str = ".3f") -> str:
    """``"A (0.461) is lower than B (1.836)"``, the words chosen by the values."""
    return f"{a_name} ({num(a, spec)}) is {comparison(a, b)} {b_name} ({num(b, spec)})"


def trend(points: Sequence[tuple[str, float]], num: Num = plain, spec: str = ".3f") -> str:
    """How a sequence of (setting, value) pairs moves: ``"falls at every step (a, b, c at x, y, z)"``, ``"rises at
    every step (...)"`` or ``"does not fall at every step (...), its lowest at x"``."""
    ys = [y for _, y in points]
    listed = f"{', '.join(num(y, spec) for y in ys)} at {', '.join(x for x, _ in points)}"
    if len(ys) > 1 and all(b < a for a, b in zip(ys, ys[1:], strict=False)):
        return f"falls at every step ({listed})"
    if len(ys) > 1 and all(b > a for a, b in zip(ys, ys[1:], strict=False)):
        return f"rises at every step ({listed})"
    best = min(points, key=lambda p: p[1])[0]
    return f"does not fall at every step ({listed}), its lowest at {best}"


def at_most(values: Sequence[float], num: Num = plain, decimals: int = 2) -> str:
    """``"at most 0.95"``: the largest value rounded up at the precision shown, so the bound printed holds."""
    top = math.ceil(max(values) * 10**decimals - 1e-9) / 10**decimals
    return f"at most {num(top, f'.{decimals}f')}"


def ordinal(k: int) -> str:
    return {1: "", 2: "second ", 3: "third "}.get(k, f"{k}th ")


def rank(value: float, values: Sequence[float], highest: bool = True) -> str:
    """Where ``value`` stands among ``values`` (which include it): ``"the highest of the 9 rows"``, ``"the third
    highest of the 9 rows"`` (``highest=False``: lowest)."""
    k = 1 + sum((v > value) if highest else (v < value) for v in values)
    return f"the {ordinal(k)}{'highest' if highest else 'lowest'} of the {len(values)} rows"


def within(a: float, b: float, se: float, of: str, num: Num = plain) -> str:
    """How far ``a`` is from ``b`` (named ``of``) in standard errors ``se``: ``"within two standard errors of
    it"`` or ``"2.7 standard errors from it"`` (decided on the number as printed)."""
    k = round(abs(a - b) / se, 1)
    return f"within two standard errors of {of}" if k <= 2 else f"{num(k, '.1f')} standard errors from {of}"


def differ(a: float, b: float, se: float) -> bool:
    """True when ``a`` and ``b`` differ by more than two standard errors ``se`` of their difference."""
    return abs(a - b) > 2 * se


def below_count(values: Sequence[float], bound: Sequence[float] | float) -> tuple[int, int]:
    """(how many of ``values`` are below ``bound``, how many values): a bound that holds in expectation only can be
    crossed by single estimates."""
    bounds = bound if isinstance(bound, Sequence) else [bound] * len(values)
    return sum(v < b for v, b in zip(values, bounds, strict=True)), len(values)


def best_of(rows: Sequence[dict], key: Callable[[dict], float]) -> dict:
    """The row with the lowest ``key`` (the best for a distance such as FID)."""
    return min(rows, key=key)


def load_note(machine: dict | None, num: Num = plain) -> str:
    """The machine a results file records, and whether it was busy: ``"on AMD EPYC (2 cores, 1 torch thread; load
    average 5.8 at the end, so its wall times include waiting for the CPU)"``."""
    if not machine:
        return "not recorded in the results file"
    cores = machine.get("cpu_count")
    threads = machine.get("torch_threads")
    text = f"on {machine.get('cpu') or machine.get('processor', 'an unnamed CPU')} ({cores} cores, {threads} torch " \
           f"thread{'s' if threads != 1 else ''}"
    load = (machine.get("load_average") or [None])[0]
    if load is not None and cores:
        busy = load > cores
        text += (f"; load average {num(load, '.1f')} at the end of the run, "
                 + ("more than its cores, so its wall times include waiting for the CPU" if busy else
                    "no more than its cores"))
    return text + ")"
