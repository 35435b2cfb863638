"""bench.sampling_time runs end to end (a few steps of the tiny config) and writes its table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import sampling_time

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert sampling_time.main(["--random_unet", str(ROOT / "configs" / "tiny.yaml"), "--num_images", "2",
                               "--repeats", "2", "--ddpm_steps", "6", "--ddim_steps", "3", "2",
                               "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| DDPM 6 |" in table and "| DDIM 3 |" in table and "| DDPM 6 / DDIM 2 | 3 |" in table
    result = json.loads(out.read_text())
    for clock in ("wall", "cpu"):
        rows = result[clock]["rows"]
        assert [r["setting"] for r in rows] == ["DDPM 6", "DDIM 3", "DDIM 2"]
        assert all(len(r["times_s"][impl]) == 2 for r in rows for impl in ("bare", "ours", "stock"))
        assert result[clock]["speedups"][0]["step_ratio"] == 2
    assert "machine" in result and result["clock_for_targets"] == "wall" and result["targets"]
    assert out.with_suffix(".md").read_text() == result["wall"]["table_markdown"] + "\n"


def test_benchmark_conditional_model_has_no_stock_column(tmp_path, capsys):
    sampling_time.main(["--random_unet", str(ROOT / "configs" / "tiny_conditional.yaml"), "--num_images", "2",
                        "--repeats", "1", "--ddpm_steps", "3", "--ddim_steps", "1"])
    table = capsys.readouterr().out
    assert "| DDPM 3 |" in table and "stock" not in table.split("PASS")[0].split("MISS")[0]


def test_no_stock_times_the_bare_loop_and_ours_only(tmp_path, capsys):
    out = tmp_path / "bench.json"
    sampling_time.main(["--random_unet", str(ROOT / "configs" / "tiny.yaml"), "--num_images", "2", "--repeats", "1",
                        "--ddpm_steps", "4", "--ddim_steps", "2", "--no_stock", "--json", str(out)])
    result = json.loads(out.read_text())
    assert all(set(r["times_s"]) == {"bare", "ours"} for r in result["wall"]["rows"])
    header, rule = result["wall"]["table_markdown"].splitlines()[:2]
    assert "stock" not in result["wall"]["table_markdown"] and header.count("|") == rule.count("|")
    assert "stock" not in result["sampler_cost_table"]
