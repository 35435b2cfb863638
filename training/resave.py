"""Save a pipeline folder again through ``save_pretrained``, bringing what the package writes up to date (the
pipelines' code, ``model_index.json``, the model card's usage lines) and keeping every other byte.

    python -m training.resave pretrained/sprites_ddpm pretrained/sprites_conditional

For folders saved by an older version of the package, and after a change to ``pipelines/`` (the shipped folders'
code is checked against the package by ``tests/test_remote_code.py``); code files it no longer writes are removed.
The folder is rebuilt beside itself and renamed into place only when its weights, scheduler, data moments, fitted
solvers and training record come out byte-identical; otherwise it is left as it was and the command stops with one
line (exit code 2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import diffusers
import torch
from safetensors.torch import load_file

import pipelines
from pipelines.atomic import atomic_dir
from pipelines.common import STOCK_CLASS
from pipelines.labels import read_class_names
from pipelines.loading import PipelineFolderError, check_folder
from pipelines.prior import MOMENTS_FILE, DataMoments
from training.hub import replace_usage

UPDATED = ("model_index.json", "README.md")  # and the *.py files of the pipelines' code


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def rebuild(folder: Path):
    """The folder's pipeline, built as training builds it (a UNet from its config and weights, the scheduler,
    the data moments), so that ``save_pretrained`` writes what a training run writes."""
    index = json.loads((folder / "model_index.json").read_text())
    name = index["_class_name"][-1] if isinstance(index["_class_name"], list) else index["_class_name"]
    cls = pipelines.SpritesDDPMPipeline if name == STOCK_CLASS else getattr(pipelines, name, None)
    if cls is None:
        raise PipelineFolderError(f"{folder}: model_index.json names {name!r}, not one of spritediff's pipelines")
    unet = diffusers.UNet2DModel.from_config(diffusers.UNet2DModel.load_config(folder / "unet"))
    unet.load_state_dict(load_file(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    scheduler = getattr(diffusers, index["scheduler"][1]).from_pretrained(folder, subfolder="scheduler")
    pipe = cls(unet=unet.eval(), scheduler=scheduler)
    if (folder / MOMENTS_FILE).is_file():
        pipe.set_data_moments(DataMoments.load(folder / MOMENTS_FILE))
    pipe.set_class_names(read_class_names(folder))
    return pipe


def resave(folder: str | Path) -> list[str]:
    """Save ``folder`` again in place (see the module doc); return the files that changed or were added."""
    folder = check_folder(folder)
    before = digests(folder)
    pipe = rebuild(folder)
    with atomic_dir(folder) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        pipe.save_pretrained(tmp)
        card = tmp / "README.md"
        if card.is_file():
            card.write_text(replace_usage(card.read_text(), pipe.unet.config.get("num_class_embeds") is not None))
        kept = [f for f in before if f not in UPDATED and not f.endswith(".py")]
        for name in kept:  # safetensors orders its metadata at random: equal content keeps the folder's bytes
            if digests_of(tmp / name) != before[name] and same_safetensors(folder / name, tmp / name):
                shutil.copy2(folder / name, tmp / name)
        after = digests(tmp)
        changed = [f for f in after if before.get(f) != after[f]] + sorted(set(before) - set(after))
        differ = [f for f in kept if after.get(f) != before[f]]
        if differ:
            raise PipelineFolderError(f"{folder}: saving again would change {', '.join(differ)}; left as it was")
    return changed


def digests_of(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def same_safetensors(a: Path, b: Path) -> bool:
    """Two .safetensors files with the same tensors, bit for bit, and the same metadata."""
    from safetensors import safe_open

    if a.suffix != ".safetensors" or not b.is_file():
        return False
    with safe_open(str(a), framework="pt") as fa, safe_open(str(b), framework="pt") as fb:
        names = list(fa.keys())
        if fa.metadata() != fb.metadata() or set(names) != set(fb.keys()):
            return False
        return all(fa.get_tensor(k).dtype == fb.get_tensor(k).dtype and
                   fa.get_tensor(k).view(-1).view(torch.uint8).equal(fb.get_tensor(k).view(-1).view(torch.uint8))
                   for k in names)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="saved pipeline folders")
    args = p.parse_args(argv)
    for folder in args.folders:
        try:
            changed = resave(folder)
        except (PipelineFolderError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{folder}: {len(changed)} files written or changed ({', '.join(changed) or 'none'}); weights, "
              "scheduler, moments and training record byte-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
