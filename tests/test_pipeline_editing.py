"""Editing with the sprites pipelines: DDIM inversion round trips, slerp, RePaint inpainting keeps the known pixels,
SDEdit's strength 0 and 1 in closed form, and the input checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline, SpritesImg2ImgPipeline, SpritesInpaintPipeline, slerp
from pipelines.inversion import ddim_invert, inversion_steps
from pipelines.pipeline_sprites_ddim import ddim_steps, ddim_update
from pipelines.pipeline_sprites_inpaint import repaint_levels
from pipelines.prior import DataMoments
from pipelines.schedule import make_scheduler, read_schedule, spaced_timesteps

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"
PAPER_MSE_10_STEPS = 0.014  # DDIM paper, Table 2, CIFAR-10, 10 steps (per dimension, pixels in [0, 1])


def _pipe(cls, unet, **scheduler):
    pipe = cls(unet=unet, scheduler=make_scheduler(clip_sample=False, **scheduler))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def real(sprites_arrays) -> np.ndarray:
    """Four real sprites as output_type='np' gives images: float32 (4, 16, 16, 3) in [0, 1]."""
    return sprites_arrays[0][[0, 400, 900, 1500]].astype(np.float32) / 255


@pytest.fixture(scope="module")
def cond_unet():
    from training.config import load_config
    from training.model import build_unet

    torch.manual_seed(1)
    return build_unet(load_config("configs/tiny.yaml").unet, conditional=True).eval()


# ------------------------------------------------------------------------------------------------- inversion


def test_inversion_step_inverts_the_sampling_step_for_a_noise_independent_of_x():
    """When eps does not depend on x, the backward step is exactly the inverse of eq. 12: the round trip through
    all 20 steps returns x_0 to float64 rounding."""
    _, alphas_cumprod = read_schedule(make_scheduler())
    timesteps = spaced_timesteps(500, 20, "trailing")
    eps = {t: torch.randn(2, 3, 16, 16, dtype=torch.float64) for t in timesteps}
    x0 = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    x = ddim_invert(lambda x, t: eps[int(t)], x0, inversion_steps(alphas_cumprod, timesteps))
    for step in ddim_steps(alphas_cumprod, timesteps):
        x = ddim_update(x, eps[step.t], step)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-10)


def test_fixed_point_inversion_samples_back_exactly_on_a_random_unet(unet, real):
    """A random tiny UNet, 50 steps: plain inversion misses the images by > 1e-2 per dimension (on [0, 1] pixels), 8
    fixed-point iterations a step bring the round trip below 1e-9 (at 10 steps they do not converge on it)."""
    pipe = _pipe(SpritesDDIMPipeline, unet, timestep_spacing="trailing")
    errors = []
    for k in (0, 8):
        latents = pipe.invert(real, num_inference_steps=50, fixed_point_iterations=k)
        back = pipe(batch_size=len(real), latents=latents, num_inference_steps=50, output_type="np").images
        errors.append(float(((back - real) ** 2).mean()))
    assert errors[1] < 1e-9 and errors[0] > 1e-2


def test_inversion_round_trip_on_the_shipped_model_beats_the_paper(real):
    """The shipped model, 10 steps: the per-dimension MSE ([0, 1] pixels) of invert-then-sample is below the DDIM
    paper's 0.014 at 10 steps; with 3 fixed-point iterations a step at 50 steps it is below 1e-5."""
    pipe = SpritesDDIMPipeline.from_pretrained(SHIPPED)
    pipe.set_progress_bar_config(disable=True)
    for steps, k, bound in ((10, 0, PAPER_MSE_10_STEPS), (50, 3, 1e-5)):
        latents = pipe.invert([PIL.Image.fromarray((im * 255).round().astype(np.uint8)) for im in real], steps,
                              fixed_point_iterations=k)
        back = pipe(batch_size=len(real), latents=latents, num_inference_steps=steps, eta=0.0, clip_sample=False,
                    output_type="np").images
        assert float(((back - real) ** 2).mean()) < bound, (steps, k)


def test_inversion_with_class_labels_round_trips_on_a_conditional_unet(cond_unet, real):
    pipe = _pipe(SpritesDDIMPipeline, cond_unet)
    latents = pipe.invert(real, 50, class_labels=["hero", 1, 2, "spell"], fixed_point_iterations=8)
    back = pipe(batch_size=4, latents=latents, num_inference_steps=50, class_labels=["hero", 1, 2, "spell"],
                output_type="np").images
    assert float(((back - real) ** 2).mean()) < 1e-9


