"""Training configuration: YAML under ``configs/``, overridable as ``--key value`` on the command line.

Every key is a field of :class:`TrainConfig`; ``unet`` is the keyword dictionary of diffusers'
``UNet2DModel`` and its entries are overridden as ``--unet.key value``. Values from the command line are
parsed as YAML (``--learning_rate 1e-3``, ``--unet.block_out_channels [32,64,64]``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.schedule import TIMESTEP_SPACINGS
from sprites.errors import ConfigError
from training.eval_settings import check_eval_settings
from training.loss import LOSS_WEIGHTINGS


def default_unet() -> dict[str, Any]:
    return {
        "sample_size": 16, "in_channels": 3, "out_channels": 3, "layers_per_block": 1,
        "block_out_channels": [32, 64, 64], "norm_num_groups": 8,
        "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    }


def setting(default: Any = dataclasses.MISSING, help: str = "", *, factory: Any = None) -> Any:
    """A config field with its one line of help (``python training/train.py --help`` lists them all)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """All settings of one training run (see ``configs/*.yaml`` for commented examples)."""

    output_dir: str = setting("runs/default", "the run folder (config.yaml, stats.jsonl, log.txt, checkpoints/, "
                              "pipeline/)")
    seed: int = setting(0, "seed of the initial weights and of every step's draws (batch, flips, t, noise, labels)")
    # data: one source (docs/own_data.md); none: the course sprites from $SPRITEDIFF_DATA or ../shared
    data_path: str | None = setting(None, "sprites folder, .npz/.npy arrays (any NHWC shape), image folder or sprites "
                                    "hub name")
    train_data_dir: str | None = setting(None, "an image folder; its subfolders are the classes (as datasets' "
                                         "imagefolder)")
    dataset_name: str | None = setting(None, "a hub data set, a Dataset.save_to_disk folder or a local data folder")
    image_column: str = setting("image", "the data set's image column")
    label_column: str | None = setting(None, "the data set's label column; null: \"label\" when there is one, else "
                                       "unconditional")
    resolution: int | None = setting(None, "resize (shorter side) and centre-crop to this square size, 8..64")
    hflip: bool = setting(True, "flip each training image left-right with probability 1/2")
    # noise schedule (the course's: linear beta 1e-4 .. 0.02, T = 500)
    num_train_timesteps: int = setting(500, "T, the number of diffusion steps")
    beta_start: float = setting(1e-4, "beta_1 of the linear beta schedule")
    beta_end: float = setting(0.02, "beta_T of the linear beta schedule")
    # sampling settings saved in the pipeline's scheduler config: every pipeline (ours and diffusers' stock
    # DDPMPipeline / DDIMPipeline) takes its defaults from them (measured best: docs/ddpm_vs_ddim.md)
    timestep_spacing: str = setting("trailing", "the saved scheduler's timestep spacing: leading, linspace or "
                                    "trailing")
    clip_sample: bool = setting(False, "the saved scheduler clips the predicted x_0 to [-1, 1]")
    variance_type: str = setting("fixed_large", "DDPM sigma_t^2 of the saved scheduler: fixed_large (beta_t) or "
                                 "fixed_small (posterior)")
    # model
    unet: dict[str, Any] = setting(factory=default_unet, help="keyword arguments of diffusers' UNet2DModel, "
                                   "each set as --unet.KEY VALUE; defaults:")
    conditional: bool = setting(False, "condition on the 5 labels (class embedding with a null class)")
    init_from: str | None = setting(None, "start from the UNet of this pipeline folder (new class embeddings "
                                    "start at 0)")
    cond_drop_prob: float = setting(0.1, "probability of training on the null class (classifier-free guidance)")
    # optimisation
    train_batch_size: int = setting(128, "images per forward pass, over all processes (split evenly)")
    gradient_accumulation_steps: int = setting(1, "forward passes per optimizer step "
                                               "(accelerator.accumulate); a step's batch: train_batch_size x this")
    max_train_steps: int = setting(1000, "optimizer steps to train for")
    max_train_minutes: float | None = setting(None, "stop (and save) after this wall time, whatever the step")
    learning_rate: float = setting(1e-3, "AdamW's peak learning rate")
    adam_beta1: float = setting(0.9, "AdamW's beta_1")
    adam_beta2: float = setting(0.999, "AdamW's beta_2")
    adam_epsilon: float = setting(1e-8, "AdamW's epsilon")
    weight_decay: float = setting(0.0, "AdamW's decoupled weight decay")
    lr_warmup_steps: int = setting(100, "steps of linear learning-rate warm-up")
    lr_scheduler: str = setting("cosine", "learning-rate decay after warm-up: cosine, linear, constant or "
                                "constant_with_warmup")
    max_grad_norm: float = setting(1.0, "clip the gradient to this norm (0: no clipping)")
    ema_decay: float = setting(0.999, "the EMA's decay (with ema_power: its upper bound)")
    ema_power: float | None = setting(None, "EDM2-style power EMA: decay t / (t + ema_power + 1); null: constant "
                                      "ema_decay")
    loss_weighting: str = setting("none", "none (Ho et al. eq. 14) or min_snr (Hang et al. 2023)")
    min_snr_gamma: float = setting(5.0, "gamma of min-SNR-gamma weighting")
    mixed_precision: str | None = setting(None, "no, fp16 or bf16; null: accelerate's (accelerate launch "
                                          "--mixed_precision, else no)")
    num_threads: int = setting(0, "torch CPU threads per process; 0: cores / processes")
    # logging, samples, checkpoints
    log_every: int = setting(50, "a row of stats.jsonl (and of the trackers) every this many steps")
    sample_every: int = setting(0, "a sample grid in samples/ every this many steps; 0: only at the end")
    num_sample_images: int = setting(50, "sprites per sample grid")
    sample_inference_steps: int = setting(50, "DDIM steps of the sample grids")
    checkpoint_every: int = setting(500, "a checkpoint (accelerator.save_state) every this many steps")
    checkpoints_total_limit: int = setting(2, "checkpoints kept (the oldest are removed)")
    log_with: str | list[str] | None = setting(None, "accelerate's trackers (tensorboard, wandb, ...): losses, eval "
                                               "rows, sample grids; alias --report_to")
    # evaluation during training (training/periodic_eval.py): rows in eval.jsonl, curves in eval.png, best/
    eval_every: int = setting(0, "evaluate the EMA weights every this many steps and at the end; 0: off")
    eval_samples: int = setting(100, "sprites per sample set (DDIM-50 eta 0 from both priors, and each of "
                                "eval_samplers)")
    eval_batch_size: int = setting(100, "sprites per pipeline call; batch b is seeded eval_seed + b")
    eval_seed: int = setting(0, "seed of the evaluation's first batch")
    eval_samplers: list[str] = setting(factory=list, help="more sample sets to evaluate: ddpm, dpmpp_2m@10, ...")
    eval_best: str = setting("fid_ddim50_moments", "best/ keeps the EMA pipeline of the best row by this key")
    eval_feature_net: str | None = setting(None, "own data: the .safetensors of python -m evaluation.train_classifier "
                                           "on the training data; eval_every scores in it (docs/own_data.md)")
    # hub
    push_to_hub: bool = setting(False, "upload the final pipeline to the Hugging Face Hub (checked at the start)")
    hub_model_id: str | None = setting(None, "the hub repo to push to, e.g. you/sprites-ddpm")
    hub_private: bool = setting(False, "create the hub repo as private")

    @property
    def step_batch_size(self) -> int:
        """Images per optimizer step: the forward pass's batch times the passes accumulated."""
        return self.train_batch_size * self.gradient_accumulation_steps

    def validate(self) -> TrainConfig:
        """Check ranges and relations; raise :class:`ConfigError` naming the key."""
        positive = ["num_train_timesteps", "train_batch_size", "gradient_accumulation_steps", "max_train_steps",
                    "learning_rate", "log_every", "checkpoint_every", "checkpoints_total_limit", "num_sample_images",
                    "sample_inference_steps", "eval_samples", "eval_batch_size"]
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        for key in ["lr_warmup_steps", "weight_decay", "max_grad_norm", "sample_every", "adam_epsilon", "num_threads",
                    "eval_every"]:
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError(f"need 0 < beta_start < beta_end < 1, got beta_start={self.beta_start}, "
                              f"beta_end={self.beta_end}")
        for key in ["ema_decay", "adam_beta1", "adam_beta2"]:
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key} must lie in [0, 1), got {getattr(self, key)}")
        if not 0 <= self.cond_drop_prob < 1:
            raise ConfigError(f"cond_drop_prob must lie in [0, 1), got {self.cond_drop_prob}")
        if self.sample_inference_steps > self.num_train_timesteps:
            raise ConfigError(f"sample_inference_steps ({self.sample_inference_steps}) cannot exceed "
                              f"num_train_timesteps ({self.num_train_timesteps})")
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ConfigError(f"timestep_spacing must be {', '.join(TIMESTEP_SPACINGS[:-1])} or "
                              f"{TIMESTEP_SPACINGS[-1]}, got {self.timestep_spacing!r}")
        if self.variance_type not in ("fixed_small", "fixed_large"):
            raise ConfigError(f"variance_type must be fixed_small (posterior) or fixed_large (beta_t), got "
                              f"{self.variance_type!r}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ConfigError(f"loss_weighting must be {' or '.join(map(repr, LOSS_WEIGHTINGS))}, got "
                              f"{self.loss_weighting!r}")
        if self.min_snr_gamma <= 0:
            raise ConfigError(f"min_snr_gamma must be positive, got {self.min_snr_gamma}")
        if self.ema_power is not None and self.ema_power <= 0:
            raise ConfigError(f"ema_power must be positive or null, got {self.ema_power}")
        if self.mixed_precision not in (None, "no", "fp16", "bf16"):
            raise ConfigError(f"mixed_precision must be 'no', 'fp16', 'bf16' or null (accelerate's), got "
                              f"{self.mixed_precision!r}")
        if self.lr_scheduler not in ("cosine", "linear", "constant", "constant_with_warmup"):
            raise ConfigError(f"lr_scheduler must be cosine, linear, constant or constant_with_warmup, "
                              f"got {self.lr_scheduler!r}")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise ConfigError(f"max_train_minutes must be positive or null, got {self.max_train_minutes}")
        sources = [k for k in ("data_path", "train_data_dir", "dataset_name") if getattr(self, k)]
        if len(sources) > 1:
            raise ConfigError(f"give one data source, not {' and '.join(sources)}")
        if self.resolution is not None and (not isinstance(self.resolution, int) or isinstance(self.resolution, bool)
                                            or not 8 <= self.resolution <= 64):
            raise ConfigError(f"resolution must lie in 8..64 (square images), got {self.resolution}")
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("push_to_hub needs hub_model_id (for example --hub_model_id you/sprites-ddpm)")
        if not isinstance(self.unet, dict):
            raise ConfigError(f"unet must be a mapping of UNet2DModel arguments, got {type(self.unet).__name__}")
        channels = self.unet.get("in_channels", 3)
        if channels not in (1, 3) or self.unet.get("out_channels", channels) != channels:
            raise ConfigError(f"unet: in_channels and out_channels must both be 3 (RGB sprites) or both 1 (grey), "
                              f"got {channels} and {self.unet.get('out_channels')}")
        self._validate_logging()
        return self

    def _validate_logging(self) -> None:
        """The trackers (installed, known to accelerate) and the evaluation settings."""
        trackers = [self.log_with] if isinstance(self.log_with, str) else self.log_with
        if trackers is not None:
            if not isinstance(trackers, list) or not all(isinstance(t, str) for t in trackers):
                raise ConfigError(f"log_with must be a tracker name or a list of them, got {self.log_with!r}")
            from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

            available = {str(t) for t in get_available_trackers()}
            for name in trackers:
                if name not in LOGGER_TYPE_TO_CLASS:
                    raise ConfigError(f"log_with: unknown tracker {name!r}; accelerate knows "
                                      f"{', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
                if name not in available:
                    extra = " (or pip install -e '.[tensorboard]')" if name == "tensorboard" else ""
                    raise ConfigError(f"log_with: the {name} tracker is not installed; pip install {name}{extra}, "
                                      "or remove log_with")
        check_eval_settings(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ALIASES = {"report_to": "log_with"}  # the diffusers examples' names for our keys


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _flow(value: Any) -> str:
    """A value as it is written on the command line (YAML flow style: null, true, [32, 64], 'text')."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def keys_help() -> str:
    """Every config key with its default and its one line of help (the fields' ``help`` metadata), for --help."""
    rows = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "unet":
            rows.append(("--unet.KEY VALUE", f.metadata["help"]))
            rows += [(f"  --unet.{k} {_flow(v)}", "") for k, v in default_unet().items()]
        else:
            rows.append((f"--{f.name} {_flow(_default(f))}", f.metadata["help"]))
    rows += [(f"--{alias}", f"the same as --{key}") for alias, key in ALIASES.items()]
    width = max(len(left) for left, help in rows if help and len(left) < 40) + 2
    return "\n".join(["config keys (in the YAML config, or on the command line as --key value, read as YAML), with "
                      "their defaults:", *(f"  {left:<{width}}{help}".rstrip() for left, help in rows)])


def _field_types() -> dict[str, Any]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _unknown(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(valid))}"
    return ConfigError(f"unknown config key {key!r} in {where}{hint}")


def _coerce(key: str, value: Any) -> Any:
    """Check a value against the field's default type (ints accepted for floats; None where allowed)."""
    f = _field_types()[key]
    default = _default(f)
    if key == "mixed_precision" and value is False:
        return "no"  # YAML reads an unquoted no as false
    if value is None:
        if default is None or "None" in str(f.type):
            return None
        raise ConfigError(f"{key} cannot be null")
    if default is None:
        return value
    want = type(default)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{key} must be of type {want.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _apply(cfg: dict[str, Any], key: str, value: Any, where: str, given: set[str] | None = None) -> None:
    """Set ``key`` (``unet.x`` for a UNet keyword) in ``cfg``; the UNet keywords set go into ``given``."""
    fields = _field_types()
    top, _, sub = key.partition(".")
    top = ALIASES.get(top, top)
    if top not in fields:
        raise _unknown(top, list(fields), where)
    if sub:
        if top != "unet":
            raise ConfigError(f"{key!r} in {where}: only unet takes dotted sub-keys")
        cfg["unet"][sub] = value
        if given is not None:
            given.add(sub)
    elif top == "unet":
        if not isinstance(value, dict):
            raise ConfigError(f"unet in {where} must be a mapping of UNet2DModel arguments")
        cfg["unet"] = {**default_unet(), **value}
        if given is not None:
            given.update(value)
    else:
        cfg[top] = _coerce(top, value)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply ``--key value`` overrides, validate. Unknown keys suggest the closest one.

    The UNet keywords the file or the command line set are kept in ``unet_given`` (an attribute, not a key): the
    trainer takes the others that depend on the data (image size, channels) from the data."""
    cfg = TrainConfig().to_dict()
    given: set[str] = set()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found (see configs/ for the shipped ones)")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of config keys")
        for key, value in data.items():
            _apply(cfg, key, value, str(path), given)
    overrides = list(overrides or [])
    i = 0
    while i < len(overrides):
        flag = overrides[i]
        if not flag.startswith("--"):
            raise ConfigError(f"unexpected argument {flag!r}; overrides take the form --key value")
        key, eq, inline = flag[2:].partition("=")
        if eq:
            raw, i = inline, i + 1
        elif i + 1 < len(overrides) and not overrides[i + 1].startswith("--"):
            raw, i = overrides[i + 1], i + 2
        else:
            raw, i = "true", i + 1  # a bare flag such as --push_to_hub
        _apply(cfg, key, yaml.safe_load(raw), "the command line", given)
    config = TrainConfig(**cfg).validate()
    config.unet_given = frozenset(given)
    return config


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
