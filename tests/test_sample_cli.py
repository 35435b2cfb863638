"""python -m training.sample on a tiny random pipeline: grid PNG, GIF, labels, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines import SpritesDDPMPipeline
from pipelines.schedule import make_scheduler
from sprites.images import save_grid, tile_images
from training.config import load_config
from training.model import build_unet
from training.sample import main

ROOT = Path(__file__).resolve().parents[1]


def _save(folder: Path, conditional: bool = False) -> Path:
    torch.manual_seed(0)
    unet = build_unet(load_config("configs/tiny.yaml").unet, conditional).eval()
    SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("pipe") / "pipeline")


def test_grid_and_gif(pipeline_dir, tmp_path, capsys):
    out, gif = tmp_path / "grids" / "ddim.png", tmp_path / "denoise.gif"
    assert main(["--pipeline", str(pipeline_dir), "--sampler", "ddim", "--steps", "4", "--num_images", "12",
                 "--seed", "1", "--out", str(out), "--gif", str(gif)]) == 0
    printed = capsys.readouterr().out
    assert "DDIM eta=0, 4 steps, seed 1, 12 images in" in printed
    grid = Image.open(out)
    assert grid.format == "PNG" and grid.width == 10 * (64 + 4) + 4 and grid.height > 2 * (64 + 4) + 4
    animation = Image.open(gif)
    assert animation.format == "GIF" and animation.n_frames == 5  # x_T and 4 steps
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ddim.png", "denoise.gif", "grids"]  # no temp files


def test_without_out_writes_a_fresh_default_file_and_prints_it(pipeline_dir, tmp_path, monkeypatch, capsys):
    """No --out: samples.png in the current folder, then samples-2.png, ...; an existing file is never touched."""
    monkeypatch.chdir(tmp_path)
    args = ["--pipeline", str(pipeline_dir), "--sampler", "ddim", "--steps", "2", "--num_images", "2"]
    (tmp_path / "samples-2.png").write_bytes(b"mine")
    for expected in ("samples.png", "samples-3.png"):
        assert main(args) == 0
        assert capsys.readouterr().out.startswith(f"{tmp_path / expected}: DDIM eta=0, 2 steps")
        assert Image.open(tmp_path / expected).format == "PNG"
    assert (tmp_path / "samples-2.png").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples-2.png", "samples-3.png", "samples.png"]


def test_ddpm_reproducible(pipeline_dir, tmp_path):
    for name in ("a.png", "b.png"):
        main(["--pipeline", str(pipeline_dir), "--steps", "3", "--num_images", "4", "--out", str(tmp_path / name)])
    a, b = (np.asarray(Image.open(tmp_path / n))[-(64 + 8):] for n in ("a.png", "b.png"))  # the grid, not the caption
    np.testing.assert_array_equal(a, b)


def test_no_caption_writes_the_same_grid_without_the_caption_line(pipeline_dir, tmp_path):
    args = ["--pipeline", str(pipeline_dir), "--steps", "3", "--num_images", "4"]
    main([*args, "--out", str(tmp_path / "with.png")])
    main([*args, "--no_caption", "--out", str(tmp_path / "without.png")])
    with_caption, plain = (np.asarray(Image.open(tmp_path / n)) for n in ("with.png", "without.png"))
    assert plain.shape[0] < with_caption.shape[0] and plain.shape[1] == with_caption.shape[1]
    np.testing.assert_array_equal(plain, with_caption[-plain.shape[0]:])  # the grid itself is unchanged


def test_conditional_labels(tmp_path):
    """The labels reach the model: a name and its index give the same sprites, another class other sprites (the
    random class embedding moves every image), a one-hot mix equals its class, and the labels cycle over the
    images; an unknown name is refused."""
    from sprites.data import SPRITE_CLASSES

    folder = _save(tmp_path / "cond", conditional=True)

    def sample(*labels: str, n: int = 4) -> np.ndarray:
        out = tmp_path / f"{'_'.join(labels)}_{n}.npy"
        assert main(["--pipeline", str(folder), "--sampler", "ddim", "--steps", "2", "--num_images", str(n),
                     "--class_labels", *labels, "--guidance_scale", "2", "--out", str(out)]) == 0
        return np.load(out)

    hero = SPRITE_CLASSES.index("hero")
    other = (hero + 1) % len(SPRITE_CLASSES)
    one_hot = ",".join("1" if k == hero else "0" for k in range(len(SPRITE_CLASSES)))
    by_name = sample("hero")
    np.testing.assert_array_equal(sample(str(hero)), by_name)
    np.testing.assert_array_equal(sample(one_hot), by_name)
    assert np.abs(sample(str(other)).astype(int) - by_name).max() > 0
    mixed = sample("hero", str(other))  # cycled: hero, other, hero, other
    np.testing.assert_array_equal(mixed[0::2], by_name[0::2])
    assert not np.array_equal(mixed[1::2], by_name[1::2])
    with pytest.raises(SystemExit, match="unknown class name 'dragon'"):
        main(["--pipeline", str(folder), "--sampler", "ddim", "--steps", "2", "--num_images", "2", "--class_labels",
              "dragon", "--out", str(tmp_path / "x.png")])


def test_missing_and_broken_folders(pipeline_dir, tmp_path):
    with pytest.raises(SystemExit, match=r"pipeline folder .*nowhere not found"):
        main(["--pipeline", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="no model_index.json"):
        main(["--pipeline", str(tmp_path), "--out", str(tmp_path / "x.png")])
    broken = _save(tmp_path / "broken")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SystemExit, match="cannot load the pipeline in .*broken .*corrupt") as err:
        main(["--pipeline", str(broken), "--out", str(tmp_path / "x.png")])
    assert "\n" not in str(err.value)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(SystemExit, match="incomplete: no weights in unet/"):
        main(["--pipeline", str(broken), "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_error_is_one_line_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "training.sample", "--pipeline", str(tmp_path / "missing"),
                          "--out", str(tmp_path / "x.png")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().startswith("error: pipeline folder") and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_save_grid_for_training(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    tiled = tile_images(images, ncols=3)
    assert tiled.shape == (3 * 17 + 1, 3 * 17 + 1, 3)
    np.testing.assert_array_equal(tiled[1 + 17:1 + 17 + 16, 1:17], images[3])
    path = save_grid(images, tmp_path / "g.png", "a caption")
    assert path == tmp_path / "g.png" and Image.open(path).width == 7 * 68 + 4
    with pytest.raises(ValueError, match="uint8"):
        save_grid(images.astype(np.float32), tmp_path / "h.png")


def test_npy_output_is_the_uint8_samples(pipeline_dir, tmp_path):
    """--out FILE.npy writes the samples as uint8 (N, 16, 16, 3): the same pixels the pipeline returns."""
    out = tmp_path / "s.npy"
    assert main(["--pipeline", str(pipeline_dir), "--sampler", "dpmpp_2m", "--nfe", "3", "--num_images", "5",
                 "--out", str(out)]) == 0
    arr = np.load(out)
    assert arr.shape == (5, 16, 16, 3) and arr.dtype == np.uint8
    from pipelines import SpritesSolverPipeline

    pipe = SpritesSolverPipeline.from_pretrained(pipeline_dir)
    want = pipe(batch_size=5, sampler="dpmpp_2m", nfe=3, generator=torch.Generator().manual_seed(0),
                output_type="np").images
    np.testing.assert_array_equal(arr, (np.clip(want, 0, 1) * 255).round().astype(np.uint8))


SAMPLER_NAMES = ["ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde", "heun", "euler", "euler_ancestral"]


def test_every_sampler_by_name_runs_that_sampler(pipeline_dir, tmp_path, capsys):
    """Each --sampler gives its own sprites from the same seed and NFE (an ignored --sampler would give one
    sampler's sprites seven times), the caption names it, and the same name again gives the same sprites."""
    arrays = {}
    for sampler in SAMPLER_NAMES:
        out = tmp_path / f"{sampler}.npy"
        assert main(["--pipeline", str(pipeline_dir), "--sampler", sampler, "--nfe", "3", "--num_images", "2",
                     "--out", str(out)]) == 0
        assert sampler.split("_")[0] in capsys.readouterr().out.lower()
        arrays[sampler] = np.load(out)
    for i, a in enumerate(SAMPLER_NAMES):
        for b in SAMPLER_NAMES[i + 1:]:
            assert not np.array_equal(arrays[a], arrays[b]), f"--sampler {a} and {b} gave the same sprites"
    again = tmp_path / "again.npy"
    main(["--pipeline", str(pipeline_dir), "--sampler", "heun", "--nfe", "3", "--num_images", "2", "--out", str(again)])
    np.testing.assert_array_equal(np.load(again), arrays["heun"])
    # and each is the sampler of that name, called directly (a swap of two names would fail here)
    from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline, SpritesSolverPipeline

    for sampler in SAMPLER_NAMES:
        if sampler in ("ddpm", "ddim"):
            cls = SpritesDDPMPipeline if sampler == "ddpm" else SpritesDDIMPipeline
            pipe, call = cls.from_pretrained(pipeline_dir), {"num_inference_steps": 3}
        else:
            pipe, call = SpritesSolverPipeline.from_pretrained(pipeline_dir), {"sampler": sampler, "nfe": 3}
        pipe.set_progress_bar_config(disable=True)
        want = pipe(batch_size=2, generator=torch.Generator().manual_seed(0), output_type="np", **call).images
        np.testing.assert_array_equal(arrays[sampler], (np.clip(want, 0, 1) * 255).round().astype(np.uint8),
                                      err_msg=f"--sampler {sampler}")


def test_presets(pipeline_dir, tmp_path, capsys, monkeypatch):
    """--preset fast / quality run the settings of configs/sampling_presets.yaml; options given override them."""
    import pipelines.loading as loading

    presets = loading.load_presets()
    assert presets["quality"] == {"sampler": "ddpm", "nfe": 500, "prior": "moments"} and presets["fast"]["nfe"] <= 10
    fast = {k: v for k, v in presets["fast"].items() if k != "fitted"}  # a fitted solver belongs to its model
    monkeypatch.setattr(loading, "load_presets", lambda: {"fast": {**fast, "prior": "standard"}})
    assert main(["--pipeline", str(pipeline_dir), "--preset", "fast", "--num_images", "2",
                 "--out", str(tmp_path / "f.png")]) == 0
    assert f"{presets['fast']['nfe']} UNet evaluations" in capsys.readouterr().out
    assert main(["--pipeline", str(pipeline_dir), "--preset", "fast", "--nfe", "4", "--num_images", "2",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert "4 UNet evaluations" in capsys.readouterr().out


def test_options_that_do_not_apply_are_refused(pipeline_dir, tmp_path):
    with pytest.raises(SystemExit, match="--variance does not apply to --sampler dpmpp_2m"):
        main(["--pipeline", str(pipeline_dir), "--sampler", "dpmpp_2m", "--variance", "beta", "--out",
              str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="prior='moments' needs .*data_moments.safetensors"):
        main(["--pipeline", str(pipeline_dir), "--sampler", "ddim", "--prior", "moments", "--nfe", "2",
              "--out", str(tmp_path / "y.png")])


def test_a_fitted_solver_from_the_command_line(pipeline_dir, tmp_path):
    from pipelines.fitted_solver import FittedSolver

    FittedSolver(nfe=3, coefs=[0.0, 0.4, 0.2]).save(pipeline_dir / "solvers" / "cli3.json")
    out = tmp_path / "f.npy"
    assert main(["--pipeline", str(pipeline_dir), "--sampler", "dpmpp_2m", "--nfe", "3", "--fitted",
                 "solvers/cli3.json", "--num_images", "2", "--out", str(out)]) == 0
    plain = tmp_path / "p.npy"
    assert main(["--pipeline", str(pipeline_dir), "--sampler", "dpmpp_2m", "--nfe", "3", "--num_images", "2",
                 "--out", str(plain)]) == 0
    assert not np.array_equal(np.load(out), np.load(plain))
    with pytest.raises(SystemExit, match="error: .*none.json: no fitted solver there"):
        main(["--pipeline", str(pipeline_dir), "--sampler", "dpmpp_2m", "--nfe", "3", "--fitted", "none.json",
              "--out", str(tmp_path / "n.png")])
    with pytest.raises(SystemExit, match="--fitted does not apply to --sampler ddim"):
        main(["--pipeline", str(pipeline_dir), "--sampler", "ddim", "--fitted", "solvers/cli3.json", "--out",
              str(tmp_path / "z.png")])


def test_karras_range_reaches_the_pipeline(pipeline_dir, tmp_path):
    outs = {}
    for rng in ("full", "spaced"):
        outs[rng] = tmp_path / f"{rng}.npy"
        assert main(["--pipeline", str(pipeline_dir), "--sampler", "heun", "--nfe", "5", "--num_images", "2",
                     "--karras_range", rng, "--out", str(outs[rng])]) == 0
    assert not np.array_equal(np.load(outs["full"]), np.load(outs["spaced"]))
    with pytest.raises(SystemExit, match="--karras_range does not apply to --sampler ddim"):
        main(["--pipeline", str(pipeline_dir), "--sampler", "ddim", "--karras_range", "spaced", "--out",
              str(tmp_path / "d.png")])


def test_the_device_defaults_to_cuda_where_torch_sees_one():
    from training.sample import parse_args

    args = parse_args(["--pipeline", "pretrained/sprites_ddpm", "--out", "x.png"])
    assert args.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert parse_args(["--pipeline", "p", "--out", "x.png", "--runtime", "onnxruntime"]).device == "cpu"
    assert parse_args(["--pipeline", "p", "--out", "x.png", "--device", "cpu"]).device == "cpu"
