"""Learned time steps (pipelines/learned_steps.py, training/fit_steps.py) on the tiny UNet of tests/conftest.py: the
schedule is monotone and keeps its end points for any parameters; at the start parameters every solver reproduces
the untrained schedule's samples; the differentiable path equals the float one; the fit lowers the held-out
distance to the teacher; the JSON round trip; one-line refusals."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from pipelines import SpritesDDIMPipeline, SpritesSolverPipeline
from pipelines.learned_steps import (
    LearnedSchedule,
    find_learned,
    logits_from_sigmas,
    schedule_file,
    sigmas_from_logits,
    unet_sha256_16,
)
from pipelines.loading import pipeline_class, sampler_arguments
from pipelines.samplers import RULES, Denoiser, steps_for_nfe, steps_from_sigmas, unet_calls
from pipelines.schedule import make_scheduler, read_schedule
from training.fit_steps import Fitter, load_settings, run, start_sigmas

SPACED = {"sigma_schedule": "karras", "karras_range": "spaced"}


@pytest.fixture(scope="module")
def folder(unet, tmp_path_factory):
    out = tmp_path_factory.mktemp("steps") / "pipeline"
    SpritesSolverPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing")
                          ).save_pretrained(out)
    return out


def _pipe(cls, folder):
    pipe = cls.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _denoiser(folder) -> Denoiser:
    return Denoiser(None, read_schedule(make_scheduler())[1])


def _start(solver: str, nfe: int, prior: str = "standard", fit: dict | None = None) -> dict:
    """The learned-schedule dict whose parameters are the start schedule of ``solver`` at ``nfe``."""
    den = _denoiser(None)
    steps = steps_for_nfe("euler" if solver == "ddim" else solver, nfe)
    start = start_sigmas(den, solver, steps, {"sigma_schedule": "discrete"} if solver == "ddim" else SPACED,
                         "trailing")
    return dataclasses.asdict(LearnedSchedule(solver, unet_calls(solver, steps), prior,
                                              logits_from_sigmas(start, den.sigmas[0]), float(den.sigmas[-1]),
                                              float(den.sigmas[0]), fit or {}))


def test_schedule_is_monotone_and_keeps_its_end_points():
    g = torch.Generator().manual_seed(0)
    hi, lo = 12.6, 0.01
    for n in (2, 3, 5, 10):
        for scale in (0.1, 1.0, 3.0, 50.0):
            a = torch.randn(n, generator=g, dtype=torch.float64) * scale
            s = sigmas_from_logits(a, hi, lo)
            assert len(s) == n + 1 and s[-1] == 0 and abs(float(s[0]) - hi) <= 1e-12 * hi
            assert torch.all(s[1:-1] <= s[:-2]) and float(s[-2]) >= lo  # any logits: never up, never below the floor
            if scale <= 3:  # softmax weights far from underflow: strictly decreasing, strictly above the floor
                assert torch.all(s[1:-1] < s[:-2]) and float(s[-2]) > lo
                back = sigmas_from_logits(torch.tensor(logits_from_sigmas(s.numpy(), lo), dtype=torch.float64), hi, lo)
                assert torch.allclose(back, s, rtol=1e-12, atol=0)  # the inverse, up to a constant shift
            assert torch.allclose(sigmas_from_logits(a + 7.0, hi, lo), s, rtol=1e-12, atol=0)


@pytest.mark.parametrize("solver", ["dpmpp_2m", "dpmpp_2m_sde", "heun", "euler"])
def test_start_parameters_reproduce_the_untrained_schedule(folder, solver):
    pipe = _pipe(SpritesSolverPipeline, folder)
    kw = dict(batch_size=2, sampler=solver, nfe=5, output_type="pt")
    plain = pipe(generator=torch.Generator().manual_seed(3), karras_range="spaced", **kw).images
    learned = pipe(generator=torch.Generator().manual_seed(3), sigma_schedule="learned",
                   learned_schedule=_start(solver, 5), **kw).images
    assert (plain - learned).abs().max() <= 1e-6
    moved = _start(solver, 5)
    moved["logits"][0] += 0.5
    other = pipe(generator=torch.Generator().manual_seed(3), sigma_schedule="learned", learned_schedule=moved,
                 **kw).images
    assert (plain - other).abs().max() > 1e-3


def test_ddim_start_parameters_reproduce_ddim_and_learned_ddim_is_euler(folder):
    """DDIM on a learned schedule runs in the solver pipeline (``sampler="ddim"``, Euler's rule); on its start
    schedule (the DDIM pipeline's own timesteps) it reproduces the DDIM pipeline."""
    ddim, solver = _pipe(SpritesDDIMPipeline, folder), _pipe(SpritesSolverPipeline, folder)
    plain = ddim(generator=torch.Generator().manual_seed(1), batch_size=2, num_inference_steps=4,
                 output_type="pt").images
    kw = dict(batch_size=2, sampler="ddim", nfe=4, sigma_schedule="learned", output_type="pt")
    start = _start("ddim", 4)
    learned = solver(generator=torch.Generator().manual_seed(1), learned_schedule=start, **kw).images
    assert (plain - learned).abs().max() <= 1e-5
    moved = {**start, "logits": [a + 0.3 * i for i, a in enumerate(start["logits"])]}
    a = solver(generator=torch.Generator().manual_seed(1), learned_schedule=moved, **kw).images
    euler = solver(generator=torch.Generator().manual_seed(1), **{**kw, "sampler": "euler"},
                   learned_schedule={**moved, "solver": "euler"}).images
    assert (a - plain).abs().max() > 1e-3 and torch.equal(a, euler)
    options = {"eta": 0.0, "sigma_schedule": "learned"}
    assert pipeline_class("ddim", options) is SpritesSolverPipeline and pipeline_class("ddim") is SpritesDDIMPipeline
    assert sampler_arguments("ddim", 4, **options) == {"sampler": "ddim", "nfe": 4, "sigma_schedule": "learned"}
    with pytest.raises(ValueError, match="DDIM on a sigma_schedule is DDIM with eta = 0"):
        sampler_arguments("ddim", 4, eta=1.0, sigma_schedule="learned")


@pytest.mark.parametrize("solver", ["dpmpp_2m", "dpmpp_2m_sde", "heun", "euler"])
def test_the_differentiable_path_equals_the_float_path(unet, solver):
    den = Denoiser(lambda x, t: unet(x, t).sample, read_schedule(make_scheduler())[1])
    logits = torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64, requires_grad=True)
    sig = sigmas_from_logits(logits, float(den.sigmas[-1]), float(den.sigmas[0]))
    x_T = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    z = torch.randn(4, 2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    rule = RULES[solver]
    out = run(den, rule, steps_from_sigmas(den, sig), x_T, z)
    with torch.no_grad():
        ref = run(den, rule, steps_from_sigmas(den, sig.detach().numpy()), x_T, z)
    assert (out - ref).abs().max() <= 1e-5
    out.square().mean().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert abs(float(den.t_of(sig[1].detach())) - den.t_of(float(sig[1].detach()))) < 1e-9


def test_the_fit_lowers_the_held_out_distance_to_the_teacher(folder, tmp_path):
    s = load_settings(prior="standard", num_fit=8, num_val=8, iters=6, batch=4, lr=0.1, solvers=["dpmpp_2m"],
                      nfe=[3], teacher={"sampler": "dpmpp_2m", "nfe": 12, "sigma_schedule": "karras"})
    learned = Fitter(folder, s).fit("dpmpp_2m", 3)
    f = learned.fit
    assert f["after"]["held_out"]["mse"] < f["before"]["held_out"]["mse"]
    assert learned.logits != logits_from_sigmas(f["start"]["sigmas"], learned.sigma_min)
    assert f["model"]["unet_sha256_16"] == unet_sha256_16(folder) and f["seeds"]["held_out_x_T"] != \
        f["seeds"]["fit_x_T"] and f["teacher"]["nfe"] == 12
    path = learned.save(tmp_path / schedule_file("dpmpp_2m", 3, "standard"))  # the JSON round trip
    back = LearnedSchedule.load(path)
    assert back == learned and np.array_equal(back.sigmas(), learned.sigmas())
    assert not list(path.parent.glob(".*tmp*"))


def test_the_folder_file_is_found_and_round_trips(folder):
    learned = LearnedSchedule.load(_start("euler", 3, fit={"model": {"unet_sha256_16": unet_sha256_16(folder)}}))
    learned.logits[1] += 0.4
    learned.save(folder / schedule_file("euler", 3, "standard"))
    pipe = _pipe(SpritesSolverPipeline, folder)
    kw = dict(batch_size=2, sampler="euler", nfe=3, output_type="pt", sigma_schedule="learned")
    a = pipe(generator=torch.Generator().manual_seed(0), **kw).images
    b = pipe(generator=torch.Generator().manual_seed(0), learned_schedule=dataclasses.asdict(learned), **kw).images
    assert torch.equal(a, b)
    assert find_learned(str(folder), "euler", 3, "standard") == learned


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_one_line_refusals(folder, tmp_path, capsys):
    pipe, ddim = _pipe(SpritesSolverPipeline, folder), _pipe(SpritesDDIMPipeline, folder)
    with pytest.raises(TypeError, match="sigma_schedule"):  # the DDIM pipeline runs its timesteps only
        ddim(num_inference_steps=6, sigma_schedule="learned")
    with pytest.raises(ValueError, match="has no learned schedule for heun at 7 NFE from the standard prior") as e:
        pipe(sampler="heun", nfe=8, sigma_schedule="learned")  # 8 NFE is 4 Heun steps, 7 UNet calls
    assert "python -m training.fit_steps" in _one_line(e)
    with pytest.raises(ValueError, match="no learned schedule for ddim at 6 NFE from the moments prior"):
        pipe(sampler="ddim", nfe=6, sigma_schedule="learned", prior="moments")
    with pytest.raises(ValueError, match="learned schedules exist for"):
        pipe(sampler="euler_ancestral", nfe=3, sigma_schedule="learned")
    with pytest.raises(ValueError, match="learned_schedule is read with sigma_schedule='learned' only"):
        pipe(sampler="euler", nfe=3, learned_schedule=_start("euler", 3))
    with pytest.raises(ValueError, match="is for euler at 3 NFE from the standard prior, not dpmpp_2m"):
        pipe(sampler="dpmpp_2m", nfe=3, sigma_schedule="learned", learned_schedule=_start("euler", 3))
    other = LearnedSchedule.load(_start("dpmpp_2m", 4, fit={"model": {"unet_sha256_16": "0" * 16}}))
    other.save(folder / schedule_file("dpmpp_2m", 4, "standard"))
    with pytest.raises(ValueError, match="was fitted to UNet weights 0000000000000000, not this folder's") as e:
        pipe(sampler="dpmpp_2m", nfe=4, sigma_schedule="learned")
    _one_line(e)
    edited = json.loads((folder / schedule_file("dpmpp_2m", 4, "standard")).read_text())
    edited["sigmas"][1] *= 1.1
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="its sigmas are not those of its logits"):
        LearnedSchedule.load(tmp_path / "edited.json")
    with pytest.raises(ValueError, match="no learned schedule there"):
        LearnedSchedule.load(tmp_path / "none.json")
    with pytest.raises(ValueError, match="must be finite"):
        LearnedSchedule.load({**_start("euler", 3), "logits": [0.0, float("nan"), 1.0]})

    from training.fit_steps import main as fit_main
    from training.sample import main as sample_main

    with pytest.raises(SystemExit, match=r"^error: .*has no learned schedule for euler at 5 NFE") as e:
        sample_main(["--pipeline", str(folder), "--sampler", "euler", "--nfe", "5", "--sigma_schedule", "learned",
                     "--out", str(tmp_path / "x.png")])
    _one_line(e)
    capsys.readouterr()
    assert fit_main(["--pipeline", str(folder), "--nfe", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --nfe") and len(err.splitlines()) == 1
    assert fit_main(["--pipeline", str(folder), "--solver", "euler", "--nfe", "3", "--prior", "moments"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data_moments" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("override", "message"), [
    ({"lr": 0}, "lr must be a finite number > 0, got 0"),
    ({"ball_step": "x"}, "ball_step must be a finite number > 0, got 'x'"),
    ({"num_fit": 0}, "num_fit must be an integer >= 1, got 0"),
    ({"iters": True}, "iters must be an integer >= 1, got True"),
    ({"batch": 2.5}, "batch must be an integer >= 1, got 2.5"),
    ({"ball_radius": -0.1}, "ball_radius must be a finite number >= 0"),
])
def test_fit_settings_refuse_a_bad_number_naming_it(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_settings(**override)
