"""Train the sprite feature network (the feature space of sprite-FID) on the 5 sprite labels, or the same network
on any labelled image set (a feature space for that data, offline).

    python -m evaluation.train_classifier --config configs/sprite_classifier.yaml [--key value ...]
    python -m evaluation.train_classifier --config configs/sprite_classifier.yaml --train_data_dir DIR \
        --output_dir runs/my_features [--dataset_name NAME --image_column image --label_column label --resolution S]

Any data source of the trainer is accepted (sprites.image_data): an image folder with one subfolder per class, a
saved or hub data set with a label column, or arrays with labels; the network takes the data's size and channels.

The sprites are split into train and held-out sets by mirror pairs (sprite i and i+894 together, stratified by
class), the small CNN of :mod:`evaluation.features` is trained on the train set with horizontal flips and
one-pixel shifts, and the held-out accuracy is measured once at the end (no model selection on it). The
script writes ``<output_dir>/sprite_features_<version>.safetensors`` and a JSON beside it with the version,
the sha256 of the data arrays, the held-out indices and accuracy. A few minutes on 2 CPU cores. On other data the
split is stratified by class (no mirror pairs) and the files are named ``features_<version>``.

The committed file ``evaluation/weights/sprite_features_v1.safetensors`` was made by this script with the
shipped config; rerunning it on the same machine (one thread) reproduces the file bit for bit, but other CPUs or
library versions may give slightly different weights. sprite-FID numbers are comparable only between runs that use
the same file: to change it, bump ``version``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from evaluation.features import SpriteFeatureNet, SpriteNetConfig, save_sprite_feature_net
from evaluation.splits import data_sha256, split_by_pairs
from sprites.data import SpritesDataError, images_to_tensor
from sprites.errors import ConfigError
from sprites.image_data import ImageSet, load_image_set


@dataclass
class ClassifierConfig:
    """Settings of one classifier run; see configs/sprite_classifier.yaml."""

    output_dir: str = "runs/sprite_classifier"
    version: str = "v1"
    data_path: str | None = None  # None (and no other source): $SPRITEDIFF_DATA or ../shared/data/sprites
    train_data_dir: str | None = None  # an image folder with one subfolder per class
    dataset_name: str | None = None  # a hub data set, a save_to_disk folder or a local data folder
    image_column: str = "image"
    label_column: str | None = None  # None: "label"
    resolution: int | None = None  # resize and centre-crop to this square size, 8..64
    seed: int = 0
    split_seed: int = 0
    held_out_fraction: float = 0.2
    widths: list[int] = dataclasses.field(default_factory=lambda: list(SpriteNetConfig.widths))
    feature_dim: int = 128
    epochs: int = 150
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    hflip: bool = True
    max_shift: int = 1  # random translation in pixels (edges replicated)
    num_threads: int = 1

    def validate(self) -> ClassifierConfig:
        for key in ("epochs", "batch_size", "learning_rate", "feature_dim", "num_threads"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if not 0 < self.held_out_fraction < 1:
            raise ConfigError(f"held_out_fraction must lie in (0, 1), got {self.held_out_fraction}")
        if len(self.widths) != 3 or min(self.widths) <= 0:
            raise ConfigError(f"widths must be three positive channel counts, got {self.widths}")
        if self.weight_decay < 0 or not 0 <= self.label_smoothing < 1 or self.max_shift < 0:
            raise ConfigError("weight_decay and max_shift must be >= 0 and label_smoothing in [0, 1)")
        return self


def load_classifier_config(path: str | Path | None, overrides: list[str]) -> ClassifierConfig:
    """YAML config plus ``--key value`` overrides (values parsed as YAML); unknown keys suggest the closest."""
    fields = {f.name: f for f in dataclasses.fields(ClassifierConfig)}
    values: dict[str, Any] = {}

    def put(key: str, value: Any, where: str) -> None:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"unknown config key {key!r} in {where}{hint}")
        default = ClassifierConfig().__getattribute__(key)
        if isinstance(default, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if default is not None and value is not None and not isinstance(value, type(default)):
            raise ConfigError(f"{key} must be of type {type(default).__name__}, got {value!r}")
        values[key] = value

    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of config keys")
        for key, value in data.items():
            put(key, value, str(path))
    i = 0
    while i < len(overrides):
        flag = overrides[i]
        if not flag.startswith("--") or i + 1 >= len(overrides):
            raise ConfigError(f"bad override {flag!r}; use --key value")
        put(flag[2:], yaml.safe_load(overrides[i + 1]), "the command line")
        i += 2
    return ClassifierConfig(**values).validate()


def augment(x: torch.Tensor, hflip: bool, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and integer translation (edge pixels replicated) of a batch (N, 3, 16, 16)."""
    n = x.shape[0]
    if hflip:
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if max_shift > 0:
        s, size = max_shift, x.shape[-1]
        padded = F.pad(x, (s, s, s, s), mode="replicate")
        dy = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * s + 1, (n,), generator=gen)
        x = torch.stack([padded[i, :, dy[i]:dy[i] + size, dx[i]:dx[i] + size] for i in range(n)])
    return x


