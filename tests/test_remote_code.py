"""A saved folder loads in diffusers' stock DDPMPipeline, DDIMPipeline and DiffusionPipeline without trusting any
code (its model_index.json names DDPMPipeline), and carries the course pipelines' code: in an interpreter where this
package cannot be imported, ``DiffusionPipeline.from_pretrained(folder, custom_pipeline="pipeline_sprites_ddim",
trust_remote_code=True)`` loads our pipeline and samples what our class samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline, DiffusionPipeline

from pipelines import (
    SpritesDDIMPipeline,
    SpritesDDPMPipeline,
    SpritesESDDPMPipeline,
    SpritesSolverPipeline,
    remote_code,
)
from pipelines.prior import DataMoments
from pipelines.remote_code import FOLDER_PIPELINES, RemoteCodeError, pipeline_files
from pipelines.schedule import make_scheduler
from training.hub import usage_snippet

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"sprites_ddpm": False, "sprites_ddpm_minsnr5": False, "sprites_conditional": True}  # folder -> conditional
PROJECT = ("pipelines", "sprites", "training", "evaluation", "bench", "report", "score_toy")

# Runs with `python -I` from another folder; the project's packages are refused by a finder placed first, so that
# the editable install (a finder of its own) cannot supply them either.
CHILD = '''
import importlib.abc, json, sys
import numpy as np, torch

class NoProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT:
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, NoProject())
torch.set_num_threads(1)
try:
    import pipelines  # noqa: F401
    sys.exit("the package is importable")
except ModuleNotFoundError:
    pass
from diffusers import DiffusionPipeline

spec = json.loads(open(sys.argv[1]).read())
report, arrays = {}, {}
for case in spec["cases"]:
    trust = {"trust_remote_code": True} if "custom_pipeline" in case["load"] else {}
    pipe = DiffusionPipeline.from_pretrained(case["folder"], **trust, **case["load"])
    pipe.set_progress_bar_config(disable=True)
    report[case["name"]] = [type(pipe).__module__, type(pipe).__name__]
    out = pipe(generator=torch.Generator().manual_seed(0), output_type="np", **case["call"])
    arrays[case["name"]] = out.images
    if case.get("resave"):
        pipe.save_pretrained(case["resave"])
for name, (code, folder) in spec["snippets"].items():
    scope = {"PATH": folder}
    exec(code, scope)
    report[name] = list(np.asarray(scope["images"][0]).shape)
np.savez(spec["arrays"], **arrays)
print(json.dumps(report))
'''.replace("PROJECT", repr(PROJECT))


def _seed() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def stock_pipeline(cls, folder: Path):
    """diffusers' stock ``cls`` (DDPMPipeline / DDIMPipeline) loaded from a saved folder, no code trusted."""
    pipe = cls.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def folders(unet, tmp_path_factory) -> dict[str, Path]:
    """One folder saved by each of our pipeline classes (the conditional one with a conditional UNet)."""
    from training.config import load_config
    from training.model import build_unet

    root = tmp_path_factory.mktemp("remote")
    torch.manual_seed(1)
    moments = DataMoments.from_images(torch.rand(12, 3, 16, 16) * 2 - 1)
    torch.manual_seed(0)
    cond_unet = build_unet(load_config(ROOT / "configs" / "tiny_conditional.yaml").unet, conditional=True).eval()
    made = {}
    for name, cls, model in (("ddpm", SpritesDDPMPipeline, unet), ("solver", SpritesSolverPipeline, unet),
                             ("es_ddpm", SpritesESDDPMPipeline, unet),
                             ("conditional", SpritesDDIMPipeline, cond_unet)):
        pipe = cls(unet=model, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing",
                                                        variance_type="fixed_large"))
        if hasattr(pipe, "set_data_moments"):
            pipe.set_data_moments(moments)
        pipe.save_pretrained(root / name)
        made[name] = root / name
    torch.manual_seed(0)  # three named classes and a null row
    named = build_unet({**load_config(ROOT / "configs" / "tiny_conditional.yaml").unet, "num_class_embeds": 4},
                       conditional=True).eval()
    pipe = SpritesDDPMPipeline(unet=named, scheduler=make_scheduler(clip_sample=False))
    pipe.set_class_names(["Cat", "dog", "owl"])
    pipe.save_pretrained(root / "named")
    made["named"] = root / "named"
    return made


