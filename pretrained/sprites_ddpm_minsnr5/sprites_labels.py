# Written by spritediff's save_pretrained from its pipelines/labels.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""Class labels and classifier-free guidance, shared by every pipeline.

A conditional UNet is a ``UNet2DModel`` with ``num_class_embeds = K + 1``: rows 0..K-1 of ``unet.class_embedding``
are its K classes and the last row, K, is the null class used for classifier-free guidance. The classes' names
come from the pipeline folder's ``class_names.json`` (a JSON list, in class order); a 6-row UNet without names has
the sprites' five (:data:`SPRITE_CLASSES`). A label is

* an ``int`` in 0..K-1 or a class name (for the sprites ``"hero"``, ``"non-hero"``, ``"food"``, ``"spell"``,
  ``"side-facing"``; names match without regard to case or surrounding spaces);
* a soft mix: K non-negative weights summing to 1, given with floats (``[0.5, 0.0, 0.5, 0.0, 0.0]``, a float
  array or tensor). A list of ints is always read as one integer label per sample, never as a mix.

``class_labels`` is one label (used for the whole batch) or a list / 1-D int tensor / (B, K) float tensor
with one label per sample. The course feeds a one-hot context through a linear layer, which is a weighted sum
of the layer's columns; a mix reproduces that here: its class embedding is ``weights @ E[:K]`` with ``E`` the
embedding matrix. It is put in place by a forward hook on ``unet.class_embedding`` that replaces the looked-up
rows by the mixed ones; the hook lives only during the sampling loop (``ClassConditioning.applied``) and is
removed in a ``finally`` block. Batches of plain labels take no hook (an ordinary embedding lookup).

Guidance (Ho & Salimans 2022): eps = eps_uncond + w (eps_cond - eps_uncond), the two halves from one UNet call
on the concatenated batch ``[x, x]`` with labels ``[y, null]``. ``w = 1`` is plain conditional sampling and
``w = 0`` unconditional, one UNet call each.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .sprites_common import check_number

SPRITE_CLASSES: tuple[str, ...] = ("hero", "non-hero", "food", "spell", "side-facing")
NUM_CLASSES = len(SPRITE_CLASSES)  # of the sprites
NULL_CLASS = NUM_CLASSES  # the sprites UNet's row trained as "no label" (classifier-free guidance)
CLASS_NAMES_FILE = "class_names.json"


@dataclass(frozen=True)
class Classes:
    """The K classes labels refer to: their ``names`` (None: labels by index and mix only)."""

    count: int
    names: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.names is None:
            return "this model has no class names"
        return ", ".join(f"{i}={c}" for i, c in enumerate(self.names))


SPRITES = Classes(NUM_CLASSES, SPRITE_CLASSES)


def check_class_names(names: Any, count: int | None = None) -> tuple[str, ...]:
    """``names`` as a tuple of distinct non-empty strings (``count`` of them, when given); else a one-line
    ``ValueError``."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) and n.strip()
                                                                          for n in names):
        raise ValueError(f"class names must be a list of non-empty strings, got {names!r}")
    if len({n.strip().lower() for n in names}) != len(names):
        raise ValueError(f"class names must be distinct (ignoring case), got {list(names)}")
    if count is not None and len(names) != count:
        raise ValueError(f"{len(names)} class names for a UNet with {count} classes (num_class_embeds - 1, the "
                         "last row being the null class); give one name per class")
    return tuple(names)


def read_class_names(folder: str | Path | None) -> tuple[str, ...] | None:
    """The names in ``folder``'s ``class_names.json``; None without a local folder or without the file."""
    path = Path(folder) / CLASS_NAMES_FILE if folder else None
    if path is None or not path.is_file():
        return None
    try:
        return check_class_names(json.loads(path.read_text()))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}; write a JSON list of the class names, in class order") from None


def unet_classes(unet, names: Sequence[str] | None = None) -> Classes | None:
    """The classes of ``unet`` (None: unconditional): K = num_class_embeds - 1, named by ``names``, or by the
    sprites' names for a 6-row UNet given none."""
    n_embeds = unet.config.get("num_class_embeds")
    if n_embeds is None:
        return None
    count = int(n_embeds) - 1
    if names is not None:
        return Classes(count, check_class_names(names, count))
    return SPRITES if count == NUM_CLASSES else Classes(count)


