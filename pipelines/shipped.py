"""Where the package finds the settings files it ships: ``configs/*.yaml`` of the checkout.

In a checkout they lie in the top-level ``configs/`` folder. An installed wheel carries the ones the code reads
(``sampling_presets.yaml``, ``feature_spaces.yaml``, ``fit_steps.yaml``) as package data in ``pipelines/configs/``
(pyproject.toml maps that folder onto ``configs/``), so every command works from any folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["config_file"]


def config_file(name: str) -> Path:
    """The shipped settings file ``configs/<name>``: the installed package's copy, else the checkout's."""
    here = Path(__file__).resolve().parent
    installed = here / "configs" / name
    return installed if installed.is_file() else here.parent / "configs" / name
