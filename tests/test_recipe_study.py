"""The recipe study reproduces: each variant's resolved training config is its recorded one, built from the frozen
starting point (configs/recipe_base.yaml) plus the study's common overrides and the variant's one change."""

import dataclasses
from pathlib import Path

import yaml

from experiments.recipe_study import load_study, overrides
from training.config import load_config


def resolved(study: dict, name: str) -> dict:
    args = ["--output_dir", f"{study['output_root']}/{name}", *overrides(study["common"]),
            *overrides(study["variants"][name] or {})]
    return dataclasses.asdict(load_config(study["base_config"], [a for a in args]))


def test_the_base_variant_is_the_first_default_model():
    cfg = resolved(load_study("configs/recipe_study.yaml"), "base")
    assert cfg["unet"]["block_out_channels"] == [32, 64, 64] and cfg["learning_rate"] == 1e-3
    assert cfg["loss_weighting"] == "none" and cfg["max_train_steps"] == 1500 and cfg["num_threads"] == 1


def test_each_variant_changes_one_thing_against_base():
    study = load_study("configs/recipe_study.yaml")
    base = resolved(study, "base")
    for name, change in study["variants"].items():
        cfg = resolved(study, name)
        differ = {k for k in base if k != "output_dir" and cfg[k] != base[k]}
        touched = {k.split(".")[0] for k in (change or {})}
        assert differ == touched, (name, differ, touched)


def test_the_default_config_keeps_the_studys_width_and_learning_rate():
    """configs/sprites_ddpm.yaml = base + the study's width and learning rate 2e-3, with plain L_simple as its loss."""
    default = yaml.safe_load(Path("configs/sprites_ddpm.yaml").read_text())
    assert default["unet"]["block_out_channels"] == [40, 80, 80] and default["learning_rate"] == 2e-3
    assert default["loss_weighting"] == "none"