class ClassNamesMixin:
    """``pipe.class_names``: the names of a conditional pipeline's classes (see the module doc), read from the
    folder it was loaded from; :meth:`set_class_names` sets them (``save_pretrained`` writes them)."""

    _class_names: tuple[str, ...] | None = None

    def set_class_names(self, names: Sequence[str] | None) -> None:
        classes = unet_classes(self.unet, names)
        if names is not None and classes is None:
            raise ValueError("class names were given but the UNet is unconditional (num_class_embeds is None)")
        self._class_names = None if names is None else classes.names

    @property
    def class_names(self) -> tuple[str, ...] | None:
        if self._class_names is None:
            names = read_class_names(getattr(self.config, "_name_or_path", None))
            if names is not None:
                self.set_class_names(names)
        classes = unet_classes(self.unet, self._class_names)
        return None if classes is None else classes.names


def _class_index(label: Any, classes: Classes) -> int:
    if isinstance(label, str):
        name = label.strip().lower()
        known = [] if classes.names is None else [c.strip().lower() for c in classes.names]
        if name not in known:
            valid = "none: this model has no class names, use indices" if classes.names is None else \
                ", ".join(classes.names)
            raise ValueError(f"class_labels: unknown class name {label!r}; valid names: {valid}")
        return known.index(name)
    if not 0 <= int(label) < classes.count:
        raise ValueError(f"class_labels: integer label {int(label)} is out of range; use 0..{classes.count - 1} "
                         f"({classes.describe()})")
    return int(label)


