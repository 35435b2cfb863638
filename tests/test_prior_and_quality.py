"""The data prior's file and command, improved precision/recall, SpriteScorer, the loader's errors, and the
frontier bench end to end on a tiny pipeline (cache reuse included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.metrics import precision_recall
from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline
from pipelines.loading import PipelineFolderError, check_folder, load_pipeline, sampler_arguments
from pipelines.prior import MOMENTS_FILE, PRIORS, DataMoments, GaussianPrior, MissingMomentsError
from pipelines.schedule import make_scheduler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, unet) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "pipeline"
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing")
                        ).save_pretrained(folder)
    return folder


def test_moments_round_trip_and_symmetric_square_root(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    m = DataMoments.from_images(x, hflip=True)
    assert m.count == 100 and m.shape == (3, 4, 4)
    torch.testing.assert_close(m.mean.view(3, 4, 4), torch.cat([x, x.flip(-1)]).mean(0))
    back = DataMoments.load(m.save(tmp_path))
    torch.testing.assert_close(back.cov, m.cov, atol=1e-6, rtol=1e-5)
    # prior="moments" at alpha_bar = 0 is N(0, I): it returns z itself (to float rounding)
    z = torch.randn(7, 3, 4, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(GaussianPrior("moments", 0.0, back)(z), z, atol=1e-5, rtol=0)
    assert torch.equal(GaussianPrior("standard", 0.5)(z), z)


def test_prior_checks(tmp_path):
    with pytest.raises(ValueError, match="prior must be one of"):
        GaussianPrior("uniform", 0.1)
    with pytest.raises(MissingMomentsError, match="needs the data's moments"):
        GaussianPrior("moments", 0.1, None)
    assert PRIORS[0] == "standard"


def test_a_folder_without_moments_samples_standard_and_names_the_fix(tiny_folder, tmp_path):
    pipe = SpritesDDIMPipeline.from_pretrained(tiny_folder)
    pipe.set_progress_bar_config(disable=True)
    pipe(batch_size=1, num_inference_steps=2)  # the standard prior needs nothing
    with pytest.raises(MissingMomentsError, match=f"{MOMENTS_FILE}, which is missing: write it with `python -m "
                                                  "training.moments"):
        pipe(batch_size=1, num_inference_steps=2, prior="moments")
    r = subprocess.run([sys.executable, "-m", "training.moments", "--pipeline", str(tiny_folder)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tiny_folder / MOMENTS_FILE).is_file(), r.stderr
    again = SpritesDDIMPipeline.from_pretrained(tiny_folder)
    again.set_progress_bar_config(disable=True)
    out = again(batch_size=2, num_inference_steps=2, prior="moments", output_type="np").images
    assert out.shape == (2, 16, 16, 3)
    again.save_pretrained(tmp_path / "copy")  # save_pretrained keeps the moments
    assert (tmp_path / "copy" / MOMENTS_FILE).is_file()
    r = subprocess.run([sys.executable, "-m", "training.moments", "--pipeline", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_precision_recall_closed_form():
    g = np.random.default_rng(0)
    a = g.normal(size=(300, 4))
    assert precision_recall(a, a) == (1.0, 1.0)
    p, r = precision_recall(a + 100, a)
    assert (p, r) == (0.0, 0.0)
    real = np.concatenate([a[:150], a[150:] + 50])  # two far clusters
    p, r = precision_recall(g.normal(size=(150, 4)), real)  # a sampler that drops one of them
    assert p > 0.9 and 0.4 < r <= 0.5
    with pytest.raises(ValueError, match="needs more than 3 points"):
        precision_recall(a[:3], a)


def test_sprite_scorer_on_real_sprites(sprites_arrays):
    from evaluation.quality import SpriteScorer

    scorer = SpriteScorer()
    floor = scorer.floor(10_000)
    assert floor["n"] == len(scorer.half_a) and 0 < floor["sprite_fid"] < 0.1
    assert 0.7 < floor["precision"] <= 1 and 0.7 < floor["recall"] <= 1
    same = scorer.score(sprites_arrays[0][scorer.half_b])
    assert same["sprite_fid"] < 1e-6 and same["precision"] == 1.0 and same["recall"] == 1.0
    assert same["class_gap_points"] < 3 and abs(sum(same["class_shares"].values()) - 1) < 1e-9


def test_loader_errors(tmp_path, tiny_folder):
    with pytest.raises(PipelineFolderError, match="not found"):
        check_folder(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model_index.json").write_text("{}")
    with pytest.raises(PipelineFolderError, match="the unet/ folder is missing"):
        load_pipeline(tmp_path / "half")
    with pytest.raises(ValueError, match="sampler must be one of"):
        load_pipeline(tiny_folder, "rk45")
    assert sampler_arguments("ddim", 7, eta=1.0) == {"num_inference_steps": 7, "eta": 1.0}
    assert sampler_arguments("heun", 9) == {"sampler": "heun", "nfe": 9}


def test_frontier_bench_end_to_end_and_cache(tiny_folder, tmp_path):
    """Two settings on a tiny pipeline: results, table, plot; the second run reads every sample from the cache."""
    config = tmp_path / "f.yaml"
    config.write_text(json.dumps({
        "pipeline": str(tiny_folder), "num_images": 6, "batch_size": 3, "seed": 0, "threads": 1,
        "reference": "DDIM", "settings": [
            {"label": "DDIM", "sampler": "ddim", "nfe": [2, 3], "eta": 0.0},
            {"label": "DPM++(2M)", "sampler": "dpmpp_2m", "nfe": [2]},
            {"label": "stock UniPC", "sampler": "stock_unipc", "nfe": [2], "timestep_spacing": "trailing"}]}))
    cmd = [sys.executable, "-m", "bench.sampler_frontier", "--config", str(config), "--out", str(tmp_path / "out"),
           "--cache", str(tmp_path / "cache")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(row["label"], row["nfe"]) for row in result["rows"]] == [("DDIM", 2), ("DDIM", 3), ("DPM++(2M)", 2),
                                                                      ("stock UniPC", 2)]
    assert all(not row["timing"]["from_cache"] for row in result["rows"])
    assert (tmp_path / "out" / "frontier.png").is_file()
    assert "x reference" in (tmp_path / "out" / "table.md").read_text()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    again = json.loads((tmp_path / "out" / "results.json").read_text())
    assert all(row["timing"]["from_cache"] for row in again["rows"])
    assert [row["scores"]["sprite_fid"] for row in again["rows"]] == [row["scores"]["sprite_fid"]
                                                                      for row in result["rows"]]


def test_presets_bench_times_both_presets(tiny_folder, monkeypatch):
    import bench.presets as presets
    import pipelines.loading as loading

    monkeypatch.setattr(loading, "load_presets", lambda: {"quality": {"sampler": "ddpm", "nfe": 40},
                                                          "fast": {"sampler": "dpmpp_2m", "nfe": 2}})
    result = presets.time_presets(str(tiny_folder), num_images=2, repeats=2)
    assert len(result["times_s"]["quality"]) == len(result["times_s"]["fast"]) == 2
    assert result["settings"]["fast"] == {"sampler": "dpmpp_2m", "nfe": 2}
    assert result["speedup"] > 2  # 40 UNet calls against 2


def test_frontier_settings_expand_per_nfe_with_nfe_in_string_arguments():
    from bench.sampler_frontier import runs_of

    cfg = {"settings": [{"label": "fitted", "sampler": "dpmpp_2m", "nfe": [4, 5], "prior": "moments",
                         "fitted": "solvers/dpmpp_2m_nfe{nfe}.json"}, {"label": "x", "sampler": "ddim", "nfe": [3]}]}
    runs = runs_of(cfg)
    assert [r["kwargs"].get("fitted") for r in runs] == ["solvers/dpmpp_2m_nfe4.json", "solvers/dpmpp_2m_nfe5.json",
                                                         None]
    assert runs[0]["kwargs"]["prior"] == "moments" and [r["label"] for r in runs_of(cfg, ["x"])] == ["x"]
