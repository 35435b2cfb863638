"""Shared fixtures: the real sprites (from ../shared or $SPRITEDIFF_DATA), small thread counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.data import read_sprites_arrays


@pytest.fixture(scope="session")
def sprites_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,788 unique sprites (uint8 NHWC) and their integer labels."""
    return read_sprites_arrays()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
