"""experiments.train_step_time: each config's real training step (UNet, dropout, loss, optimizer), timed in turns."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from experiments.train_step_time import StepTimer, main

ROOT = Path(__file__).resolve().parents[1]


def test_each_config_trains_its_own_unet_and_the_table_reads_the_json(tmp_path):
    cfg = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
    cfg["unet"] = {**cfg.get("unet", {}), "dropout": 0.1}
    dropout = tmp_path / "dropout.yaml"
    dropout.write_text(yaml.safe_dump(cfg))
    timer = StepTimer(str(dropout))
    assert timer.unet.config.dropout == 0.1 and timer.unet.training
    before = [p.detach().clone() for p in timer.unet.parameters()]
    timer.step()
    after = list(timer.unet.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # an optimizer step ran
    out = tmp_path / "st.json"
    assert main(["--configs", str(ROOT / "configs" / "tiny.yaml"), str(dropout), "--steps", "1", "--rounds", "2",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["dropout"] for r in rows] == [0.0, 0.1] and rows[0]["cpu_ratio_to_first"] == 1.0
    assert all(len(r["rounds"]) == 2 and r["cpu_s_per_step"] > 0 for r in rows)
    assert f"{rows[1]['cpu_s_per_step']:.3f}" in out.with_suffix(".md").read_text()