CASES = [  # name, folder, from_pretrained keywords, our class (None: diffusers' own), call
    ("stock", "ddpm", {}, None, {"batch_size": 2, "num_inference_steps": 5}),
    ("ddpm", "ddpm", {"custom_pipeline": "pipeline_sprites_ddpm"}, SpritesDDPMPipeline,
     {"batch_size": 2, "num_inference_steps": 5, "prior": "moments"}),
    ("ddim_from_solver_folder", "solver", {"custom_pipeline": "pipeline_sprites_ddim"}, SpritesDDIMPipeline,
     {"batch_size": 2, "num_inference_steps": 3, "eta": 0.5, "prior": "moments"}),
    ("conditional", "conditional", {"custom_pipeline": "pipeline_sprites_ddim"}, SpritesDDIMPipeline,
     {"batch_size": 2, "num_inference_steps": 3, "class_labels": ["hero", [0.5, 0, 0.5, 0, 0]], "guidance_scale": 2}),
    ("named_classes", "named", {"custom_pipeline": "pipeline_sprites_ddpm"}, SpritesDDPMPipeline,
     {"batch_size": 2, "num_inference_steps": 3, "class_labels": ["Cat", 0], "guidance_scale": 2}),
    ("saved_without_package", "resaved", {}, None, {"batch_size": 2, "num_inference_steps": 3}),
]


def test_diffusers_loads_every_folder_without_the_package(folders, tmp_path):
    resaved = tmp_path / "resaved"

    def card(conditional: bool) -> str:  # the model card's lines, on fewer steps and images
        return "\n".join(usage_snippet(conditional)).replace("steps=50", "steps=2").replace("size=16", "size=2")

    spec = {"arrays": str(tmp_path / "arrays.npz"), "cases": [], "snippets": {
        "card": [card(False), str(folders["ddpm"])], "card_conditional": [card(True), str(folders["conditional"])]}}
    for name, folder, load, _, call in CASES[:-1]:
        spec["cases"].append({"name": name, "folder": str(folders[folder]), "load": load, "call": call})
    spec["cases"][2]["resave"] = str(resaved)  # our DDIM, saved again by the copy diffusers loaded
    spec["cases"].append({"name": CASES[-1][0], "folder": str(resaved), "load": {}, "call": CASES[-1][-1]})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "child.py").write_text(CHILD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-I", str(tmp_path / "child.py"), str(tmp_path / "spec.json")], cwd=elsewhere,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "might require" not in r.stderr  # diffusers' check found no import it cannot satisfy
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["card"] == [16, 16, 3] and report["card_conditional"] == [16, 16, 3]
    assert json.loads((resaved / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    arrays = np.load(tmp_path / "arrays.npz")
    folders = {**folders, "resaved": resaved}
    for name, folder, _, cls, call in CASES:
        module, class_name = report[name]
        if cls is None:  # diffusers' own class, from diffusers' own code
            assert (module.split(".")[0], class_name) == ("diffusers", "DDPMPipeline"), (name, module)
            expected = stock_pipeline(DDPMPipeline, folders[folder])(generator=_seed(), output_type="np", **call).images
        else:
            assert module.startswith("diffusers_modules.") and class_name == cls.__name__, (name, module, class_name)
            ours = cls.from_pretrained(folders[folder])
            ours.set_progress_bar_config(disable=True)
            expected = ours(generator=_seed(), output_type="np", **call).images
        assert np.abs(arrays[name] - expected).max() <= 1e-5, name


def test_stock_pipelines_load_the_folders_and_sample_as_ours(folders):
    """No trust_remote_code: the stock classes load every folder (model_index.json names DDPMPipeline) and, on the
    same settings, sample what ours sample."""
    for folder in folders.values():
        assert type(DiffusionPipeline.from_pretrained(folder)) is DDPMPipeline
        assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    ours = SpritesDDIMPipeline.from_pretrained(folders["ddpm"])
    ours.set_progress_bar_config(disable=True)
    a = ours(batch_size=2, num_inference_steps=4, generator=_seed(), output_type="np").images
    b = stock_pipeline(DDIMPipeline, folders["ddpm"])(batch_size=2, num_inference_steps=4, eta=0.0,
                                                      generator=_seed(), output_type="np").images
    assert np.abs(a - b).max() < 1e-5
    images = stock_pipeline(DDPMPipeline, folders["solver"])(batch_size=2, num_inference_steps=2,
                                                             generator=_seed(), output_type="np").images
    assert images.shape == (2, 16, 16, 3)
    # a class-conditional folder loads there too, but the stock pipelines pass no class labels to the UNet: it
    # samples through our pipeline (custom_pipeline=..., as docs/pipelines.md says), not through theirs
    with pytest.raises(ValueError, match="class_labels should be provided"):
        stock_pipeline(DDPMPipeline, folders["conditional"])(batch_size=1, num_inference_steps=2, generator=_seed())


def test_the_folder_carries_the_least_code_and_our_loaders_read_it(folders):
    from pipelines.loading import SAMPLERS, load_pipeline

    written = {p.name: p.read_text() for p in folders["solver"].glob("*.py")}
    assert written == pipeline_files()
    assert {n for n in written if n.startswith("pipeline_")} == {f"{m}.py" for m in FOLDER_PIPELINES}
    assert not {"sprites_atomic.py", "sprites_hub.py", "sprites_remote_code.py", "sprites_saving.py"} & set(written)
    assert sum(text.count("\n") for text in written.values()) <= 1600
    assert not any(line.lstrip().startswith(("from pipelines", "import pipelines"))
                   for text in written.values() for line in text.splitlines())
    for sampler in SAMPLERS:
        assert load_pipeline(folders["ddpm"], sampler).unet.config.sample_size == 16


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_folders_carry_the_packages_code_as_it_is_now(name):
    folder = ROOT / "pretrained" / name
    shipped = {p.name: p.read_text() for p in folder.glob("*.py")}
    assert shipped == pipeline_files(), (f"pretrained/{name}: its code differs from what pipelines/ writes now; run "
                                         f"`python -m training.resave pretrained/{name}`")
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline" and (index["unet"], index["scheduler"]) == (
        ["diffusers", "UNet2DModel"], ["diffusers", "DDPMScheduler"])
    assert "\n".join(usage_snippet(SHIPPED[name])) in (folder / "README.md").read_text()


def test_resave_keeps_every_other_byte(folders, tmp_path):
    import shutil

    from training.resave import digests, resave

    folder = tmp_path / "old"
    shutil.copytree(folders["ddpm"], folder)
    for path in folder.glob("*.py"):
        path.unlink()
    stale = folder / "sprites_hub.py"  # a module an older save wrote
    stale.write_text(remote_code.HEADER.format(module="hub") + "x = 1\n")
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": ["pipeline_sprites_ddpm",
                                                                                  "SpritesDDPMPipeline"]}))
    (folder / "README.md").write_text("# card\n\n```python\nold usage\n```\n\nmore\n")
    before = digests(folder)
    changed = resave(folder)
    after = digests(folder)
    assert {f for f in before if before[f] != after.get(f)} == {"model_index.json", "README.md", "sprites_hub.py"}
    assert set(changed) == {"model_index.json", "README.md", "sprites_hub.py", *pipeline_files()}
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    assert (folder / "README.md").read_text() == "# card\n\n```python\n" + "\n".join(usage_snippet(False)) + \
        "\n```\n\nmore\n"
    assert resave(folder) == [] and digests(folder) == after  # again: nothing to write (safetensors' metadata
    # comes out in random order; equal tensors and metadata keep the folder's bytes)


