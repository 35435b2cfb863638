"""Evaluation during training: eval.jsonl rows that survive a kill and a resume, best/, the trackers'
TensorBoard events, and the post-hoc command giving the same rows from the checkpoints. The runs are the micro
run of tests/train_helpers.py with 8 samples per set."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from training.checkpoints import refuse_foreign_run
from training.config import ConfigError, load_config
from training.eval_settings import direction, row_keys
from training.periodic_eval import read_rows

from .train_helpers import ROOT, assert_same, ema_weights, train, weights

EVAL = ["--eval_every", "4", "--eval_samples", "8", "--eval_batch_size", "8", "--checkpoints_total_limit", "3",
        "--log_with", "tensorboard"]
TIMING = ("eval_s", "sampling_s")


def same_numbers(a: dict, b: dict, rel: float = 1e-6) -> None:
    keys = set(a) - set(TIMING)
    assert keys == set(b) - set(TIMING)
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=rel, abs=1e-9), k


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The micro run evaluating every 4 steps, killed inside the checkpoint save of step 8 (after the evaluation
    of step 8 was written) and resumed from checkpoint 4; with the rows the killed run had written."""
    out = tmp_path_factory.mktemp("eval") / "run"
    r = train(out, *EVAL, fault="kill-in-save@8")
    assert r.returncode == -9, r.stderr[-2000:]
    killed = read_rows(out)
    r = train(out, *EVAL, "--resume", "latest")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from" in r.stderr and "checkpoint-0000004" in r.stderr
    return out, killed


def test_eval_rows_survive_a_kill_and_resume_and_do_not_change_training(eval_run, micro_reference):
    out, killed = eval_run
    rows = read_rows(out)
    assert [r["step"] for r in killed] == [4, 8]  # step 8 was evaluated, its checkpoint never completed
    assert [r["step"] for r in rows] == [4, 8, 12]  # no duplicate, none missing
    same_numbers(rows[0], killed[0])
    assert rows[0]["eval_s"] == killed[0]["eval_s"]  # step 4 kept as written
    same_numbers(rows[1], killed[1])  # step 8 evaluated again after the resume: the same weights, the same numbers
    cfg = load_config(out / "config.yaml")
    assert set(row_keys(cfg)) <= set(rows[-1])
    for row in rows:
        for key in row_keys(cfg):
            assert math.isfinite(row[key]) and (key.startswith("kid") or row[key] >= 0), key
        assert 0 <= row["memorised_ddim50_moments"] <= 1 and row["eval_samples"] == 8
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stats] == list(range(2, 13, 2))
    assert (out / "eval.png").stat().st_size > 10_000
    table = (out / "eval.md").read_text().splitlines()  # a line per row, in step order, with its numbers
    assert len(table) == 2 + len(rows) and [line.split(" | ")[0] for line in table[2:]] == ["| 4", "| 8", "| 12"]
    assert f"{rows[-1]['fid_ddim50_standard']:.3f}, {rows[-1]['precision_ddim50_standard']:.2f}" in table[-1]
    # evaluating (EMA in and out of the UNet) left training as it was: the uninterrupted run without evaluation
    assert_same(weights(out), weights(micro_reference), atol=1e-6)
    assert_same(ema_weights(out), ema_weights(micro_reference), atol=1e-6)


def test_best_holds_the_ema_pipeline_of_the_best_row(eval_run):
    from training.export_checkpoint import checkpoint_unet

    out, _ = eval_run
    rows = read_rows(out)
    key = load_config(out / "config.yaml").eval_best
    assert key == "fid_ddim50_moments" and direction(key) == "min"
    best = min(rows, key=lambda r: r[key])
    record = json.loads((out / "best" / "eval_row.json").read_text())
    assert record["criterion"] == key and record["row"]["step"] == best["step"]
    same_numbers(record["row"], best)
    unet, _ = checkpoint_unet(out / "checkpoints" / f"checkpoint-{best['step']:07d}")
    saved = load_file(out / "best" / "unet" / "diffusion_pytorch_model.safetensors")
    assert_same(saved, {k: v.detach() for k, v in unet.state_dict().items()})
    assert (out / "best" / "data_moments.safetensors").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_tensorboard_events_hold_the_loss_eval_rows_and_grid_once(eval_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = eval_run
    events = EventAccumulator(str(out / "logs" / "train"))
    events.Reload()  # the killed run's events past checkpoint 4 are purged (purge_step on resume)
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [r["step"] for r in stats]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in stats], rel=1e-6)
    fid = events.Scalars("eval/fid_ddim50_moments")
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in fid] == [(r["step"], r["fid_ddim50_moments"])
                                                                         for r in read_rows(out)]
    import io

    import numpy as np
    from PIL import Image

    grids = events.Images("samples")  # the final grid, pixel for pixel as samples/final.png holds it
    assert [e.step for e in grids] == [12]
    logged = np.asarray(Image.open(io.BytesIO(grids[0].encoded_image_string)).convert("RGB"))
    assert np.array_equal(logged, np.asarray(Image.open(out / "samples" / "final.png").convert("RGB")))


