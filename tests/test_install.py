"""``pip install .`` as a user gets it: the wheel holds the product's packages only, with the settings the code
reads as package data, and it samples sprites in a clean interpreter whose current folder is elsewhere and where
the checkout cannot be imported."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("pipelines", "sprites", "training", "evaluation", "score_toy")  # the import names the install claims
# what a clean interpreter does with the unpacked wheel: every setting found, 4 sprites sampled into cwd
CLEAN_RUN = """
import importlib.util, sys
from pathlib import Path
site = Path(sys.argv[1]).resolve()
for name in ("bench", "report", "experiments", "tests", "configs"):
    assert importlib.util.find_spec(name) is None, f"{name} is importable"
from pipelines.loading import load_presets
from evaluation.feature_spaces import load_settings
from score_toy.config import DEFAULT_CONFIG
from training.fit_steps import CONFIG
assert set(load_presets()) >= {"quality", "fast"} and load_settings()["sprite"]["batch_size"] > 0
assert DEFAULT_CONFIG.is_file() and CONFIG.is_file() and site in DEFAULT_CONFIG.parents and site in CONFIG.parents
from training.sample import main
assert main(["--pipeline", sys.argv[2], "--preset", "fast", "--num_images", "4", "--no_caption"]) == 0
product = sys.argv[3].split(",")
ours = {m.__file__ for n, m in list(sys.modules.items()) if n.split(".")[0] in product and getattr(m, "__file__", None)}
outside = sorted(f for f in ours if site not in Path(f).resolve().parents)
assert not outside, outside
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the checkout's sources (the build leaves its files there)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in (*PRODUCT, "configs", "bench", "report"):  # bench and report present, to show they stay out
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "--quiet", "--wheel-dir", str(tmp / "dist"), str(src)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (found,) = (tmp / "dist").glob("spritediff-*.whl")
    return found


def test_the_wheel_holds_the_product_packages_and_their_settings(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == set(PRODUCT)
    modules = {str(p.relative_to(ROOT)) for name in PRODUCT for p in (ROOT / name).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= set(names), sorted(modules - set(names))
    assert {"pipelines/configs/sampling_presets.yaml", "pipelines/configs/feature_spaces.yaml",
            "pipelines/configs/fit_steps.yaml", "score_toy/configs/score_toy.yaml",
            "evaluation/weights/sprite_features_v1.safetensors"} <= set(names)
    for shipped in ("sampling_presets", "feature_spaces", "fit_steps"):  # the checkout's files, byte for byte
        data = zipfile.ZipFile(wheel).read(f"pipelines/configs/{shipped}.yaml")
        assert data == (ROOT / "configs" / f"{shipped}.yaml").read_bytes()


def test_the_installed_wheel_samples_from_any_folder(wheel, tmp_path):
    unpacked, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere.mkdir()
    # -S: no site-packages processing, so the checkout's editable install (a .pth finder) is not active; the
    # dependencies come from the environment's site-packages, put on the path by hand after the wheel.
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=os.pathsep.join([str(unpacked), *deps]), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    argv = [str(unpacked), str(ROOT / "pretrained" / "sprites_ddpm"), ",".join(PRODUCT)]
    r = subprocess.run([sys.executable, "-S", "-c", CLEAN_RUN, *argv], cwd=elsewhere, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith(f"{elsewhere / 'samples.png'}: ")
    assert (elsewhere / "samples.png").is_file() and not (ROOT / "samples.png").exists()
