"""What both pipelines promise: reproducible seeds, output types, intermediates, input checks, and a
save_pretrained folder that loads in ours and in diffusers' stock pipelines."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMPipeline, DDPMPipeline

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline, SpritesESDDPMPipeline, SpritesPipelineOutput
from pipelines.schedule import make_scheduler

from .test_remote_code import stock_pipeline

PIPELINES = [SpritesDDPMPipeline, SpritesDDIMPipeline]
FEW = {"num_inference_steps": 3}


def _pipe(cls, unet):
    pipe = cls(unet=unet, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _seed(s: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(s)


@pytest.mark.parametrize("cls", PIPELINES)
def test_same_seed_same_images(cls, unet):
    pipe = _pipe(cls, unet)
    extra = {"eta": 1.0} if cls is SpritesDDIMPipeline else {}  # both then draw noise at every step
    a = pipe(batch_size=2, generator=_seed(0), output_type="pt", **FEW, **extra).images
    b = pipe(batch_size=2, generator=_seed(0), output_type="pt", **FEW, **extra).images
    c = pipe(batch_size=2, generator=_seed(1), output_type="pt", **FEW, **extra).images
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("cls", PIPELINES)
def test_latents_replace_the_initial_noise(cls, unet):
    pipe = _pipe(cls, unet)
    x_T = torch.randn(2, 3, 16, 16, generator=_seed(5))
    a = pipe(batch_size=2, generator=_seed(0), output_type="pt", **FEW).images
    b = pipe(batch_size=2, generator=_seed(5), latents=torch.randn(2, 3, 16, 16, generator=_seed(0)),
             output_type="pt", **FEW).images
    out = pipe(batch_size=2, latents=x_T, output_type="pt", return_intermediates=True, **FEW)
    if cls is SpritesDDIMPipeline:  # eta = 0: nothing else is random
        assert torch.equal(a, b)
    assert torch.equal(out.intermediates[0], (x_T / 2 + 0.5).clamp(0, 1))


@pytest.mark.parametrize("cls", PIPELINES)
def test_output_types(cls, unet):
    pipe = _pipe(cls, unet)
    kw = {"batch_size": 2, **FEW}
    pt = pipe(output_type="pt", generator=_seed(), **kw)
    assert isinstance(pt, SpritesPipelineOutput) and pt.intermediates is None
    assert pt.images.shape == (2, 3, 16, 16) and pt.images.dtype == torch.float32
    assert pt.images.min() >= 0 and pt.images.max() <= 1
    np_images = pipe(output_type="np", generator=_seed(), **kw).images
    assert np_images.shape == (2, 16, 16, 3) and np_images.dtype == np.float32
    np.testing.assert_array_equal(np_images, pt.images.permute(0, 2, 3, 1).numpy())
    pil = pipe(output_type="pil", generator=_seed(), **kw).images
    assert len(pil) == 2 and all(isinstance(im, PIL.Image.Image) and im.size == (16, 16) for im in pil)
    assert pil[0].mode == "RGB"
    as_tuple = pipe(output_type="np", generator=_seed(), return_dict=False, **kw)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1
    np.testing.assert_array_equal(as_tuple[0], np_images)


@pytest.mark.parametrize("cls", PIPELINES)
def test_intermediates(cls, unet):
    pipe = _pipe(cls, unet)
    out = pipe(batch_size=2, num_inference_steps=5, generator=_seed(), output_type="np", return_intermediates=True)
    assert out.intermediates.shape == (6, 2, 16, 16, 3)  # x_T and after each of the 5 steps
    np.testing.assert_array_equal(out.intermediates[-1], out.images)
    every = pipe(batch_size=2, num_inference_steps=5, generator=_seed(), output_type="pt", return_intermediates=True,
                 intermediate_every=2)
    assert every.intermediates.shape == (4, 2, 3, 16, 16)  # x_T, after steps 2, 4 and the last (5)
    pil = pipe(batch_size=2, num_inference_steps=2, generator=_seed(), output_type="pil", return_intermediates=True,
               return_dict=False)
    assert len(pil) == 2 and len(pil[1]) == 3 and len(pil[1][0]) == 2


BAD_ARGS = [
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"batch_size": 2.0}, "batch_size must be an integer >= 1"),
    ({"num_inference_steps": 0}, r"num_inference_steps must be an integer from 1 to num_train_timesteps \(500\)"),
    ({"num_inference_steps": 501}, r"num_inference_steps .* \(500\), got 501"),
    ({"latents": torch.zeros(3, 3, 16, 16)}, r"latents has shape \(3, 3, 16, 16\), expected \(1, 3, 16, 16\)"),
    ({"latents": np.zeros((1, 3, 16, 16))}, "latents must be a torch.Tensor"),
    ({"output_type": "latent"}, "output_type must be one of pil, np, pt; got 'latent'"),
    ({"timestep_spacing": "uniform"}, "timestep_spacing must be one of leading, trailing, linspace"),
    ({"intermediate_every": 0}, "intermediate_every must be an integer >= 1"),
    ({"generator": [_seed(), _seed()]}, "a list of 2 generators for batch_size 1"),
    ({"class_labels": 0}, "class_labels were given but the UNet is unconditional"),
    ({"guidance_scale": 3.0}, "guidance_scale=3.0 needs a class-conditional UNet"),
]


@pytest.mark.parametrize("cls", PIPELINES)
@pytest.mark.parametrize(("kwargs", "match"), BAD_ARGS, ids=[next(iter(k)) + str(i) for i, (k, _) in
                                                             enumerate(BAD_ARGS)])
def test_input_checks(cls, unet, kwargs, match):
    calls = []
    handle = unet.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match=match):
            _pipe(cls, unet)(**{"num_inference_steps": 2, **kwargs})
    finally:
        handle.remove()
    assert not calls  # refused before any UNet call


def test_v_prediction_scheduler_is_refused(unet):
    scheduler = make_scheduler()
    scheduler.register_to_config(prediction_type="v_prediction")
    with pytest.raises(ValueError, match="prediction_type is 'v_prediction'"):
        SpritesDDIMPipeline(unet=unet, scheduler=scheduler)(num_inference_steps=2)


def test_save_pretrained_round_trip_and_stock_pipelines(unet, tmp_path):
    """A folder saved like training does (our DDPM pipeline, a DDPMScheduler) loads in both of ours, and its parts
    in the stock DDPMPipeline / DDIMPipeline (their from_pretrained, no code trusted: test_remote_code)."""
    _pipe(SpritesDDPMPipeline, unet).save_pretrained(tmp_path)
    for cls in PIPELINES:
        kw = {"batch_size": 2, "output_type": "pt", **FEW}
        before = _pipe(cls, unet)(generator=_seed(3), **kw).images
        loaded = cls.from_pretrained(tmp_path)
        loaded.set_progress_bar_config(disable=True)
        assert type(loaded.scheduler).__name__ == "DDPMScheduler"
        assert torch.equal(loaded(generator=_seed(3), **kw).images, before)
    for stock_cls, steps in ((DDPMPipeline, 2), (DDIMPipeline, 3)):
        stock = stock_pipeline(stock_cls, tmp_path)
        images = stock(batch_size=2, num_inference_steps=steps, generator=_seed(), output_type="np").images
        assert images.shape == (2, 16, 16, 3) and np.isfinite(images).all()


@pytest.mark.parametrize("cls", [*PIPELINES, SpritesESDDPMPipeline])
def test_push_to_hub_offline_is_one_clear_line(cls, unet, monkeypatch):
    import pipelines.hub as hub

    monkeypatch.setattr(hub, "hub_unreachable_reason", lambda: "cannot reach huggingface.co (no route)")
    with pytest.raises(hub.HubError) as err:
        _pipe(cls, unet).push_to_hub("someone/sprites")
    message = str(err.value)
    assert "\n" not in message and "someone/sprites" in message and "save_pretrained" in message


def test_push_to_hub_online_hands_over_to_diffusers(unet, monkeypatch):
    import diffusers

    import pipelines.hub as hub

    calls = []
    monkeypatch.setattr(hub, "hub_unreachable_reason", lambda: None)
    monkeypatch.setattr(diffusers.DiffusionPipeline, "push_to_hub",
                        lambda self, repo_id, **kw: calls.append((repo_id, kw)) or "url")
    assert _pipe(SpritesDDIMPipeline, unet).push_to_hub("someone/sprites", private=True) == "url"
    assert calls == [("someone/sprites", {"private": True})]
