"""The experiment settings: ``configs/score_toy.yaml``, merged with a user file and the ``quick`` overrides."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

from score_toy.mixture import split_sizes

# configs/score_toy.yaml of the checkout; an installed wheel carries it as package data in score_toy/configs/
_INSTALLED = Path(__file__).resolve().parent / "configs" / "score_toy.yaml"
DEFAULT_CONFIG = _INSTALLED if _INSTALLED.is_file() else _INSTALLED.parents[2] / "configs" / "score_toy.yaml"


class ConfigError(ValueError):
    """A bad score_toy configuration; the message names the key and the problem."""


# keys of earlier versions, with what replaced them
RETIRED_KEYS = {"n_train": "score_toy now trains on the course notebook's data set (course_samples); set n_samples "
                           "and train_split instead"}


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def merge(base: dict[str, Any], override: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``base`` with ``override`` merged in (recursively); keys unknown to ``base`` raise a ConfigError."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}{key}"
        if key not in base and key in RETIRED_KEYS:
            raise ConfigError(f"config key {name} is gone: {RETIRED_KEYS[key]}")
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f"; did you mean {where}{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {name}{hint}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {name} must be a mapping, got {value!r}")
            out[key] = merge(base[key], value, f"{name}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path | None = None, quick: bool = False) -> dict[str, Any]:
    """The default config, merged with ``path`` (if given) and then with its ``quick`` section (if ``quick``)."""
    if DEFAULT_CONFIG.is_file():
        cfg = _read(DEFAULT_CONFIG)
        if path is not None and Path(path).resolve() != DEFAULT_CONFIG:
            cfg = merge(cfg, _read(Path(path)))
    elif path is not None:
        cfg = _read(Path(path))
    else:
        raise ConfigError(f"no default config at {DEFAULT_CONFIG}; pass --config PATH")
    overrides = cfg.pop("quick", None) or {}
    if quick:
        cfg = merge(cfg, overrides, "quick.")
    validate(cfg)
    return cfg


def validate(cfg: dict[str, Any]) -> None:
    """Check the relations between settings that the components cannot see one at a time."""
    required = ["seed", "student_id", "num_threads", "n_samples", "train_split", "n_eval", "input_scaling",
                "fixed_sigma", "ssm", "noise_conditional", "sampling", "plot", "song_ermon"]
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ConfigError(f"config is missing {', '.join(missing)}")
    for key in ("seed", "num_threads", "n_samples", "n_eval"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < (0 if key == "seed" else 1):
            raise ConfigError(f"{key} must be a {'non-negative' if key == 'seed' else 'positive'} integer, "
                              f"got {cfg[key]!r}")
    try:
        split_sizes(cfg["n_samples"], cfg["train_split"])
    except ValueError as err:
        raise ConfigError(f"n_samples / train_split: {err}") from None
    if cfg["fixed_sigma"]["loss"] not in ("dsm", "ssm", "ssm_vr"):
        raise ConfigError(f"fixed_sigma.loss must be dsm, ssm or ssm_vr, got {cfg['fixed_sigma']['loss']!r}")
    sigmas = [float(s) for s in cfg["fixed_sigma"]["sigmas"]]
    if float(cfg["sampling"]["sigma"]) not in sigmas:
        raise ConfigError(f"sampling.sigma = {cfg['sampling']['sigma']} must be one of fixed_sigma.sigmas {sigmas}")
    nc = cfg["noise_conditional"]
    for s in nc["field_sigmas"]:
        if not float(nc["sigma_min"]) <= float(s) <= float(nc["sigma_max"]):
            raise ConfigError(f"noise_conditional.field_sigmas entry {s} is outside [sigma_min, sigma_max] = "
                              f"[{nc['sigma_min']}, {nc['sigma_max']}]")
    n, k = cfg["sampling"]["n_samples"], cfg["sampling"]["n_trajectories"]
    if not (isinstance(n, int) and n >= 2 and isinstance(k, int) and 1 <= k <= n):
        raise ConfigError(f"sampling needs n_samples >= 2 and 1 <= n_trajectories <= n_samples, got {n} and {k}")
    for section in ("sampling", "song_ermon"):
        lo, hi = cfg[section]["start_box"]
        if not float(lo) < float(hi):
            raise ConfigError(f"{section}.start_box must be [low, high] with low < high, got {[lo, hi]}")
    for section in ("plot", "song_ermon"):
        lo, hi = cfg[section]["extent"]
        if not float(lo) < float(hi):
            raise ConfigError(f"{section}.extent must be [low, high] with low < high, got {[lo, hi]}")
