"""The evaluation settings of a training config: which sample sets an evaluation draws and which keys a row holds.

The config's validation (:meth:`training.config.TrainConfig.validate`) checks ``eval_samplers`` and ``eval_best``
here; this module needs only the sampler names of :mod:`pipelines.loading`, so validating a config loads nothing
of the evaluation package (:mod:`training.periodic_eval` does, and only when ``eval_every > 0``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from pipelines.loading import SAMPLERS, default_nfe, sampler_arguments
from sprites.errors import ConfigError

__all__ = ["BASE_SAMPLER", "EVAL_PRIORS", "EvalConfig", "METRICS", "SampleSet", "check_eval_settings", "direction",
           "parse_sampler", "row_keys", "sample_sets"]


EVAL_PRIORS = ("standard", "moments")  # x_T from N(0, I) and from the data's moments at T
BASE_SAMPLER = "ddim@50"  # DDIM, 50 steps, eta 0: always evaluated
# What a row holds per sample set, and which way is better (the direction eval_best is read in).
METRICS = {"fid": "min", "kid": "min", "precision": "max", "recall": "max", "class_gap": "min", "class_match": "max",
           "memorised": "min"}


class EvalConfig(Protocol):
    """The fields of a training config (:class:`training.config.TrainConfig`) that its evaluation settings read."""

    eval_every: int
    eval_samplers: list[str]
    eval_best: str
    num_train_timesteps: int
    conditional: bool
    unet: dict[str, Any]


class SampleSet(NamedTuple):
    """One sample set of an evaluation: a sampler with its UNet-evaluation count, from one prior."""

    sampler: str
    nfe: int
    prior: str

    @property
    def name(self) -> str:
        """``ddim50_moments``: the suffix of the set's keys in a row."""
        return f"{self.sampler}{self.nfe}_{self.prior}"

    def call_arguments(self) -> dict[str, Any]:
        extra = {"eta": 0.0} if self.sampler == "ddim" else {}
        return sampler_arguments(self.sampler, self.nfe, prior=self.prior, **extra)


def parse_sampler(spec: str, num_train_timesteps: int) -> tuple[str, int]:
    """``"dpmpp_2m@10"`` -> ``("dpmpp_2m", 10)``; without ``@N`` the pipeline's default count."""
    name, _, nfe = str(spec).partition("@")
    if name not in SAMPLERS:
        raise ConfigError(f"eval_samplers: unknown sampler {name!r} in {spec!r}; choose from {', '.join(SAMPLERS)} "
                          "(optionally NAME@STEPS, e.g. dpmpp_2m@10)")
    if not nfe:
        return name, default_nfe(name, num_train_timesteps)
    if not nfe.isdigit() or not 1 <= int(nfe) <= num_train_timesteps:
        raise ConfigError(f"eval_samplers: {spec!r} needs a step count in 1..{num_train_timesteps} after '@'")
    return name, int(nfe)


def sample_sets(cfg: EvalConfig) -> list[SampleSet]:
    """DDIM-50 eta 0 and every sampler of ``eval_samplers`` (duplicates dropped), each from both priors."""
    specs = []
    for spec in [BASE_SAMPLER, *cfg.eval_samplers]:
        parsed = parse_sampler(spec, cfg.num_train_timesteps)
        if parsed not in specs:
            specs.append(parsed)
    return [SampleSet(name, nfe, prior) for name, nfe in specs for prior in EVAL_PRIORS]


def row_keys(cfg: EvalConfig) -> list[str]:
    """The metric keys an evaluation of this config writes (``class_match_*`` only for a conditional model)."""
    metrics = [m for m in METRICS if m != "class_match" or cfg.conditional]
    return [f"{m}_{s.name}" for s in sample_sets(cfg) for m in metrics]


def direction(key: str) -> str:
    """"min" or "max": which way the metric of ``key`` is better."""
    metric = next((m for m in sorted(METRICS, key=len, reverse=True) if key.startswith(m + "_")), None)
    if metric is None:
        raise ConfigError(f"eval_best: {key!r} is not a metric key (metrics: {', '.join(METRICS)})")
    return METRICS[metric]


def check_eval_settings(cfg: EvalConfig) -> None:
    """Refuse evaluation settings that cannot work, with the key and the fix (ConfigError)."""
    if not isinstance(cfg.eval_samplers, list):
        raise ConfigError(f"eval_samplers must be a list of sampler names, got {cfg.eval_samplers!r}")
    keys = row_keys(cfg)
    if cfg.eval_best not in keys:
        import difflib

        close = difflib.get_close_matches(str(cfg.eval_best), keys, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(keys)}"
        raise ConfigError(f"eval_best {cfg.eval_best!r} is not a key this evaluation writes; {hint}")
    own = bool(getattr(cfg, "train_data_dir", None) or getattr(cfg, "dataset_name", None))
    net = getattr(cfg, "eval_feature_net", None)
    if cfg.eval_every and (own or net):
        from pathlib import Path

        if not net or not Path(net).is_file():
            found = f"{net!r} is not a file" if net else "it is not set"
            raise ConfigError(f"eval_every on your own data needs eval_feature_net ({found}): make one with python -m "
                              "evaluation.train_classifier --train_data_dir DIR (or --dataset_name); or eval_every 0")
    elif cfg.eval_every:
        size, channels = cfg.unet.get("sample_size", 16), cfg.unet.get("in_channels", 3)
        if size not in (16, [16, 16], (16, 16)) or channels != 3:
            raise ConfigError("eval_every needs a 16x16 RGB UNet (the sprite network's input); this one samples "
                              f"{channels} x {size}: set eval_every 0")
