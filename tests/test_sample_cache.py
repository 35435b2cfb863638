"""Benchmarks that cannot go stale: the model hash, the sampling code's hash, the sample cache's key (settings, model,
code, fitted files) and the one result envelope every benchmark writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import bench.common
from bench.common import result_envelope, sample_cache_key, sampling_code_sha256
from bench.sampler_frontier import files_read, sample_run
from evaluation.sampling import file_sha256, model_sha256

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pretrained" / "sprites_ddpm"


def test_the_model_hash_covers_weights_configs_and_moments_not_bookkeeping(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("training", "solvers", "*.py"))
    h = model_sha256(folder)
    assert h == model_sha256(SHIPPED)
    config = folder / "scheduler" / "scheduler_config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "_diffusers_version": "9.9.9"}, indent=3))  # re-saved elsewhere
    assert model_sha256(folder) == h
    config.write_text(json.dumps({**saved, "timestep_spacing": "leading"}))
    assert model_sha256(folder) != h
    config.write_text(json.dumps(saved))
    (folder / "data_moments.safetensors").unlink()
    assert model_sha256(folder) not in (h, None)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert model_sha256(folder) != h
    weights.unlink()
    assert model_sha256(folder) is None


def test_the_code_hash_follows_the_sampling_code_only(tmp_path):
    for rel in ("pipelines/samplers.py", "pipelines/prior.py", "bench/samplers.py", "evaluation/sampling.py",
                "training/train.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)

    def code_hash() -> str:
        sampling_code_sha256.cache_clear()
        return sampling_code_sha256(tmp_path)

    h = code_hash()
    with open(tmp_path / "training" / "train.py", "a") as f:
        f.write("\n# not sampling code\n")
    assert code_hash() == h
    with open(tmp_path / "pipelines" / "samplers.py", "a") as f:
        f.write("\n# a changed sampler\n")
    changed = code_hash()
    assert changed != h
    (tmp_path / "pipelines" / "another.py").write_text("x = 1\n")
    assert code_hash() not in (h, changed)
    sampling_code_sha256.cache_clear()


def test_the_cache_key_holds_the_model_the_code_and_every_fitted_file(tmp_path, monkeypatch):
    folder = tmp_path / "p"
    (folder / "solvers").mkdir(parents=True)
    (folder / "schedules").mkdir()
    fitted = folder / "solvers" / "dpmpp_2m_nfe5.json"
    fitted.write_text('{"coefs": [0.5]}')
    run = {"sampler": "dpmpp_2m", "nfe": 5, "kwargs": {"fitted": "solvers/dpmpp_2m_nfe5.json", "prior": "moments"}}
    assert files_read(run, folder) == {"solvers/dpmpp_2m_nfe5.json": file_sha256(fitted)}
    settings = {"num_images": 4, "batch_size": 2, "seed": 0, "sampler": "dpmpp_2m", "nfe": 5, **run["kwargs"]}
    key = sample_cache_key(settings, "model-a", files_read(run, folder))
    fitted.write_text('{"coefs": [0.6]}')  # refitted
    assert sample_cache_key(settings, "model-a", files_read(run, folder)) != key
    fitted.write_text('{"coefs": [0.5]}')
    assert sample_cache_key(settings, "model-a", files_read(run, folder)) == key
    assert sample_cache_key(settings, "model-b", files_read(run, folder)) != key
    monkeypatch.setattr(bench.common, "sampling_code_sha256", lambda root=None: "another sampler")
    assert sample_cache_key(settings, "model-a", files_read(run, folder)) != key

    learned = {"sampler": "heun", "nfe": 5, "kwargs": {"sigma_schedule": "learned", "prior": "moments"}}
    (folder / "schedules" / "heun_nfe5_moments.json").write_text("{}")
    assert list(files_read(learned, folder)) == ["schedules/heun_nfe5_moments.json"]


def test_a_changed_sampler_is_sampled_again(tmp_path, unet, monkeypatch):
    from bench.samplers import make_sampler_pipelines
    from evaluation.sampling import pipeline_info
    from pipelines import SpritesDDPMPipeline
    from pipelines.schedule import make_scheduler

    folder = tmp_path / "pipeline"
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False)).save_pretrained(folder)
    pipes, info = make_sampler_pipelines(folder), pipeline_info(folder)
    run, cfg = {"sampler": "ddim", "nfe": 2, "kwargs": {"eta": 0.0}}, {"num_images": 2, "batch_size": 2, "seed": 0}
    first, timing = sample_run(pipes, run, cfg, tmp_path / "cache", info)
    again, cached = sample_run(pipes, run, cfg, tmp_path / "cache", info)
    assert not timing["from_cache"] and cached["from_cache"] and np.array_equal(first, again)
    monkeypatch.setattr(bench.common, "sampling_code_sha256", lambda root=None: "a changed pipeline")
    assert not sample_run(pipes, run, cfg, tmp_path / "cache", info)[1]["from_cache"]


def test_a_model_without_weights_is_scored_from_its_cached_sets_only(tmp_path, unet):
    """--model_sha256: the sets the cache holds for that model hash are read back as drawn; a set it does not hold
    stops with a one-line error instead of sampling, and a folder holding another model is refused."""
    from bench.sampler_frontier import main
    from bench.samplers import make_sampler_pipelines
    from evaluation.sampling import pipeline_info
    from pipelines import SpritesDDPMPipeline
    from pipelines.schedule import make_scheduler

    folder = tmp_path / "pipeline"
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False)).save_pretrained(folder)
    info = pipeline_info(folder)
    run, cfg = {"sampler": "ddim", "nfe": 2, "kwargs": {"eta": 0.0}}, {"num_images": 2, "batch_size": 2, "seed": 0}
    drawn, _ = sample_run(make_sampler_pipelines(folder), run, cfg, tmp_path / "cache", info)
    gone = {**info, "path": str(tmp_path / "gone")}
    again, timing = sample_run(None, run, cfg, tmp_path / "cache", gone)
    assert timing["from_cache"] and np.array_equal(drawn, again)
    with pytest.raises(SystemExit, match="holds no 'x' set at 3 NFE"):
        sample_run(None, {**run, "label": "x", "nfe": 3}, cfg, tmp_path / "cache", gone)
    with pytest.raises(SystemExit):  # a prefix is not a model hash
        main(["--config", str(ROOT / "configs" / "bench" / "candidates.yaml"), "--model_sha256", "7bf4e79c"])
    with pytest.raises(SystemExit, match="holds model"):
        main(["--config", str(ROOT / "configs" / "bench" / "candidates.yaml"), "--pipeline", str(folder),
              "--model_sha256", "0" * 64, "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])


def test_every_benchmark_writes_its_envelope_through_one_helper():
    """No benchmark builds its own date, command, machine or load average (one name for one idea): each main
    calls bench.common.result_envelope, which records the model hash and the code hash."""
    for path in sorted((ROOT / "bench").glob("*.py")):
        if path.name != "common.py":
            text = path.read_text()
            for own in ("machine_info(", "now()", "strftime(", "getloadavg()[0]}", '"load_', "command_line("):
                assert own not in text, f"{path.name} builds its own envelope ({own})"
    envelope = result_envelope("bench.x", ["--a", "1"], SHIPPED)
    assert envelope["command"] == "python -m bench.x --a 1" and envelope["date"][:2] == "20"
    assert envelope["pipeline"]["model_sha256"] == model_sha256(SHIPPED)
    assert envelope["code_sha256"] == sampling_code_sha256() and len(envelope["machine"]["load_average"]) == 3
    assert result_envelope("bench.x", [], None)["pipeline"] is None


@pytest.mark.parametrize("name", ["priors", "frontier"])
def test_frontier_configs_give_every_setting_a_unique_id(name):
    from bench.sampler_frontier import load_frontier_config, runs_of

    runs = runs_of(load_frontier_config(ROOT / "configs" / "bench" / f"{name}.yaml"))
    assert all(r["id"] for r in runs)
    assert len({(r["id"], r["nfe"]) for r in runs}) == len(runs)


def test_another_seed_draws_another_set_and_the_results_record_it(tmp_path, unet):
    """--seed: another z for every setting, cached under its own key, the same seed read back; the config the
    results record holds the seed that was run."""
    from argparse import Namespace

    from bench.sampler_frontier import load_frontier_config, with_overrides
    from bench.samplers import make_sampler_pipelines
    from evaluation.sampling import pipeline_info
    from pipelines import SpritesDDPMPipeline
    from pipelines.schedule import make_scheduler

    folder = tmp_path / "pipeline"
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False)).save_pretrained(folder)
    pipes, info = make_sampler_pipelines(folder), pipeline_info(folder)
    run = {"sampler": "ddim", "nfe": 2, "kwargs": {"eta": 0.0}}
    base = load_frontier_config(ROOT / "configs" / "bench" / "candidates.yaml")
    none = Namespace(pipeline=None, num_images=None, seed=None, out=None)
    assert with_overrides(base, none) == base
    cfg0 = with_overrides(base, Namespace(pipeline=None, num_images=2, seed=0, out=None)) | {"batch_size": 2}
    cfg1 = with_overrides(base, Namespace(pipeline=None, num_images=2, seed=1, out=str(tmp_path / "o")))
    assert cfg1["seed"] == 1 and cfg1["out"] == str(tmp_path / "o") and cfg1["pipeline"] == base["pipeline"]
    cfg1 |= {"batch_size": 2}
    z0, t0 = sample_run(pipes, run, cfg0, tmp_path / "cache", info)
    z1, t1 = sample_run(pipes, run, cfg1, tmp_path / "cache", info)
    assert not t0["from_cache"] and not t1["from_cache"] and not np.array_equal(z0, z1)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    again, t = sample_run(pipes, run, cfg1, tmp_path / "cache", info)
    assert t["from_cache"] and np.array_equal(again, z1)
