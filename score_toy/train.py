"""Fit a score model to a fixed training set with one of the losses (Adam, cosine-decayed learning rate)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from score_toy.mixture import check_points

Loss = Callable[[nn.Module, Tensor, "torch.Generator | None"], Tensor]


def fit(model: nn.Module, loss: Loss, data: Tensor, *, steps: int, batch_size: int, lr: float,
        generator: torch.Generator | None = None) -> list[float]:
    """Minimise ``loss(model, batch, generator)`` over minibatches drawn with replacement from ``data``.

    The learning rate decays from ``lr`` to 0 on a cosine. Returns the loss of every step.
    """
    data = check_points(data, "data")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    history = []
    model.train()
    for _ in range(steps):
        batch = data[torch.randint(data.shape[0], (batch_size,), generator=generator)]
        value = loss(model, batch, generator)
        if not torch.isfinite(value):
            raise FloatingPointError(f"the loss became {value.item()} at step {len(history)}; lower the lr")
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
        history.append(value.item())
    model.eval()
    return history