def load_labelled_data(cfg: ClassifierConfig) -> ImageSet:
    """The labelled image set of the config (a classifier needs two or more classes)."""
    data = load_image_set(cfg.data_path, cfg.train_data_dir, cfg.dataset_name, cfg.image_column, cfg.label_column,
                          cfg.resolution)
    if data.labels is None or len(np.unique(data.labels)) < 2:
        what = "has no labels" if data.labels is None else "holds a single class"
        raise SpritesDataError(f"{data.source} {what}; the feature network learns to tell two or more classes apart "
                               "(class subfolders, or --label_column)")
    return data


@torch.no_grad()
def evaluate(net: SpriteFeatureNet, x: torch.Tensor, y: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class accuracy and the confusion matrix of ``net`` on (x, y)."""
    net.eval()
    pred = net(x).argmax(1)
    k = len(class_names)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    per_class = (confusion.diag().double() / confusion.sum(1).clamp_min(1).double()).tolist()
    return {"accuracy": float((pred == y).double().mean()), "balanced_accuracy": float(np.mean(per_class)),
            "per_class_accuracy": dict(zip(class_names, per_class, strict=True)),
            "confusion": confusion.tolist()}


def train(cfg: ClassifierConfig) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    data = load_labelled_data(cfg)
    images, labels, names = data.images, data.labels, data.class_names
    train_idx, held_idx = split_by_pairs(labels, cfg.held_out_fraction, cfg.split_seed)  # pairs: the sprites only
    x_all, y_all = images_to_tensor(images), torch.as_tensor(labels)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    net = SpriteFeatureNet(SpriteNetConfig(widths=tuple(cfg.widths), feature_dim=cfg.feature_dim,
                                           num_classes=len(names), in_channels=data.channels,
                                           image_size=data.size))
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / steps_per_epoch) * 0.5 * (1 + math.cos(math.pi * s / total)))
    gen = torch.Generator().manual_seed(cfg.seed)
    start = time.time()
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.randperm(len(train_idx), generator=gen)
        loss_sum = correct = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            xb = augment(x_train[idx], cfg.hflip, cfg.max_shift, gen)
            logits = net(xb)
            loss = F.cross_entropy(logits, y_train[idx], label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == y_train[idx]).sum())
        if epoch % 10 == 0 or epoch == cfg.epochs - 1:
            print(f"epoch {epoch + 1:4d}/{cfg.epochs}  loss {loss_sum / len(train_idx):.4f}  "
                  f"train acc (augmented) {correct / len(train_idx):.3f}  {time.time() - start:.0f}s", flush=True)
    train_metrics = evaluate(net, x_train, y_train, names)
    held = evaluate(net, x_all[held_idx], y_all[held_idx], names)
    held_flipped = evaluate(net, x_all[held_idx].flip(-1), y_all[held_idx], names)
    name = "sprite_features" if data.is_sprites else "features"
    meta = {
        "name": name,
        "version": cfg.version,
        "feature_dim": cfg.feature_dim,
        "feature_layer": "hidden (ReLU of a linear layer on the global-average-pooled conv features)",
        "held_out_accuracy": held["accuracy"],
        "held_out_balanced_accuracy": held["balanced_accuracy"],
        "held_out_accuracy_flipped": held_flipped["accuracy"],
        "held_out_per_class_accuracy": held["per_class_accuracy"],
        "held_out_confusion": held["confusion"],
        "train_accuracy": train_metrics["accuracy"],
        "classes": list(names),
        **({} if data.is_sprites else {"data_source": data.source}),
        "data_sha256": data_sha256(images, labels),
        "n_images": int(len(labels)),
        "n_train": int(len(train_idx)),
        "n_held_out": int(len(held_idx)),
        "held_out_indices": held_idx.tolist(),
        "train_seconds": round(time.time() - start, 1),
        "torch_version": torch.__version__,
        "config": dataclasses.asdict(cfg),
    }
    out = Path(cfg.output_dir) / f"{name}_{cfg.version}.safetensors"
    save_sprite_feature_net(net.eval(), out, meta)
    print(f"held-out accuracy {held['accuracy']:.4f} (balanced {held['balanced_accuracy']:.4f}, flipped "
          f"{held_flipped['accuracy']:.4f}) on {len(held_idx)} sprites; train accuracy "
          f"{train_metrics['accuracy']:.4f}")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) and {out.with_suffix('.json')}")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.train_classifier", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="YAML file (configs/sprite_classifier.yaml)")
    args, overrides = parser.parse_known_args(argv)
    try:
        cfg = load_classifier_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        meta = train(cfg)
    except SpritesDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: meta[k] for k in ("version", "held_out_accuracy", "held_out_balanced_accuracy",
                                             "data_sha256")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