def _mix(weights: Any, classes: Classes) -> np.ndarray:
    w = np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights, dtype=np.float64)
    if w.shape != (classes.count,):
        raise ValueError(f"class_labels: a soft mix needs {classes.count} weights (one per class: "
                         f"{classes.describe()}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"class_labels: mix weights must be finite and >= 0, got {w.tolist()}")
    if abs(w.sum() - 1) > 1e-5:
        raise ValueError(f"class_labels: mix weights must sum to 1, got {w.tolist()} (sum {w.sum():.6g}); "
                         "divide by their sum")
    return w


def _is_int(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.ndim == 0 and not x.is_floating_point() and x.dtype != torch.bool
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def _one_label(label: Any, classes: Classes) -> np.ndarray:
    """One label (int, name or mix) as a row of K weights."""
    if isinstance(label, bool | np.bool_):
        raise ValueError(f"class_labels: {label!r} is not a label; use an int 0..{classes.count - 1}, a class name "
                         f"or {classes.count} mix weights")
    if isinstance(label, str) or _is_int(label):
        return np.eye(classes.count)[_class_index(label.item() if isinstance(label, torch.Tensor) else label,
                                                  classes)]
    if isinstance(label, torch.Tensor | np.ndarray | Sequence):
        return _mix(label, classes)
    raise ValueError(f"class_labels: cannot read {label!r} ({type(label).__name__}) as a label; use an int "
                     f"0..{classes.count - 1}, a class name ({classes.describe()}) or {classes.count} mix weights")


def class_label_weights(class_labels: Any, batch_size: int, classes: Classes = SPRITES) -> np.ndarray:
    """Read ``class_labels`` (see the module doc) as a (batch_size, K) float64 array of class weights."""
    labels, k = class_labels, classes.count
    if isinstance(labels, torch.Tensor | np.ndarray):
        array = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
        if array.dtype == np.bool_:
            raise ValueError("class_labels: a boolean array is not a label; use ints, names or mix weights")
        is_float = np.issubdtype(array.dtype, np.floating)
        if array.ndim == 0 or (is_float and array.ndim == 1):
            rows = [_one_label(array.item() if array.ndim == 0 else array, classes)]
        elif array.ndim == 1 or (is_float and array.ndim == 2):
            rows = [_one_label(int(v) if not is_float else v, classes) for v in array]
        else:
            raise ValueError(f"class_labels: an array of shape {array.shape} and dtype {array.dtype}; use int "
                             f"labels (B,) or float mixes ({k},) / (B, {k})")
    elif isinstance(labels, Sequence) and not isinstance(labels, str):
        if len(labels) == 0:
            raise ValueError("class_labels is empty; give one label, or one per sample")
        numbers_only = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in labels)
        if numbers_only and any(not _is_int(v) for v in labels):
            rows = [_mix(labels, classes)]  # a flat list with floats is one mix
        else:
            rows = [_one_label(v, classes) for v in labels]
    else:
        rows = [_one_label(labels, classes)]
    if len(rows) not in (1, batch_size):
        raise ValueError(f"class_labels: {len(rows)} labels for batch_size {batch_size}; give one label (used for "
                         "every sample) or exactly one per sample")
    weights = np.stack(rows)
    return np.repeat(weights, batch_size, axis=0) if len(rows) == 1 else weights


class ClassConditioning:
    """Labels and guidance for one sampling call: the pipeline's loop calls
    ``unet(cond.batch(x), t, class_labels=cond.labels)`` and, when ``cond.guided``, combines the two halves with
    :func:`guidance`.

    For an unconditional UNet (``class_embedding is None``) the labels are None; ``class_labels`` and a
    ``guidance_scale`` other than 1 are refused. For a conditional UNet without ``class_labels``, every sample
    gets the null class (unconditional sampling).
    """

    def __init__(self, unet, class_labels: Any, guidance_scale: float, batch_size: int,
                 class_names: Sequence[str] | None = None):
        self.scale = float(check_number("guidance_scale", guidance_scale, 0,
                                        text="a finite number >= 0 (1: conditional, 0: unconditional)"))
        self.labels: torch.Tensor | None = None  # integer labels passed to the UNet
        self.mix: torch.Tensor | None = None  # (rows, num_class_embeds) embedding weights for soft mixes
        self.guided = False  # one call on [x, x] with labels [y, null]
        n_embeds = unet.config.get("num_class_embeds")
        embedding = getattr(unet, "class_embedding", None)
        if embedding is None:
            if class_labels is not None:
                raise ValueError("class_labels were given but the UNet is unconditional (unet.config.num_class_embeds "
                                 "is None); drop class_labels or load a class-conditional model")
            if self.scale != 1:
                raise ValueError(f"guidance_scale={guidance_scale} needs a class-conditional UNet; this one is "
                                 "unconditional (num_class_embeds is None). Leave guidance_scale at 1.")
            return
        if not isinstance(embedding, torch.nn.Embedding) or n_embeds is None or n_embeds < 2:
            raise ValueError(f"unet: class conditioning needs an embedding table of its classes and a last null class "
                             f"row; this UNet has class_embed_type={unet.config.get('class_embed_type')!r}, "
                             f"num_class_embeds={n_embeds}")
        classes = unet_classes(unet, class_names)
        null_class = classes.count  # the last row
        device = embedding.weight.device
        null = torch.full((batch_size,), null_class, dtype=torch.long, device=device)
        if class_labels is None:
            if self.scale != 1:
                raise ValueError(f"guidance_scale={guidance_scale} needs class_labels; without labels the model "
                                 "samples unconditionally (null class)")
            self.labels = null
            return
        weights = class_label_weights(class_labels, batch_size, classes)
        if self.scale == 0:  # eps_uncond only: one call with the null class
            self.labels = null
            return
        hard = bool(np.isin(weights, (0.0, 1.0)).all())
        labels = torch.as_tensor(weights.argmax(1), dtype=torch.long, device=device)
        self.guided = self.scale != 1
        self.labels = torch.cat([labels, null]) if self.guided else labels
        if not hard:
            rows = np.zeros((len(self.labels), n_embeds))
            rows[:batch_size, :null_class] = weights
            rows[batch_size:, null_class] = 1.0
            self.mix = torch.as_tensor(rows, dtype=embedding.weight.dtype, device=device)

    def _mixed_embedding(self, module: torch.nn.Embedding, args, output: torch.Tensor) -> torch.Tensor:
        if output.shape[0] != self.mix.shape[0]:
            raise RuntimeError(f"class embedding hook: the UNet got {output.shape[0]} labels, the mix has "
                               f"{self.mix.shape[0]} rows")
        return (self.mix @ module.weight).to(output.dtype)

    @contextmanager
    def applied(self, unet) -> Iterator[None]:
        """Install the mixing hook on ``unet.class_embedding`` for soft labels; always removed on exit."""
        if self.mix is None:
            yield
            return
        handle = unet.class_embedding.register_forward_hook(self._mixed_embedding)
        try:
            yield
        finally:
            handle.remove()

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """The UNet's input for x_t: ``[x_t, x_t]`` when guided (labels ``[y, null]``), else x_t."""
        return torch.cat([x, x]) if self.guided else x


def guidance(eps: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6): eps_uncond + w (eps_cond - eps_uncond), from the
    UNet's output on ``[x_t, x_t]`` with labels ``[y, null]``."""
    eps_cond, eps_uncond = eps.chunk(2)
    return eps_uncond + scale * (eps_cond - eps_uncond)
