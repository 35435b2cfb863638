"""Shared fixtures: the real sprites (from ../shared or $SPRITEDIFF_DATA), small thread counts; and the skip
rule: ``pytest.importorskip`` of a project module fails the test (a project module imports for real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sprites.data import read_sprites_arrays

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """The module of ``scripts/NAME.py`` (the scripts folder is not a package), loaded afresh."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def project_packages() -> set[str]:
    """The repository's top-level Python packages (every folder with an ``__init__.py``, tests included)."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py") if not p.parent.name.startswith(".")}


_importorskip = pytest.importorskip


def importorskip_third_party(modname: str, *args, **kwargs):
    """``pytest.importorskip`` for optional third-party packages only: a project module fails the test."""
    if modname.split(".")[0] in project_packages():
        pytest.fail(f"importorskip({modname!r}): {modname} is part of this project and must import; an "
                    "ImportError there is a failure, not a skip", pytrace=False)
    return _importorskip(modname, *args, **kwargs)


pytest.importorskip = importorskip_third_party


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
    return build_unet(load_config(ROOT / "configs" / "tiny.yaml").unet).eval()


@pytest.fixture(scope="session")
def micro_reference(tmp_path_factory) -> Path:
    """The micro training run of tests/train_helpers.py, uninterrupted, made once per session: read it, never
    write into it."""
    from .train_helpers import train

    out = tmp_path_factory.mktemp("ref") / "run"
    r = train(out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out
