"""sha256 of the shipped models' samples, to check that a refactor of pipelines/ samples bitwise the same.

    python scripts/sampling_hashes.py OUT.json              # write the hashes of this checkout
    python scripts/sampling_hashes.py OUT.json --check REF  # and compare with REF, written before (exit 1: differ)
    python scripts/sampling_hashes.py OUT.json --ddpm pretrained/sprites_ddpm_minsnr5 --check \
        scripts/sampling_hashes_before.json

scripts/sampling_hashes_before.json holds the hashes of commit efcfe7b, the pipelines before their refactor, whose
unconditional folder held the weights that are pretrained/sprites_ddpm_minsnr5 now (hence ``--ddpm``). The hashes
depend on the CPU's float32 kernels, so a reference is remade on the machine that checks it: ``git worktree add
/tmp/before efcfe7b``, then in /tmp/before ``PYTHONPATH=$PWD python /path/to/this/script.py REF.json``.

Each setting samples 4 sprites from seed 0 (output_type="pt", float32 bytes hashed): DDPM-500 and DDIM-50 from
both priors, the fast preset (configs/sampling_presets.yaml) and the conditional model with guidance.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import torch

from pipelines.loading import load_pipeline, prepare_sampling

DDPM, COND = "pretrained/sprites_ddpm", "pretrained/sprites_conditional"


def digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def settings(ddpm: str = DDPM) -> dict:
    """name -> (folder, sampler, call arguments)."""
    out = {}
    for prior in ("standard", "moments"):
        out[f"ddpm500_{prior}"] = (ddpm, "ddpm", {"num_inference_steps": 500, "prior": prior})
        out[f"ddim50_{prior}"] = (ddpm, "ddim", {"num_inference_steps": 50, "prior": prior})
    out["cond_ddim50_w2"] = (COND, "ddim", {"num_inference_steps": 50, "class_labels": [0, 1, "food", 3],
                                            "guidance_scale": 2.0})
    out["cond_ddpm500_w3"] = (COND, "ddpm", {"num_inference_steps": 500, "class_labels": [4, 3, 2, 1],
                                             "guidance_scale": 3.0})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--check", default=None)
    p.add_argument("--ddpm", default=DDPM, help=f"the unconditional folder (default {DDPM})")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    hashes = {}
    for name, (folder, sampler, kwargs) in settings(args.ddpm).items():
        pipe = load_pipeline(folder, sampler)
        images = pipe(batch_size=4, generator=torch.Generator().manual_seed(0), output_type="pt", **kwargs).images
        hashes[name] = digest(images)
        print(name, hashes[name][:16], flush=True)
    for prior in ("moments", "standard"):
        sampling = prepare_sampling(args.ddpm, "fast", prior=prior)
        pipe = sampling.pipe
        images = pipe(batch_size=4, generator=torch.Generator().manual_seed(0), output_type="pt",
                      **sampling.arguments).images
        hashes[f"fast_{prior}"] = digest(images)
        print(f"fast_{prior}", hashes[f"fast_{prior}"][:16], flush=True)
    with open(args.out, "w") as f:
        json.dump(hashes, f, indent=1, sort_keys=True)
    if args.check:
        with open(args.check) as f:
            ref = json.load(f)
        differ = sorted(k for k in ref if hashes.get(k) != ref[k])
        print("bitwise equal" if not differ else f"DIFFER: {', '.join(differ)}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
