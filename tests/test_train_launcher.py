"""accelerate's own settings in training/train.py: the launcher's mixed precision when the config sets none (the
config's otherwise, and the log says which), ``--report_to`` as diffusers' name for ``log_with``, the launcher's
DeepSpeed-only accumulation flag refused when it differs, and ``--help`` listing every config key."""

import dataclasses
import subprocess
import sys

import pytest
import yaml

from training.config import ALIASES, TrainConfig, keys_help, load_config

from .train_helpers import ROOT, train

SHORT = ["--max_train_steps", "2", "--checkpoint_every", "2", "--log_every", "1"]


@pytest.mark.parametrize("config, expected, source", [
    ([], "bf16", "accelerate's (accelerate launch --mixed_precision"),
    (["--mixed_precision", "no"], "no", "the config's mixed_precision"),
])
def test_mixed_precision_from_the_launcher_unless_the_config_sets_it(tmp_path, config, expected, source):
    """ACCELERATE_MIXED_PRECISION is what ``accelerate launch --mixed_precision bf16`` sets for the script."""
    out = tmp_path / "run"
    r = train(out, *SHORT, *config, env_extra={"ACCELERATE_MIXED_PRECISION": "bf16"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert yaml.safe_load((out / "config.yaml").read_text())["mixed_precision"] == expected  # what ran
    assert f"mixed precision: {expected}, {source}" in (out / "log.txt").read_text()


def test_a_differing_launcher_accumulation_is_one_line(tmp_path):
    r = train(tmp_path / "run", *SHORT, env_extra={"ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "4"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: accelerate launch --gradient_accumulation_steps 4")


def test_report_to_is_log_with(tmp_path):
    assert load_config(ROOT / "configs" / "tiny.yaml", ["--report_to", "tensorboard"]).log_with == "tensorboard"
    path = tmp_path / "c.yaml"
    path.write_text("report_to: [tensorboard]\n")
    assert load_config(path).log_with == ["tensorboard"]
    assert ALIASES == {"report_to": "log_with"}


def test_help_lists_every_key_with_its_default():
    text = keys_help()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"{f.name} has no help"
        if f.name != "unet":
            line = next(x for x in text.splitlines() if x.split()[:1] == [f"--{f.name}"])
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            assert yaml.safe_load(line.split()[1]) == default or line.split()[1] == "[]" and default == []
            assert f.metadata["help"] in line
    for key, value in TrainConfig().unet.items():
        assert f"--unet.{key} " in text and yaml.safe_load(text.split(f"--unet.{key} ")[1].splitlines()[0]) == value


def test_the_script_help_shows_the_keys():
    r = subprocess.run([sys.executable, "training/train.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and keys_help() in r.stdout and "--resume" in r.stdout


def test_mixed_precision_no_unquoted_is_no():
    """YAML reads an unquoted no as false: --mixed_precision no is still "no"; null is accelerate's."""
    assert load_config(None, ["--mixed_precision", "no"]).mixed_precision == "no"
    assert load_config(None, []).mixed_precision is None