def test_generation_refuses_what_diffusers_cannot_load(tmp_path, monkeypatch):
    monkeypatch.setattr(remote_code, "_here", lambda: tmp_path)
    (tmp_path / "helper.py").write_text('"""Help."""\n\n\ndef f():\n    from pipelines.other import g\n    return g\n')
    (tmp_path / "other.py").write_text("g = 1\n")
    (tmp_path / "pipeline_good.py").write_text("from pipelines.helper import f\n")
    files = pipeline_files(("pipeline_good",))
    assert "    from .sprites_other import g\n" in files["sprites_helper.py"]
    assert files["pipeline_good.py"].endswith("from .sprites_other import __name__ as _sprites_other  "
                                              "# noqa: E402, F401\n")  # closure imported directly
    (tmp_path / "pipeline_bad.py").write_text("import pipelines.helper\n")
    with pytest.raises(RemoteCodeError, match="cannot be made relative"):
        pipeline_files(("pipeline_bad",))
    (tmp_path / "pipeline_bad.py").write_text('"""Use it as\n\nfrom evaluation.score import main\n"""\n')
    with pytest.raises(RemoteCodeError, match="evaluation"):
        pipeline_files(("pipeline_bad",))


def test_save_pretrained_push_to_hub_offline_saves_then_one_line(unet, tmp_path, monkeypatch):
    import pipelines.hub as hub

    monkeypatch.setattr(hub, "hub_unreachable_reason", lambda: "cannot reach huggingface.co (no route)")
    pipe = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler())
    with pytest.raises(hub.HubError, match="someone/sprites"):
        pipe.save_pretrained(tmp_path / "p", push_to_hub=True, repo_id="someone/sprites")
    assert (tmp_path / "p" / "pipeline_sprites_ddpm.py").is_file()
