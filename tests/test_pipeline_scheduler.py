"""``pipe.scheduler = OtherScheduler.from_config(pipe.scheduler.config)``, the diffusers way to change the sampler:
the DDPM and DDIM pipelines sample with it (equal to diffusers' stock pipeline on that scheduler); with their own
DDPMScheduler / DDIMScheduler they run the written-out method; the pipelines that run their own method refuse
another scheduler in one line that names the pipeline which samples with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
)

from pipelines import (
    SpritesDDIMPipeline,
    SpritesDDPMPipeline,
    SpritesESDDPMPipeline,
    SpritesImg2ImgPipeline,
    SpritesInpaintPipeline,
    SpritesSolverPipeline,
)
from pipelines.pipeline_sprites_ddpm_no_noise import SpritesDDPMWithoutNoisePipeline
from pipelines.schedule import make_scheduler

STEPS = 4


def _run(pipe, seed: int = 0, **kw) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    return pipe(batch_size=2, generator=torch.Generator().manual_seed(seed), output_type="np", **kw).images


@pytest.mark.parametrize("cls, other", [
    (SpritesDDPMPipeline, DPMSolverMultistepScheduler), (SpritesDDPMPipeline, EulerAncestralDiscreteScheduler),
    (SpritesDDPMPipeline, DDIMScheduler),  # the usual swap: DDIM's steps, as in diffusers' DDPMPipeline
    (SpritesDDIMPipeline, DPMSolverMultistepScheduler), (SpritesDDIMPipeline, EulerAncestralDiscreteScheduler)])
def test_an_assigned_scheduler_samples_as_in_the_stock_pipeline(cls, other, unet):
    """Our pipeline on another scheduler equals diffusers' DDPMPipeline on it, bit for bit (the stock pipeline
    skips ``init_noise_sigma`` and ``scale_model_input``, so the reference adds them for a sigma scheduler)."""
    pipe = cls(unet=unet, scheduler=make_scheduler(clip_sample=False, timestep_spacing="trailing"))
    own = _run(pipe, num_inference_steps=STEPS)
    pipe.scheduler = other.from_config(pipe.scheduler.config)
    ours = _run(pipe, num_inference_steps=STEPS)
    stock = DDPMPipeline(unet=unet, scheduler=other.from_config(pipe.scheduler.config))
    stock.set_progress_bar_config(disable=True)
    scheduler = stock.scheduler
    if scheduler.init_noise_sigma == 1:
        want = stock(batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=STEPS,
                     output_type="np").images
    else:  # the diffusers loop with the sigma scheduler's input scaling
        g = torch.Generator().manual_seed(0)
        scheduler.set_timesteps(STEPS)
        x = torch.randn(2, 3, 16, 16, generator=g) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            with torch.no_grad():
                eps = unet(scheduler.scale_model_input(x, t), t).sample
            x = scheduler.step(eps, t, x, generator=g).prev_sample
        want = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(ours, want)
    assert np.abs(ours - own).max() > 1e-3  # not the written-out method's images


def test_a_ddim_scheduler_is_the_written_out_method(unet):
    """DDIMScheduler and DDPMScheduler carry the schedule our own steps read: the same images from either."""
    ddpm_config = make_scheduler(clip_sample=False, timestep_spacing="trailing")
    a = _run(SpritesDDIMPipeline(unet=unet, scheduler=ddpm_config), num_inference_steps=STEPS)
    b = _run(SpritesDDIMPipeline(unet=unet, scheduler=DDIMScheduler.from_config(ddpm_config.config)),
             num_inference_steps=STEPS)
    assert np.array_equal(a, b)


def test_guidance_and_labels_go_through_an_assigned_scheduler(unet):
    """A conditional UNet on another scheduler: one UNet call per step on [x, x] with labels [y, null]."""
    from training.config import load_config
    from training.model import build_unet

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny_conditional.yaml")
    cond_unet = build_unet(config.unet, conditional=True).eval()
    pipe = SpritesDDPMPipeline(unet=cond_unet, scheduler=make_scheduler())
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    calls = []
    handle = cond_unet.register_forward_pre_hook(lambda m, args, kwargs: calls.append(args[0].shape[0]),
                                                 with_kwargs=True)
    try:
        guided = _run(pipe, num_inference_steps=STEPS, class_labels=[0, "food"], guidance_scale=3.0)
    finally:
        handle.remove()
    assert calls == [4] * STEPS
    assert np.abs(guided - _run(pipe, num_inference_steps=STEPS, class_labels=[0, "food"])).max() > 1e-4


@pytest.mark.parametrize("kw, word", [({"variance": "beta"}, "variance"), ({"clip_sample": True}, "clip_sample"),
                                      ({"timestep_spacing": "leading"}, "timestep_spacing")])
def test_written_out_settings_are_refused_with_another_scheduler(kw, word, unet):
    pipe = SpritesDDPMPipeline(unet=unet, scheduler=make_scheduler())
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(ValueError, match=f"{word} is a setting of SpritesDDPMPipeline's own steps") as e:
        _run(pipe, num_inference_steps=STEPS, **kw)
    assert "\n" not in str(e.value) and "from_config" in str(e.value)
    ddim = SpritesDDIMPipeline(unet=unet, scheduler=EulerDiscreteScheduler.from_config(make_scheduler().config))
    with pytest.raises(ValueError, match="eta is a setting of SpritesDDIMPipeline's own steps"):
        _run(ddim, num_inference_steps=STEPS, eta=1.0)


SPRITE = np.linspace(0, 1, 2 * 16 * 16 * 3, dtype=np.float32).reshape(2, 16, 16, 3)
OWN_METHOD_CALLS = {
    SpritesSolverPipeline: lambda pipe: _run(pipe),
    SpritesESDDPMPipeline: lambda pipe: _run(pipe),
    SpritesDDPMWithoutNoisePipeline: lambda pipe: _run(pipe, num_inference_steps=STEPS),
    SpritesImg2ImgPipeline: lambda pipe: pipe(SPRITE, strength=0.5, num_inference_steps=STEPS, output_type="np"),
    SpritesInpaintPipeline: lambda pipe: pipe(SPRITE, np.ones((16, 16)), num_inference_steps=STEPS,
                                                jump_length=2, output_type="np"),
}


@pytest.mark.parametrize("cls", list(OWN_METHOD_CALLS), ids=lambda c: c.__name__)
def test_pipelines_with_their_own_method_refuse_another_scheduler(cls, unet):
    pipe = cls(unet=unet, scheduler=make_scheduler())
    OWN_METHOD_CALLS[cls](pipe)  # samples with the schedule it reads
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    with pytest.raises(ValueError, match="SpritesDDPMPipeline or SpritesDDIMPipeline sample with") as e:
        OWN_METHOD_CALLS[cls](pipe)
    assert "\n" not in str(e.value) and cls.__name__ in str(e.value) and "DPMSolverMultistepScheduler" in str(e.value)