@pytest.mark.parametrize(("images", "message"), [
    (np.zeros((2, 8, 8, 3), np.float32), r"images of shape \(8, 8, 3\).*this UNet takes \(16, 16, 3\)"),
    (np.full((2, 16, 16, 3), 1.5, np.float32), r"values must lie in \[0, 1\]"),
    (np.zeros((16, 16, 3, 2, 2), np.float32), r"shape \(N, H, W, C\)"),
    (np.zeros((2, 16, 16, 3), np.int32), r"dtype int32"),
    ("sprite.png", r"must be PIL images, an array"),
])
def test_invert_input_errors_are_one_line(unet, images, message):
    pipe = _pipe(SpritesDDIMPipeline, unet)
    with pytest.raises(ValueError, match=message) as info:
        pipe.invert(images, 2)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe.invert(np.zeros((1, 16, 16, 3), np.float32), 0)


# ------------------------------------------------------------------------------------------------- slerp


def test_slerp_ends_midpoint_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 3, 16, 16, generator=g), torch.randn(3, 3, 16, 16, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b, rtol=1e-5, atol=1e-5)
    frames = slerp(a, b, np.linspace(0, 1, 8))
    assert frames.shape == (8, 3, 3, 16, 16)
    # equal norms: every frame keeps the norm (a great circle), the midpoint is at equal angles from both ends
    b = b * (a.flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)
    frames = slerp(a, b, [0.25, 0.5])
    torch.testing.assert_close(frames.flatten(2).norm(dim=2), a.flatten(1).norm(dim=1).expand(2, 3))
    cos = torch.nn.functional.cosine_similarity
    torch.testing.assert_close(cos(frames[1].flatten(1), a.flatten(1)), cos(frames[1].flatten(1), b.flatten(1)))
    # parallel vectors: the straight line
    torch.testing.assert_close(slerp(a, 2 * a, 0.5), 1.5 * a)
    with pytest.raises(ValueError, match="one shape"):
        slerp(a, b[:1], 0.5)


# ------------------------------------------------------------------------------------------------- inpainting


def test_repaint_levels():
    assert repaint_levels(5, 2, 1) == [5, 4, 3, 2, 1, 0]
    levels = repaint_levels(10, 3, 2)
    assert levels[0] == 10 and levels[-1] == 0
    assert all(abs(b - a) == 1 for a, b in zip(levels, levels[1:], strict=False))
    down = sum(b < a for a, b in zip(levels, levels[1:], strict=False))
    assert down == 10 + (2 - 1) * 3 * len(range(0, 10 - 3, 3))  # the UNet calls of the docstring
    assert [levels.count(k) for k in (0, 3, 6)] == [2, 3, 3]  # jump levels are passed again on each jump


@pytest.mark.parametrize("prior", ["standard", "moments"])
def test_inpainting_keeps_the_known_pixels_exactly(unet, real, prior):
    pipe = _pipe(SpritesInpaintPipeline, unet)
    pipe.set_data_moments(DataMoments.from_images(torch.from_numpy(real).permute(0, 3, 1, 2) * 2 - 1))
    mask = np.ones((16, 16), np.float32)
    mask[4:12, 4:12] = 0  # the centre square is filled
    out = pipe(real, mask, num_inference_steps=8, eta=1.0, jump_length=2, jump_n_sample=2, prior=prior,
               generator=torch.Generator().manual_seed(0), output_type="np").images
    keep = mask.astype(bool)
    assert np.array_equal(out[:, keep], real[:, keep])
    assert np.abs(out[:, ~keep] - real[:, ~keep]).mean() > 0.01  # the hole was filled by the model
    pil = pipe([PIL.Image.fromarray((im * 255).round().astype(np.uint8)) for im in real],
               PIL.Image.fromarray((mask * 255).astype(np.uint8)), num_inference_steps=4, jump_length=2,
               jump_n_sample=1, prior=prior, generator=torch.Generator().manual_seed(0)).images
    got = np.stack([np.asarray(im) for im in pil])
    assert np.array_equal(got[:, keep], (real[:, keep] * 255).round().astype(np.uint8))


