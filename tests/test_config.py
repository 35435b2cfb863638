"""Configs: YAML plus --key value overrides, and clear errors for bad keys, types and ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
# training configs are the ones with a UNet; the others (score_toy, sprite_classifier, bench_fid, report) are
# read by their own commands and tested there
CONFIGS = sorted(p for p in (ROOT / "configs").glob("*.yaml") if "unet" in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_training_configs_load(path):
    cfg = load_config(path)
    assert cfg.num_train_timesteps == 500 and cfg.beta_start == 1e-4 and cfg.beta_end == 0.02


def test_overrides_parse_as_yaml():
    cfg = load_config("configs/tiny.yaml", ["--learning_rate", "3e-4", "--unet.block_out_channels", "[8,16,16]",
                                            "--output_dir=/tmp/x", "--push_to_hub", "--hub_model_id", "me/m"])
    assert cfg.learning_rate == 3e-4 and cfg.unet["block_out_channels"] == [8, 16, 16]
    assert cfg.output_dir == "/tmp/x" and cfg.push_to_hub is True and cfg.hub_model_id == "me/m"


@pytest.mark.parametrize("args, match", [
    (["--learnig_rate", "1e-3"], "did you mean 'learning_rate'"),
    (["--learning_rate", "-1"], "learning_rate must be positive"),
    (["--beta_end", "1e-5"], "beta_start < beta_end"),
    (["--sample_inference_steps", "600"], "cannot exceed num_train_timesteps"),
    (["--max_train_steps", "ten"], "max_train_steps must be of type int"),
    (["--ema_decay", "1.5"], r"ema_decay must lie in \[0, 1\)"),
    (["--push_to_hub"], "needs hub_model_id"),
    (["stray"], "overrides take the form --key value"),
])
def test_bad_settings_are_named(args, match):
    with pytest.raises(ConfigError, match=match):
        load_config("configs/tiny.yaml", args)


def test_unknown_key_in_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train_batchsize: 64\n")
    with pytest.raises(ConfigError, match=f"in {bad}; did you mean 'train_batch_size'"):
        load_config(bad)
