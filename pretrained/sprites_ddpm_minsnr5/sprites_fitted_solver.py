# Written by spritediff's save_pretrained from its pipelines/fitted_solver.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""A few-step solver fitted to a model: DPM-Solver++(2M)'s multistep weights, one per step, learned so that n
UNet evaluations land where a many-step solver lands from the same x_T (the idea of S4S, Frankel et al. 2025,
"Solving for a Diffusion Model Solver", restricted to the multistep weights; the sigmas stay Karras').

Each step of DPM-Solver++(2M) extrapolates the model's x_0 estimates, D = (1 + c) x0_i - c x0_{i-1}, with
c = 1/(2r) from a Taylor expansion; here c is a free number per step (the last step too), fitted by
``python -m training.fit_solver`` and saved as JSON (usually in the pipeline folder's ``solvers/``). Starting
from c = 1/(2r) (and c = 0 on the last step), the fit begins exactly at DPM-Solver++(2M).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sprites_atomic import write_text_atomic
from .sprites_samplers import SolverStep


@dataclass
class FittedSolver:
    """The fitted weights of an ``nfe``-step DPM-Solver++(2M) on Karras sigmas (rho), and how they were fitted."""

    nfe: int
    coefs: list[float]  # one per step; the first step has no previous estimate and ignores its weight
    rho: float = 7.0
    prior: str = "standard"  # the prior at T it was fitted from (sample with the same)
    fit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.coefs) != self.nfe:
            raise ValueError(f"a fitted solver of {self.nfe} steps needs {self.nfe} weights, got {len(self.coefs)}")
        if not all(math.isfinite(c) for c in self.coefs):
            raise ValueError(f"a fitted solver's weights must be finite numbers, got {self.coefs}")

    def apply(self, plan: list[SolverStep]) -> list[SolverStep]:
        """``plan`` (the steps of ``solver_steps(..., "dpmpp_2m", nfe, "karras", rho=rho)``) with the weights."""
        if len(plan) != self.nfe:
            raise ValueError(f"this solver was fitted for nfe={self.nfe}, not {len(plan)}")
        return [dataclasses.replace(step, coef=float(c)) for step, c in zip(plan, self.coefs, strict=True)]

    def save(self, path: str | Path) -> Path:
        return save_record(dataclasses.asdict(self), path)

    @classmethod
    def load(cls, source: str | Path | dict) -> FittedSolver:
        """From a dict or a JSON file; a clear error names a missing or malformed file."""
        data, where = read_record(source, "fitted solver", "python -m training.fit_solver writes one")
        try:
            return cls(nfe=int(data["nfe"]), coefs=[float(c) for c in data["coefs"]], rho=float(data.get("rho", 7.0)),
                       prior=str(data.get("prior", "standard")), fit=dict(data.get("fit", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}a fitted solver needs 'nfe' and 'coefs' as numbers ({e})") from None


# ----------------------------------------------------------------------- the JSON files of fitted things


def save_record(data: dict[str, Any], path: str | Path) -> Path:
    """Write ``data`` as indented JSON to ``path`` whole or not at all (its folder made if needed)."""
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def read_record(source: str | Path | dict, what: str, how: str) -> tuple[dict[str, Any], str]:
    """(the dict, "PATH: " or "") from a dict or a JSON file; a missing file or bad JSON is one clear error
    naming ``what`` it should hold and ``how`` to make one."""
    if isinstance(source, dict):
        return source, ""
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"{path}: no {what} there ({how})")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a {what}'s JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a {what}'s JSON (a JSON object expected)")
    return data, f"{source}: "
