# Written by spritediff's save_pretrained from its pipelines/learned_steps.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""Learned time steps: the sigmas of a few-step solver as parameters fitted to the model (the idea of LD3, Tong et
al., ICLR 2025, "Learning to Discretize Denoising Diffusion ODEs"; ``python -m training.fit_steps`` fits them).

An ``n``-step schedule runs sigma_0 > sigma_1 > ... > sigma_{n-1} > sigma_n = 0 between two fixed end points,
sigma_max = sigma(T-1) (where the prior at T lives) and the floor sigma_min = sigma(0). Its ``n`` parameters are
logits a; with w = softmax(a) and L = log sigma_max - log sigma_min,

    log sigma_i = log sigma_max - L (w_0 + ... + w_{i-1}),    i = 0, ..., n-1,    then sigma_n = 0,

so sigma_0 = sigma_max for any a, every w_j > 0 makes the sigmas strictly decreasing, and the last weight w_{n-1}
is the gap left between sigma_{n-1} and sigma_min (sigma_{n-1} > sigma_min): monotone and inside the end points
by construction. :func:`logits_from_sigmas` inverts it (a_j = log of the j-th log-sigma increment), so a fit can
start exactly at a known schedule (the spaced Karras range, or DDIM's trailing timesteps).

A fitted schedule is a JSON file in the pipeline folder, ``schedules/{solver}_nfe{N}_{prior}.json`` (N the UNet
evaluations it spends), with the model's hash, the teacher, the seeds and the loss before and after the fit; the
solver pipeline reads it with ``sigma_schedule="learned"`` and refuses, in one line, a folder that has none for the
solver, NFE and prior asked for, or one fitted to other UNet weights.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .sprites_fitted_solver import read_record, save_record
from .sprites_samplers import unet_calls

LEARNABLE = ("dpmpp_2m", "dpmpp_2m_sde", "heun", "euler", "ddim")
FOLDER = "schedules"


def sigmas_from_logits(logits: torch.Tensor, sigma_max: float, sigma_min: float) -> torch.Tensor:
    """The ``len(logits)`` sigmas of the schedule, then 0 (float64; differentiable in ``logits``). sigma_0 is
    sigma_max itself; the others are summed from the small end, log sigma_i = log sigma_min + L (w_i + ... +
    w_{n-1}) (the same in exact arithmetic, without cancellation where the steps are small)."""
    w = torch.softmax(logits.to(torch.float64), 0)
    span = math.log(sigma_max) - math.log(sigma_min)
    tail = torch.flip(torch.cumsum(torch.flip(w[1:], [0]), 0), [0])
    return torch.cat([w.new_full((1,), sigma_max), torch.exp(math.log(sigma_min) + span * tail), w.new_zeros(1)])


def logits_from_sigmas(sigmas: np.ndarray | list[float], sigma_min: float) -> list[float]:
    """The logits whose schedule is ``sigmas`` (descending from sigma_max, ending in 0, the last non-zero one above
    ``sigma_min``): the logs of the log-sigma increments, the last one the gap down to ``sigma_min``."""
    s = np.asarray(sigmas, dtype=np.float64)
    if s[-1] != 0 or len(s) < 3:
        raise ValueError(f"a schedule to learn from is at least 2 sigmas then 0, got {list(s)}")
    logs = np.log(np.append(s[:-1], sigma_min))
    steps = logs[:-1] - logs[1:]
    if not np.all(steps > 0):
        raise ValueError(f"a schedule to learn from must decrease strictly and end above sigma_min = {sigma_min:.4g} "
                         f"(the spaced Karras range or discrete timesteps do; the full Karras range ends at it), got "
                         f"{[round(float(v), 5) for v in s]}")
    return [float(v) for v in np.log(steps)]


def schedule_file(solver: str, nfe: int, prior: str) -> str:
    """Where a pipeline folder keeps the learned schedule of ``solver`` at ``nfe`` UNet evaluations."""
    return f"{FOLDER}/{solver}_nfe{nfe}_{prior}.json"


def unet_sha256_16(folder: str | Path) -> str | None:
    """The first 16 hex digits of the sha256 of the folder's UNet weights (None if it has none): the model hash
    the benchmarks record (evaluation.sampling.pipeline_info computes the same)."""
    weights = sorted((Path(folder) / "unet").glob("diffusion_pytorch_model*"))
    if not weights:
        return None
    h = hashlib.sha256()
    with open(weights[0], "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


@dataclass
class LearnedSchedule:
    """A learned ``steps``-step schedule of ``solver`` (``nfe`` UNet evaluations) from ``prior``, and its fit."""

    solver: str
    nfe: int
    prior: str
    logits: list[float]
    sigma_max: float
    sigma_min: float
    fit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.solver not in LEARNABLE:
            raise ValueError(f"learned schedules exist for {', '.join(LEARNABLE)}, not {self.solver!r}")
        if len(self.logits) < 2 or unet_calls(self.solver, len(self.logits)) != self.nfe:
            raise ValueError(f"{len(self.logits)} logits are {len(self.logits)} steps of {self.solver}, not "
                             f"{self.nfe} NFE")
        if not all(math.isfinite(a) for a in self.logits):
            raise ValueError(f"a learned schedule's logits must be finite numbers, got {self.logits}")
        if not 0 < self.sigma_min < self.sigma_max < math.inf:
            raise ValueError(f"a learned schedule needs 0 < sigma_min < sigma_max, got {self.sigma_min}, "
                             f"{self.sigma_max}")

    @property
    def steps(self) -> int:
        return len(self.logits)

    def sigmas(self) -> np.ndarray:
        """The schedule: ``steps`` descending sigmas, then 0 (float64)."""
        return sigmas_from_logits(torch.tensor(self.logits, dtype=torch.float64), self.sigma_max,
                                  self.sigma_min).numpy()

    def check(self, solver: str, nfe: int, prior: str) -> LearnedSchedule:
        """Itself if it is for ``solver`` at ``nfe`` NFE from ``prior``; else one clear error."""
        if (self.solver, self.nfe, self.prior) != (solver, nfe, prior):
            raise ValueError(f"this learned schedule is for {self.solver} at {self.nfe} NFE from the {self.prior} "
                             f"prior, not {solver} at {nfe} NFE from the {prior} prior")
        return self

    def save(self, path: str | Path) -> Path:
        return save_record({"solver": self.solver, "nfe": self.nfe, "steps": self.steps, "prior": self.prior,
                            "sigmas": [float(s) for s in self.sigmas()], "logits": self.logits,
                            "sigma_max": self.sigma_max, "sigma_min": self.sigma_min, "fit": self.fit}, path)

    @classmethod
    def load(cls, source: str | Path | dict) -> LearnedSchedule:
        """From a dict or a JSON file (its ``sigmas``, if given, must be those of its logits)."""
        data, where = read_record(source, "learned schedule", "python -m training.fit_steps writes one")
        try:
            out = cls(solver=str(data["solver"]), nfe=int(data["nfe"]), prior=str(data["prior"]),
                      logits=[float(a) for a in data["logits"]], sigma_max=float(data["sigma_max"]),
                      sigma_min=float(data["sigma_min"]), fit=dict(data.get("fit", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}a learned schedule needs solver, nfe, prior, logits, sigma_max and sigma_min "
                             f"({e})") from None
        if "sigmas" in data and not np.allclose(out.sigmas(), np.asarray(data["sigmas"], dtype=float), rtol=1e-9,
                                                atol=0):
            raise ValueError(f"{where}its sigmas are not those of its logits (edited by hand?); fit it again")
        return out


def find_learned(folder: str | None, solver: str, nfe: int, prior: str,
                 source: str | Path | dict | None = None) -> LearnedSchedule:
    """The learned schedule for ``solver`` at ``nfe`` NFE from ``prior``: ``source`` (a dict, a JSON path as given
    if it exists, else relative to ``folder``) or the folder's own file; refused in one line when the folder has
    none, or when it was fitted to other UNet weights than the folder's."""
    if isinstance(source, dict):
        return LearnedSchedule.load(source).check(solver, nfe, prior)
    path = Path(source) if source is not None else Path(schedule_file(solver, nfe, prior))
    if not path.is_file() and not path.is_absolute() and folder:
        path = Path(folder) / path
    if source is None and not path.is_file():
        raise ValueError(f"{folder or 'this pipeline'} has no learned schedule for {solver} at {nfe} NFE from the "
                         f"{prior} prior ({schedule_file(solver, nfe, prior)}); fit one with python -m "
                         f"training.fit_steps --pipeline {folder or 'DIR'} --solver {solver} --nfe {nfe} --prior "
                         f"{prior}")
    learned = LearnedSchedule.load(path).check(solver, nfe, prior)
    fitted_to = learned.fit.get("model", {}).get("unet_sha256_16")
    here = unet_sha256_16(folder) if folder else None
    if fitted_to and here and fitted_to != here:
        raise ValueError(f"{path} was fitted to UNet weights {fitted_to}, not this folder's {here}; fit it again "
                         f"with python -m training.fit_steps --pipeline {folder}")
    return learned
