"""Shared fixtures: the real sprites (from ../shared or $SPRITEDIFF_DATA), small thread counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sprites.data import read_sprites_arrays


@pytest.fixture(scope="session")
def sprites_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,788 unique sprites (uint8 NHWC) and their integer labels."""
    return read_sprites_arrays()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread for in-process tests: on a 2-core machine shared with other jobs it is faster and
    steadier than two (subprocess tests set their own threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def unet():
    """A randomly initialised UNet of configs/tiny.yaml (seeded), in eval mode."""
    from training.config import load_config
    from training.model import build_unet

    torch.manual_seed(0)
    return build_unet(load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml").unet).eval()


@pytest.fixture(scope="session")
def micro_reference(tmp_path_factory) -> Path:
    """The micro training run of tests/train_helpers.py, uninterrupted, made once per session: read it, never
    write into it."""
    from .train_helpers import train

    out = tmp_path_factory.mktemp("ref") / "run"
    r = train(out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out
