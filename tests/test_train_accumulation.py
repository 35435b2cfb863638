"""Gradient accumulation (``gradient_accumulation_steps``): a step's draws are those of the bigger batch, and a
run of 2 passes x 8 images matches a run of 16 images per pass; a run of one pass per step is unchanged."""

import json
from pathlib import Path

import pytest
import torch

from tests.train_helpers import ema_weights, train, weights
from training.config import load_config
from training.train import make_batch, pass_rows

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("--unet.norm_num_groups", "4")  # 2 channels a group: no bias has a gradient that is zero in theory


def test_the_passes_of_a_step_draw_the_bigger_batch():
    """Every draw (rows, flips, t, noise, label drop) of 2 passes x 8 is the batch-16 step's, across epochs."""
    images, labels = torch.randn(40, 3, 16, 16), torch.arange(40) % 5
    big = load_config(ROOT / "configs" / "tiny.yaml", ["--train_batch_size", "16", "--conditional", "true"])
    acc = load_config(ROOT / "configs" / "tiny.yaml", ["--train_batch_size", "8", "--gradient_accumulation_steps",
                                                       "2", "--conditional", "true"])
    for step in range(5):  # 2 steps an epoch: crosses two epoch boundaries
        epoch, whole = make_batch(big, step, images, labels, slice(0, 16), "cpu")
        passes = [make_batch(acc, step, images, labels, pass_rows(slice(0, 8), 8, k), "cpu") for k in range(2)]
        assert all(e == epoch for e, _ in passes)
        for i, part in enumerate(whole):
            assert torch.equal(part, torch.cat([batch[i] for _, batch in passes]))


def test_pass_rows_split_each_pass_over_processes():
    assert [pass_rows(slice(4, 8), 8, k) for k in range(3)] == [slice(4, 8), slice(12, 16), slice(20, 24)]


def summary(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return {"losses": [r["loss"] for r in rows],
            "weights_sum_sq": sum(float((v.double() ** 2).sum()) for v in weights(run).values()),
            "ema_sum_sq": sum(float((v.double() ** 2).sum()) for v in ema_weights(run).values())}


@pytest.fixture(scope="module")
def one_pass(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("accumulation") / "b16"
    r = train(out, *GROUPS)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_one_pass_per_step_is_unchanged(one_pass):
    """The micro run's losses and weights are those recorded before accumulation existed (tests/
    micro_run_reference.json); equal on this machine, within 1e-6 relative where float rounding may differ."""
    reference = json.loads((ROOT / "tests" / "micro_run_reference.json").read_text())
    got = summary(one_pass)
    assert got["losses"] == pytest.approx(reference["losses"], rel=1e-6)
    assert got["weights_sum_sq"] == pytest.approx(reference["weights_sum_sq"], rel=1e-6)
    assert got["ema_sum_sq"] == pytest.approx(reference["ema_sum_sq"], rel=1e-6)


def test_two_passes_of_8_match_one_pass_of_16(one_pass, tmp_path):
    """Same draws, gradients summed in another order: every loss row within 1e-6, every weight within 1e-6 after
    12 AdamW steps, except the attention key biases (their gradient is zero in exact arithmetic, the softmax
    being shift-invariant, so Adam's normalised update amplifies rounding: within 1e-4)."""
    out = tmp_path / "b8x2"
    r = train(out, *GROUPS, "--train_batch_size", "8", "--gradient_accumulation_steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "gradient accumulation: 2 forward passes of 8 images per step" in (out / "log.txt").read_text()
    assert load_config(out / "config.yaml").gradient_accumulation_steps == 2
    assert summary(out)["losses"] == pytest.approx(summary(one_pass)["losses"], abs=1e-6)
    a, b = weights(one_pass), weights(out)
    for key in a:
        tol = 1e-4 if key.endswith("to_k.bias") else 1e-6
        assert (a[key] - b[key]).abs().max().item() <= tol, key
