"""Numbers in the report's prose come from results, never from typing.

Every measured number the report writes goes through :meth:`Numbers.fmt`, which formats it and remembers the text;
:func:`unsourced` then lists the decimal numbers of a piece of prose that are neither one of those nor a declared
constant (the course's settings and the closed-form values of its schedule, :func:`course_constants`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

# A decimal number as prose writes it: 0.298, 1.0e-3, 1,574.5, -0.02 (integers and counts are not checked).
DECIMAL = re.compile(r"(?<![\w.])-?\d[\d,]*\.\d+(?:[eE][-+]?\d+)?(?![\w.]*\d)")
# What is not prose: code spans and blocks, links' targets, citations' identifiers, version strings.
NOT_PROSE = re.compile(r"```.*?```|`[^`]*`|\]\([^)]*\)|arXiv:\S+|\bv?\d+\.\d+\.\d+\S*|https?://\S+", re.S)


class Numbers:
    """The numbers one report run wrote, as text: ``fmt(0.29813, ".3f") -> "0.298"`` and remembered."""

    def __init__(self, constants: Iterable[float] = ()):
        self.written: set[str] = set()
        self.constants = [float(c) for c in constants]

    def fmt(self, value: float, spec: str = ".3g") -> str:
        text = format(value, spec)
        self.written.add(_canonical(text))
        return text

    def allowed(self, token: str) -> bool:
        if _canonical(token) in self.written:
            return True
        value, decimals = _value_and_decimals(token)
        return any(_rounds_to(c, value, decimals) for c in self.constants)


def unsourced(text: str, numbers: Numbers) -> list[str]:
    """The decimal numbers of ``text`` that this run did not write and that are no declared constant."""
    prose = NOT_PROSE.sub(" ", text)
    return [m.group(0) for m in DECIMAL.finditer(prose) if not numbers.allowed(m.group(0))]


def course_constants(root: Path, declared: dict) -> list[float]:
    """The declared constants (configs/report.yaml ``constants``): every number of the named config files (less
    the keys omitted) and the closed-form values of the course's schedule, which theory prose may state."""
    import numpy as np
    import yaml

    values: list[float] = []
    for name in declared["configs"]:
        cfg = yaml.safe_load((root / name).read_text())
        values += _numbers_in({k: v for k, v in cfg.items() if k not in declared.get("omit_keys", [])})
    course = yaml.safe_load((root / declared["configs"][0]).read_text())
    beta = np.linspace(course["beta_start"], course["beta_end"], course["num_train_timesteps"])
    return values + [float(v) for v in declared.get("values", [])] + schedule_values(beta, declared["at_steps"])


def schedule_values(beta, at_steps: list[int]) -> list[float]:
    """Closed-form values of a schedule that docs/theory.md derives (t counts from 1 as in the papers):
    alpha_bar_T, sqrt(alpha_bar_T), 1 - alpha_bar_T and the bound -log(1 - alpha_bar_T) / 2 of L_T (item 3);
    the bound's weights w_t = beta_t / (2 alpha_t (1 - alpha_bar_{t-1})) at t = 2, their minimum and at T
    (item 3); the VE noise levels sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) at t = 1 and T (item 8); and at
    each t of ``at_steps``, alpha_bar_t, its square root and the variance ratio
    (1 - alpha_bar_t) / (1 - alpha_bar_{t-1}) (items 4 and 5)."""
    import numpy as np

    alpha = 1 - np.asarray(beta, dtype=np.float64)
    ab = np.cumprod(alpha)
    w = beta[1:] / (2 * alpha[1:] * (1 - ab[:-1]))
    out = [ab[-1], math.sqrt(ab[-1]), 1 - ab[-1], -0.5 * math.log(1 - ab[-1]), w[0], w.min(), w[-1],
           math.sqrt((1 - ab[0]) / ab[0]), math.sqrt((1 - ab[-1]) / ab[-1])]
    for t in at_steps:
        out += [ab[t - 1], math.sqrt(ab[t - 1]), (1 - ab[t - 1]) / (1 - ab[t - 2])]
    return [float(v) for v in out]


def _numbers_in(tree) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _numbers_in(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _numbers_in(v)]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return [float(tree)]
    return []


def _canonical(text: str) -> str:
    return text.replace(",", "").lstrip("+")


def _value_and_decimals(token: str) -> tuple[float, int]:
    t = _canonical(token)
    mantissa = re.split(r"[eE]", t)[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(re.split(r"[eE]", t)[1]) if re.search(r"[eE]", t) else 0
    return float(t), decimals - exponent


def _rounds_to(constant: float, shown: float, decimals: int) -> bool:
    """True when ``constant`` printed with ``decimals`` decimals is ``shown`` (0.00635 shows 0.0064 and 0.006)."""
    return abs(constant - shown) <= 0.5 * 10.0 ** (-decimals) + 1e-12
