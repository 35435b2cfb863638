# Written by spritediff's save_pretrained from its pipelines/labels.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The sprite classes, class labels and classifier-free guidance, shared by every pipeline.

A conditional UNet is a ``UNet2DModel`` with ``num_class_embeds = 6``: rows 0-4 of ``unet.class_embedding``
are the sprite classes (:data:`SPRITE_CLASSES`) and row 5 is the null class used for classifier-free
guidance. A label is

* an ``int`` in 0..4 or a class name (``"hero"``, ``"non-hero"``, ``"food"``, ``"spell"``, ``"side-facing"``);
* a soft mix: 5 non-negative weights summing to 1, given with floats (``[0.5, 0.0, 0.5, 0.0, 0.0]``, a float
  array or tensor). A list of ints is always read as one integer label per sample, never as a mix.

``class_labels`` is one label (used for the whole batch) or a list / 1-D int tensor / (B, 5) float tensor
with one label per sample. The course feeds a one-hot context through a linear layer, which is a weighted sum
of the layer's columns; a mix reproduces that here: its class embedding is ``weights @ E[:5]`` with ``E`` the
embedding matrix. It is put in place by a forward hook on ``unet.class_embedding`` that replaces the looked-up
rows by the mixed ones; the hook lives only during the sampling loop (``ClassConditioning.applied``) and is
removed in a ``finally`` block. Batches of plain labels take no hook (an ordinary embedding lookup).

Guidance: eps = eps_uncond + w (eps_cond - eps_uncond), the two halves from one UNet call on the concatenated
batch ``[x, x]`` with labels ``[y, null]``. ``w = 1`` is plain conditional sampling and ``w = 0`` unconditional,
one UNet call each.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .sprites_common import check_number

SPRITE_CLASSES: tuple[str, ...] = ("hero", "non-hero", "food", "spell", "side-facing")
NUM_CLASSES = len(SPRITE_CLASSES)
NULL_CLASS = NUM_CLASSES  # row of the class embedding trained as "no label" (classifier-free guidance)




def _class_index(label: Any) -> int:
    if isinstance(label, str):
        name = label.strip().lower()
        if name not in SPRITE_CLASSES:
            raise ValueError(f"class_labels: unknown class name {label!r}; valid names: {', '.join(SPRITE_CLASSES)}")
        return SPRITE_CLASSES.index(name)
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f"class_labels: integer label {int(label)} is out of range; use 0..{NUM_CLASSES - 1} "
                         f"({', '.join(f'{i}={c}' for i, c in enumerate(SPRITE_CLASSES))})")
    return int(label)


def _mix(weights: Any) -> np.ndarray:
    w = np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights, dtype=np.float64)
    if w.shape != (NUM_CLASSES,):
        raise ValueError(f"class_labels: a soft mix needs {NUM_CLASSES} weights (one per class "
                         f"{', '.join(SPRITE_CLASSES)}), got shape {w.shape}")
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


def _one_label(label: Any) -> np.ndarray:
    """One label (int, name or mix) as a row of NUM_CLASSES weights."""
    if isinstance(label, bool | np.bool_):
        raise ValueError(f"class_labels: {label!r} is not a label; use an int 0..{NUM_CLASSES - 1}, a class name "
                         "or 5 mix weights")
    if isinstance(label, str) or _is_int(label):
        return np.eye(NUM_CLASSES)[_class_index(label.item() if isinstance(label, torch.Tensor) else label)]
    if isinstance(label, torch.Tensor | np.ndarray | Sequence):
        return _mix(label)
    raise ValueError(f"class_labels: cannot read {label!r} ({type(label).__name__}) as a label; use an int "
                     f"0..{NUM_CLASSES - 1}, a class name ({', '.join(SPRITE_CLASSES)}) or {NUM_CLASSES} mix weights")


def class_label_weights(class_labels: Any, batch_size: int) -> np.ndarray:
    """Read ``class_labels`` (see the module doc) as a (batch_size, 5) float64 array of class weights."""
    labels = class_labels
    if isinstance(labels, torch.Tensor | np.ndarray):
        array = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
        if array.dtype == np.bool_:
            raise ValueError("class_labels: a boolean array is not a label; use ints, names or mix weights")
        is_float = np.issubdtype(array.dtype, np.floating)
        if array.ndim == 0 or (is_float and array.ndim == 1):
            rows = [_one_label(array.item() if array.ndim == 0 else array)]
        elif array.ndim == 1 or (is_float and array.ndim == 2):
            rows = [_one_label(int(v) if not is_float else v) for v in array]
        else:
            raise ValueError(f"class_labels: an array of shape {array.shape} and dtype {array.dtype}; use int "
                             f"labels (B,) or float mixes ({NUM_CLASSES},) / (B, {NUM_CLASSES})")
    elif isinstance(labels, Sequence) and not isinstance(labels, str):
        if len(labels) == 0:
            raise ValueError("class_labels is empty; give one label, or one per sample")
        numbers_only = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in labels)
        if numbers_only and any(not _is_int(v) for v in labels):
            rows = [_mix(labels)]  # a flat list with floats is one mix
        else:
            rows = [_one_label(v) for v in labels]
    else:
        rows = [_one_label(labels)]
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

    def __init__(self, unet, class_labels: Any, guidance_scale: float, batch_size: int):
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
        if not isinstance(embedding, torch.nn.Embedding) or n_embeds is None or n_embeds < NUM_CLASSES:
            raise ValueError(f"unet: class conditioning needs an embedding table with {NUM_CLASSES} classes (+1 null "
                             f"class for guidance); this UNet has class_embed_type="
                             f"{unet.config.get('class_embed_type')!r}, num_class_embeds={n_embeds}")
        has_null = n_embeds > NULL_CLASS
        device = embedding.weight.device
        if class_labels is None:
            if self.scale != 1:
                raise ValueError(f"guidance_scale={guidance_scale} needs class_labels; without labels the model "
                                 "samples unconditionally (null class)")
            if not has_null:
                raise ValueError(f"class_labels are required: this UNet has no null class (num_class_embeds="
                                 f"{n_embeds}); give a label such as 0 or 'hero'")
            self.labels = torch.full((batch_size,), NULL_CLASS, dtype=torch.long, device=device)
            return
        weights = class_label_weights(class_labels, batch_size)
        if self.scale != 1 and not has_null:
            raise ValueError(f"guidance_scale={guidance_scale} needs a null class (num_class_embeds >= "
                             f"{NUM_CLASSES + 1}); this UNet has {n_embeds}. Use guidance_scale=1.")
        null = torch.full((batch_size,), NULL_CLASS, dtype=torch.long, device=device)
        if self.scale == 0:  # eps_uncond only: one call with the null class
            self.labels = null
            return
        hard = bool(np.isin(weights, (0.0, 1.0)).all())
        labels = torch.as_tensor(weights.argmax(1), dtype=torch.long, device=device)
        self.guided = self.scale != 1
        self.labels = torch.cat([labels, null]) if self.guided else labels
        if not hard:
            rows = np.zeros((len(self.labels), n_embeds))
            rows[:batch_size, :NUM_CLASSES] = weights
            rows[batch_size:, NULL_CLASS] = 1.0
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