def test_inpainting_with_class_labels_and_no_jumps_is_one_call_a_step(cond_unet, real):
    pipe = _pipe(SpritesInpaintPipeline, cond_unet)
    calls = []
    handle = cond_unet.register_forward_hook(lambda m, a, k, o: calls.append(k.get("class_labels")), with_kwargs=True)
    try:
        keep = np.zeros((4, 16, 16), bool)
        keep[:, :, :8] = True  # keep the left half
        out = pipe(real, keep, num_inference_steps=6, jump_length=2, jump_n_sample=1, class_labels=[0, 1, 2, 3],
                   guidance_scale=2.0, generator=torch.Generator().manual_seed(0), output_type="pt").images
    finally:
        handle.remove()
    assert len(calls) == 6 and calls[0].tolist() == [0, 1, 2, 3, 5, 5, 5, 5]
    assert torch.equal(out[:, :, :, :8], torch.from_numpy(real).permute(0, 3, 1, 2)[:, :, :, :8])


def test_inpainting_mask_errors(unet, real):
    pipe = _pipe(SpritesInpaintPipeline, unet)
    with pytest.raises(ValueError, match=r"mask_image: 2 masks for 4 images"):
        pipe(real, np.ones((2, 16, 16)), num_inference_steps=2)
    with pytest.raises(ValueError, match=r"mask_image: masks of shape \(8, 8, 1\)"):
        pipe(real, np.ones((8, 8)), num_inference_steps=2)
    with pytest.raises(ValueError, match="jump_length must be an integer from 1 to num_inference_steps"):
        pipe(real, np.ones((16, 16)), num_inference_steps=2, jump_length=3)


# ------------------------------------------------------------------------------------------------- SDEdit


def test_strength_zero_returns_the_input(unet, real):
    pipe = _pipe(SpritesImg2ImgPipeline, unet)
    assert np.array_equal(pipe(real, strength=0.0, output_type="np").images, real)
    pil = [PIL.Image.fromarray((im * 255).round().astype(np.uint8)) for im in real]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pipe(pil, strength=0.0).images, pil,
                                                                             strict=True))


def test_strength_one_is_sampling_from_the_noised_image_with_the_same_z(unet, real):
    """x_T = sqrt(alpha_bar_T) x_0 + sqrt(1 - alpha_bar_T) z, then the whole DDIM (eta = 0) or DDPM chain: equal to
    the sampling pipelines started there, with the same z (DDPM: the same later draws too)."""
    x0 = torch.from_numpy(real).permute(0, 3, 1, 2) * 2 - 1
    _, alphas_cumprod = read_schedule(make_scheduler())
    for sampler, cls, steps in (("ddim", SpritesDDIMPipeline, 10), ("ddpm", SpritesDDPMPipeline, 10)):
        g = torch.Generator().manual_seed(0)
        z = randn_tensor(x0.shape, generator=g)
        ab = float(alphas_cumprod[spaced_timesteps(500, steps, "leading")[0]])
        x_T = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * z
        want = _pipe(cls, unet)(batch_size=4, latents=x_T, num_inference_steps=steps, generator=g,
                                output_type="np").images
        got = _pipe(SpritesImg2ImgPipeline, unet)(real, strength=1.0, sampler=sampler, num_inference_steps=steps,
                                                  generator=torch.Generator().manual_seed(0), output_type="np").images
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # x_T's float32 rounding differs in the last bit
    assert abs(math.sqrt(alphas_cumprod[-1]) - 0.08) < 0.001  # the course's x_T keeps 8% of the image


def test_strength_runs_round_s_times_steps(unet, real):
    pipe = _pipe(SpritesImg2ImgPipeline, unet)
    calls = []
    handle = unet.register_forward_hook(lambda m, a, o: calls.append(int(a[1])))
    try:
        pipe(real[:1], strength=0.3, num_inference_steps=10, output_type="np")
    finally:
        handle.remove()
    assert calls == spaced_timesteps(500, 10, "leading")[-3:]
    with pytest.raises(ValueError, match=r"strength must be a finite number from 0 to 1, got 1.5"):
        pipe(real, strength=1.5)
    with pytest.raises(ValueError, match="sampler must be one of ddim, ddpm"):
        pipe(real, sampler="heun")