def test_evaluate_run_fills_missing_steps_with_the_same_rows(eval_run, tmp_path):
    """The post-hoc command evaluates the checkpoints without a row, with the trainer's evaluation."""
    from training.evaluate_run import evaluate_run

    out, _ = eval_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("best", "logs", "eval.png"))
    rows = read_rows(out)
    (copy / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] != 8))
    new = evaluate_run(copy, ["--num_threads", "1"], log=lambda *_: None)
    assert [r["step"] for r in new] == [8]
    after = read_rows(copy)
    assert [r["step"] for r in after] == [4, 8, 12]
    same_numbers(after[1], rows[1])  # the same numbers as evaluated during training
    assert after[0] == rows[0] and after[2] == rows[2]  # rows already there are kept as they were
    assert (copy / "eval.png").is_file()
    assert evaluate_run(copy, [], log=lambda *_: None) == []  # nothing left to do
    for bad in ("gpu", "cuda:0" if not torch.cuda.is_available() else "cpu:x"):
        with pytest.raises(ConfigError, match=f"--device {bad}"):
            evaluate_run(copy, [], log=lambda *_: None, device=bad)
    with pytest.raises(ConfigError, match="only --eval_samples"):
        evaluate_run(copy, ["--learning_rate", "1"])


@pytest.mark.parametrize("name", ["tiny.yaml", "tiny_conditional.yaml"])
def test_evaluation_is_off_in_the_tiny_configs(name):
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.eval_every == 0 and cfg.log_with is None


def test_eval_settings_may_change_on_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(load_config(ROOT / "configs" / "tiny.yaml").to_dict()))
    changed = ["--eval_every", "100", "--eval_samples", "50", "--eval_samplers", "[ddpm]", "--eval_best",
               "recall_ddpm500_standard", "--log_with", "tensorboard"]
    refuse_foreign_run(out, load_config(ROOT / "configs" / "tiny.yaml", changed), resume=True, overwrite=False)
    with pytest.raises(ConfigError, match="learning_rate"):
        refuse_foreign_run(out, load_config(ROOT / "configs" / "tiny.yaml", ["--learning_rate", "1e-4"]), resume=True,
                           overwrite=False)


@pytest.mark.parametrize("args, match", [
    (["--eval_best", "fid_ddim50_moment"], "did you mean 'fid_ddim50_moments'"),
    (["--eval_best", "class_match_ddim50_moments"], "not a key this evaluation writes"),  # unconditional
    (["--eval_samplers", "[dpm_fast]"], "unknown sampler 'dpm_fast'"),
    (["--eval_samplers", "[ddpm@0]"], "step count in 1..500"),
    (["--eval_samplers", "ddpm"], "eval_samplers must be of type list"),
    (["--eval_every", "-1"], "eval_every must be >= 0"),
    (["--eval_every", "10", "--unet.sample_size", "32"], "needs a 16x16 RGB UNet"),
    (["--log_with", "tensorbord"], "unknown tracker 'tensorbord'"),
])
def test_bad_eval_and_tracker_settings_are_refused(args, match):
    with pytest.raises(ConfigError, match=match):
        load_config(ROOT / "configs" / "tiny.yaml", args)


def test_a_tracker_that_is_not_installed_is_refused_in_one_line(monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])  # none installed, as for wandb here
    with pytest.raises(ConfigError, match="the wandb tracker is not installed; pip install wandb"):
        load_config(ROOT / "configs" / "tiny.yaml", ["--log_with", "wandb"])


def test_sample_sets_add_the_named_samplers_from_both_priors():
    cfg = load_config(ROOT / "configs" / "tiny_conditional.yaml", ["--eval_samplers", "[ddpm, ddim@50, dpmpp_2m@8]"])
    keys = row_keys(cfg)
    for name in ("ddim50", "ddpm500", "dpmpp_2m8"):
        for prior in ("standard", "moments"):
            assert f"fid_{name}_{prior}" in keys and f"class_match_{name}_{prior}" in keys
    assert len(keys) == 3 * 2 * 7  # ddim@50 named twice counts once; 7 metrics with the class match


def test_the_production_trainer_holds_no_fault_hook():
    """Faults are injected by tests/fault_injection.py (monkeypatching), not by the trainer."""
    source = (ROOT / "training" / "train.py").read_text()
    assert "SPRITEDIFF_FAULT" not in source and "inject_fault" not in source and "SIGKILL" not in source
