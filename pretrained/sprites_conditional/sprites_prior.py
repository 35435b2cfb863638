# Written by spritediff's save_pretrained from its pipelines/prior.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The distribution x_T is drawn from: N(0, I), or a Gaussian that matches the data's q(x_T).

The course's schedule stops at alpha_bar_T = 0.0064, so x_T = sqrt(alpha_bar_T) x_0 + sqrt(1 - alpha_bar_T) eps
still holds 8% of the image (the non-zero terminal SNR of Lin et al. 2024), and N(0, I) is not q(x_T). With
the data's mean mu and covariance Sigma (of x_0 in [-1, 1]), q(x_t) has mean and covariance

    m_t = sqrt(alpha_bar_t) mu,    C_t = alpha_bar_t Sigma + (1 - alpha_bar_t) I,

and ``prior="moments"`` draws x_T from N(m_T, C_T), as x_T = m_T + C_T^{1/2} z with the symmetric square root
and the same z ~ N(0, I) the standard prior would use (so the two priors differ only by that map). The
variants keep less of Sigma: "moments-lowrank" its top ``rank`` eigenpairs (the rest replaced by their mean
eigenvalue), "moments-diagonal" the per-pixel variances, "moments-mean" none (C_T = I: the mean only).
Why a deterministic sampler needs this and a stochastic one less: docs/theory.md.

The moments are computed from the training data (:meth:`DataMoments.from_images`) and saved beside the
pipeline as ``data_moments.safetensors``; a folder without them still loads and samples with the standard prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .sprites_common import package_module

MOMENTS_FILE = "data_moments.safetensors"
PRIORS = ("standard", "moments", "moments-lowrank", "moments-diagonal", "moments-mean")


class MissingMomentsError(ValueError):
    """``prior`` asks for the data's moments and the pipeline has none."""


@dataclass(frozen=True)
class DataMoments:
    """Mean (D,) and covariance (D, D), float64, of training images x_0 in [-1, 1] of shape (C, H, W)."""

    mean: torch.Tensor
    cov: torch.Tensor
    shape: tuple[int, int, int]
    count: int

    @classmethod
    def from_images(cls, x: torch.Tensor, hflip: bool = False) -> DataMoments:
        """Moments of float images (N, C, H, W) in [-1, 1]; ``hflip`` adds every image's mirror (the training
        distribution when training flips)."""
        x = torch.as_tensor(x).double()
        if x.ndim != 4 or len(x) < 2:
            raise ValueError(f"images: need at least 2 images (N, C, H, W), got shape {tuple(x.shape)}")
        if hflip:
            x = torch.cat([x, x.flip(-1)])
        flat = x.flatten(1)
        mean = flat.mean(0)
        centred = flat - mean
        cov = centred.T @ centred / (len(flat) - 1)
        return cls(mean, cov, tuple(x.shape[1:]), len(flat))

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/data_moments.safetensors`` (float32; 2.4 MB for 3x16x16 images)."""
        from safetensors.torch import save_file

        path = Path(folder) / MOMENTS_FILE
        atomic = package_module("atomic")
        if atomic is None:
            raise ValueError("DataMoments.save writes through spritediff's atomic writer; install spritediff")
        with atomic.atomic_file(path) as tmp:
            save_file({"mean": self.mean.float().contiguous(), "cov": self.cov.float().contiguous()}, str(tmp),
                      metadata={"shape": ",".join(map(str, self.shape)), "count": str(self.count)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> DataMoments:
        """Read a file written by :meth:`save` (a folder means its ``data_moments.safetensors``)."""
        from safetensors import safe_open

        path = Path(path)
        if path.is_dir():
            path = path / MOMENTS_FILE
        if not path.is_file():
            raise MissingMomentsError(f"{path} not found")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            mean, cov = f.get_tensor("mean").double(), f.get_tensor("cov").double()
        shape = tuple(int(v) for v in meta.get("shape", "").split(",") if v)
        if len(shape) != 3 or mean.shape != (int(np.prod(shape)),) or cov.shape != (len(mean), len(mean)):
            raise ValueError(f"{path}: mean {tuple(mean.shape)} / cov {tuple(cov.shape)} / shape {shape} do not fit")
        return cls(mean, (cov + cov.T) / 2, shape, int(meta.get("count", 0)))


class GaussianPrior:
    """x_T = m_T + A z for z ~ N(0, I): the prior ``kind`` of :data:`PRIORS` at noise level ``alpha_bar``."""

    def __init__(self, kind: str, alpha_bar: float, moments: DataMoments | None = None, rank: int = 16):
        if kind not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {kind!r}")
        self.kind, self.alpha_bar = kind, float(alpha_bar)
        if kind == "standard":
            return
        if moments is None:
            raise MissingMomentsError(f"prior={kind!r} needs the data's moments")
        ab = self.alpha_bar
        self.shape = moments.shape
        self.mean = moments.mean * ab**0.5
        if kind == "moments-mean":
            self.scale = None
        elif kind == "moments-diagonal":
            self.scale = (ab * moments.cov.diagonal() + 1 - ab).sqrt()
        else:
            lam, vec = torch.linalg.eigh(moments.cov)
            lam = lam.clamp(min=0)
            if kind == "moments-lowrank":
                if not 1 <= rank < len(lam):
                    raise ValueError(f"prior_rank must lie in 1..{len(lam) - 1}, got {rank}")
                rest = lam[:-rank].mean()
                lam, vec = lam[-rank:], vec[:, -rank:]
                self.rest = float((ab * rest + 1 - ab) ** 0.5)
            self.vec, self.root = vec, (ab * lam + 1 - ab).sqrt()

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Map standard normal draws z (B, C, H, W) to draws of the prior, in z's dtype and device."""
        if self.kind == "standard":
            return z
        if tuple(z.shape[1:]) != self.shape:
            raise ValueError(f"the data moments are for images {self.shape}, the UNet samples {tuple(z.shape[1:])}")
        flat = z.flatten(1).cpu().double()
        if self.kind == "moments-mean":
            x = flat
        elif self.kind == "moments-diagonal":
            x = flat * self.scale
        elif self.kind == "moments":
            x = ((flat @ self.vec) * self.root) @ self.vec.T
        else:  # low rank: the top eigenpairs exactly, the rest with their mean eigenvalue
            proj = flat @ self.vec
            x = (proj * self.root) @ self.vec.T + self.rest * (flat - proj @ self.vec.T)
        return (x + self.mean).view(z.shape).to(device=z.device, dtype=z.dtype)


