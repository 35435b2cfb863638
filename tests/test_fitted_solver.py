"""The fitted solver (pipelines/fitted_solver.py, training/fit_solver.py): DPM-Solver++(2M)'s own weights
reproduce DPM-Solver++(2M) exactly; the fit lowers the distance to the teacher on its x_T; clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import UNet2DModel

from pipelines import SpritesSolverPipeline
from pipelines.fitted_solver import FittedSolver
from pipelines.samplers import Denoiser, solver_steps
from pipelines.schedule import make_scheduler, read_schedule
from training.fit_solver import fit, initial_weights, student


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    pipe = SpritesSolverPipeline(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing"))
    out = tmp_path_factory.mktemp("tiny") / "pipeline"
    pipe.save_pretrained(out)
    return out


def test_dpmpp_weights_reproduce_dpmpp_2m(folder):
    pipe = SpritesSolverPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    denoise = Denoiser(lambda x, t: x, read_schedule(pipe.scheduler)[1])
    own = FittedSolver(nfe=5, coefs=initial_weights(solver_steps(denoise, "dpmpp_2m", 5, "karras")))
    kw = dict(batch_size=3, sampler="dpmpp_2m", nfe=5, output_type="pt")
    a = pipe(generator=torch.Generator().manual_seed(3), **kw).images
    b = pipe(generator=torch.Generator().manual_seed(3), fitted={"nfe": 5, "coefs": own.coefs}, **kw).images
    c = pipe(generator=torch.Generator().manual_seed(3), fitted={"nfe": 5, "coefs": [0.0, 2, 0, 0, 0]}, **kw).images
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c, atol=1e-3)
    last = pipe(generator=torch.Generator().manual_seed(3), fitted={"nfe": 5, "coefs": [*own.coefs[:4], 0.5]},
                **kw).images  # the last step's weight is used too (x_0 = 1.5 x0_i - 0.5 x0_{i-1})
    assert not torch.allclose(a, last, atol=1e-3)


def test_the_fit_lowers_the_distance_to_the_teacher(folder, tmp_path):
    solver = fit(str(folder), nfe=3, teacher_nfe=20, prior="standard", num_x=16, num_val=8, iters=25, batch=16,
                 lr=0.05, seed=1)
    assert solver.nfe == 3 and solver.coefs != solver.fit["initial_weights"]
    pipe = SpritesSolverPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    denoise = Denoiser(lambda x, t: pipe.unet(x, t).sample, read_schedule(pipe.scheduler)[1])
    plan = solver_steps(denoise, "dpmpp_2m", 3, "karras")
    x_T = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # the fit's first 16 x_T
    teacher_plan = solver_steps(denoise, "dpmpp_2m", 20, "karras")
    with torch.no_grad():
        teacher = student(denoise, teacher_plan, torch.tensor(initial_weights(teacher_plan)), x_T)
        before = ((student(denoise, plan, torch.tensor(solver.fit["initial_weights"]), x_T) - teacher) ** 2).mean()
        after = ((student(denoise, plan, torch.tensor(solver.coefs), x_T) - teacher) ** 2).mean()
    assert after < before
    path = solver.save(tmp_path / "s.json")
    assert FittedSolver.load(path).coefs == solver.coefs and not list(tmp_path.glob(".*tmp"))


def test_clear_errors(folder, tmp_path):
    pipe = SpritesSolverPipeline.from_pretrained(folder)
    with pytest.raises(ValueError, match="training.fit_solver"):
        FittedSolver.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"nfe": 3}))
    with pytest.raises(ValueError, match="'nfe' and 'coefs'"):
        FittedSolver.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="needs 3 weights"):
        FittedSolver(nfe=3, coefs=[0.0])
    with pytest.raises(ValueError, match="finite"):
        FittedSolver(nfe=2, coefs=[0.0, float("nan")])
    (tmp_path / "text.json").write_text(json.dumps({"nfe": "x", "coefs": []}))
    with pytest.raises(ValueError, match="text.json: a fitted solver needs"):
        FittedSolver.load(tmp_path / "text.json")
    with pytest.raises(ValueError, match="fitted for nfe=3, not 4"):
        pipe(sampler="dpmpp_2m", nfe=4, fitted={"nfe": 3, "coefs": [0, 0, 0]})
    with pytest.raises(ValueError, match="sampler='dpmpp_2m'"):
        pipe(sampler="heun", nfe=3, fitted={"nfe": 3, "coefs": [0, 0, 0]})
    with pytest.raises(ValueError, match="karras_range='full'"):
        pipe(sampler="dpmpp_2m", nfe=3, karras_range="spaced", fitted={"nfe": 3, "coefs": [0, 0, 0]})


def test_a_relative_path_is_read_from_the_pipeline_folder(folder):
    FittedSolver(nfe=3, coefs=[0.0, 0.3, 0.1]).save(folder / "solvers" / "dpmpp_2m_nfe3.json")
    pipe = SpritesSolverPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    kw = dict(batch_size=2, sampler="dpmpp_2m", nfe=3, output_type="pt")
    a = pipe(generator=torch.Generator().manual_seed(0), fitted="solvers/dpmpp_2m_nfe3.json", **kw).images
    b = pipe(generator=torch.Generator().manual_seed(0), fitted={"nfe": 3, "coefs": [0.0, 0.3, 0.1]}, **kw).images
    assert torch.equal(a, b)