class DataPriorMixin:
    """Gives a pipeline its data moments: set with :meth:`set_data_moments`, or read on first use from the
    ``data_moments.safetensors`` of the folder (or hub repo) it was loaded from; ``save_pretrained`` keeps them
    (:mod:`pipelines.saving`)."""

    _data_moments: DataMoments | None = None

    def set_data_moments(self, moments: DataMoments | None) -> None:
        self._data_moments = moments

    def data_moments(self) -> DataMoments:
        """The data moments of this pipeline; :class:`MissingMomentsError` (one line: where and how) if none."""
        if self._data_moments is None:
            source = getattr(self.config, "_name_or_path", None)
            if source and Path(source).is_dir():
                path = Path(source) / MOMENTS_FILE
                if not path.is_file():
                    raise MissingMomentsError(
                        f"prior='moments' needs {path}, which is missing: write it with `python -m training.moments "
                        f"--pipeline {source}` (or call set_data_moments), or use prior='standard'")
                self._data_moments = DataMoments.load(path)
            elif source:
                self._data_moments = DataMoments.load(_hub_moments(source))
            else:
                raise MissingMomentsError("prior='moments' needs the data's moments: this pipeline was built in "
                                          "memory; call set_data_moments(DataMoments.from_images(...))")
        return self._data_moments

    def make_prior(self, kind: str, alpha_bar: float, rank: int = 16) -> GaussianPrior:
        """The prior ``kind`` at noise level ``alpha_bar`` (the first timestep of the sampler; ``GaussianPrior``
        checks ``kind``); the data's moments are read only for a data prior."""
        return GaussianPrior(kind, alpha_bar, self.data_moments() if kind in PRIORS[1:] else None, rank)


def _hub_moments(repo_id: str) -> Path:
    """Download the moments file of a hub repo; one-line :class:`MissingMomentsError` when it cannot."""
    from huggingface_hub import hf_hub_download

    hub = package_module("hub")
    reason = hub.hub_unreachable_reason() if hub is not None else None
    if reason:
        raise MissingMomentsError(f"prior='moments' needs {MOMENTS_FILE} from {repo_id!r}: {reason}; use "
                                  "prior='standard' or a local folder that holds it")
    try:
        return Path(hf_hub_download(repo_id, MOMENTS_FILE))
    except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds; the user needs one line
        raise MissingMomentsError(f"prior='moments': {repo_id!r} has no {MOMENTS_FILE} ({type(exc).__name__}); use "
                                  "prior='standard'") from None
