"""Class labels and classifier-free guidance: label forms and errors, K = num_class_embeds - 1 classes named from
the folder, the guidance arithmetic on a known UNet output, soft mixes as weighted embedding rows, and a
conditional folder round trip."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipelines import SpritesDDIMPipeline, SpritesDDPMPipeline
from pipelines.labels import (
    CLASS_NAMES_FILE,
    NULL_CLASS,
    SPRITE_CLASSES,
    ClassConditioning,
    Classes,
    class_label_weights,
    guidance,
    read_class_names,
    unet_classes,
)
from pipelines.schedule import make_scheduler
from training.config import load_config
from training.model import build_unet

PIPELINES = [SpritesDDPMPipeline, SpritesDDIMPipeline]
MIX = [0.5, 0.0, 0.5, 0.0, 0.0]  # half hero, half food


@pytest.fixture(scope="module")
def cond_unet():
    torch.manual_seed(0)
    unet = build_unet(load_config("configs/tiny.yaml").unet, conditional=True).eval()
    with torch.no_grad():  # distinct class rows, large enough to change the output visibly
        unet.class_embedding.weight.normal_(0, 1)
    return unet


def _pipe(cls, unet):
    pipe = cls(unet=unet, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _sample(cls, unet, **kw):
    kw = {"batch_size": 2, "num_inference_steps": 3, "output_type": "pt", "generator": torch.Generator().manual_seed(0),
          **kw}
    return _pipe(cls, unet)(**kw).images


# --------------------------------------------------------------------------------------------- label forms

@pytest.mark.parametrize(("labels", "want"), [
    (2, [2, 2, 2]),
    ("food", [2, 2, 2]),
    (" Side-Facing ", [4, 4, 4]),
    ([0, "spell", 1], [0, 3, 1]),
    ([3], [3, 3, 3]),
    (torch.tensor([4, 0, 1]), [4, 0, 1]),
    (np.array([1, 1, 2]), [1, 1, 2]),
    (torch.tensor(3), [3, 3, 3]),
    ([1.0, 0, 0, 0, 0], [0, 0, 0]),  # floats: one mix, here a one-hot one
])
def test_hard_labels(labels, want):
    np.testing.assert_array_equal(class_label_weights(labels, 3), np.eye(5)[want])


def test_soft_labels():
    np.testing.assert_array_equal(class_label_weights(MIX, 2), [MIX, MIX])
    np.testing.assert_array_equal(class_label_weights([MIX, "hero"], 2), [MIX, [1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(class_label_weights(torch.tensor([MIX, [0, 0, 0, 0, 1.0]]), 2),
                                  [MIX, [0, 0, 0, 0, 1]])
    np.testing.assert_allclose(class_label_weights(np.full(5, 0.2), 2), np.full((2, 5), 0.2))


@pytest.mark.parametrize(("labels", "match"), [
    ("dragon", "unknown class name 'dragon'; valid names: hero, non-hero, food, spell, side-facing"),
    (5, r"integer label 5 is out of range; use 0..4"),
    ([0, -1, 2], r"integer label -1 is out of range"),
    ([0.5, 0.0, 0.4, 0.0, 0.0], r"mix weights must sum to 1.*sum 0.9"),
    ([1.5, -0.5, 0.0, 0.0, 0.0], "mix weights must be finite and >= 0"),
    ([0.5, 0.5], r"a soft mix needs 5 weights"),
    ([0, 1], "2 labels for batch_size 3; give one label"),
    ([], "class_labels is empty"),
    (True, "True is not a label"),
    (None.__class__, "cannot read"),
    (torch.zeros(3, 5, 2), "an array of shape"),
])
def test_label_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        class_label_weights(labels, 3)


def test_label_errors_from_the_pipelines(cond_unet):
    for cls in PIPELINES:
        with pytest.raises(ValueError, match="unknown class name 'wizard'"):
            _sample(cls, cond_unet, class_labels="wizard")
        with pytest.raises(ValueError, match="3 labels for batch_size 2"):
            _sample(cls, cond_unet, class_labels=[0, 1, 2])
        with pytest.raises(ValueError, match="guidance_scale=2.0 needs class_labels"):
            _sample(cls, cond_unet, guidance_scale=2.0)
        with pytest.raises(ValueError, match="guidance_scale must be a finite number >= 0"):
            _sample(cls, cond_unet, class_labels=0, guidance_scale=-1.0)


def test_the_last_embedding_row_is_the_null_class():
    """K = num_class_embeds - 1: a 5-row UNet has 4 classes and its null class in row 4."""
    torch.manual_seed(0)
    unet = build_unet({**load_config("configs/tiny.yaml").unet, "num_class_embeds": 5}).eval()
    assert unet_classes(unet) == Classes(4) and unet_classes(build_unet(load_config("configs/tiny.yaml").unet)) is None
    assert ClassConditioning(unet, None, 1.0, 2).labels.tolist() == [4, 4]
    assert ClassConditioning(unet, [3, 0], 2.0, 2).labels.tolist() == [3, 0, 4, 4]
    with pytest.raises(ValueError, match=r"integer label 4 is out of range; use 0..3 \(this model has no class names"):
        ClassConditioning(unet, 4, 1.0, 1)
    with pytest.raises(ValueError, match="unknown class name 'hero'; valid names: none: this model has no class names"):
        ClassConditioning(unet, "hero", 1.0, 1)
    with pytest.raises(ValueError, match="a soft mix needs 4 weights"):
        ClassConditioning(unet, [0.5, 0.5, 0.0, 0.0, 0.0], 1.0, 1)


def test_class_names_from_the_folder_by_index_and_by_name(tmp_path):
    torch.manual_seed(0)
    unet = build_unet({**load_config("configs/tiny.yaml").unet, "num_class_embeds": 4}).eval()
    pipe = _pipe(SpritesDDIMPipeline, unet)
    assert pipe.class_names is None  # 3 classes, no names: labels by index
    with pytest.raises(ValueError, match="2 class names for a UNet with 3 classes"):
        pipe.set_class_names(["cat", "dog"])
    with pytest.raises(ValueError, match="distinct"):
        pipe.set_class_names(["cat", "Cat", "owl"])
    pipe.set_class_names(["Cat", "dog", "owl"])
    pipe.save_pretrained(tmp_path / "p")
    assert json.loads((tmp_path / "p" / CLASS_NAMES_FILE).read_text()) == ["Cat", "dog", "owl"]
    loaded = SpritesDDPMPipeline.from_pretrained(tmp_path / "p")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.class_names == ("Cat", "dog", "owl")
    kw = {"batch_size": 2, "num_inference_steps": 2, "output_type": "pt", "guidance_scale": 2.0}
    by_name = loaded(generator=torch.Generator().manual_seed(0), class_labels=[" cat", "OWL"], **kw).images
    by_index = loaded(generator=torch.Generator().manual_seed(0), class_labels=[0, 2], **kw).images
    assert torch.equal(by_name, by_index)
    with pytest.raises(ValueError, match="unknown class name 'hero'; valid names: Cat, dog, owl"):
        loaded(class_labels="hero", **kw)
    loaded.save_pretrained(tmp_path / "again")  # the names travel with the folder
    assert read_class_names(tmp_path / "again") == ("Cat", "dog", "owl")


def test_a_six_row_unet_without_names_has_the_sprites_names(cond_unet, tmp_path):
    pipe = _pipe(SpritesDDPMPipeline, cond_unet)
    assert pipe.class_names == SPRITE_CLASSES
    pipe.save_pretrained(tmp_path / "p")
    assert not (tmp_path / "p" / CLASS_NAMES_FILE).exists()  # the default needs no file


# ------------------------------------------------------------------------------------------------ guidance

class StubUNet(torch.nn.Module):
    """Returns a known eps: every pixel of sample i equals 10 * (label_i + 1) + i; records the batch sizes."""

    def __init__(self):
        super().__init__()
        self.config = {"num_class_embeds": 6, "class_embed_type": None}
        self.class_embedding = torch.nn.Embedding(6, 4)
        self.batches: list[int] = []

    def forward(self, x, t, class_labels=None):
        self.batches.append(x.shape[0])
        value = 10.0 * (class_labels.float() + 1) + torch.arange(x.shape[0])
        return SimpleNamespace(sample=value.view(-1, 1, 1, 1).expand_as(x).clone())


@pytest.mark.parametrize("w", [0.0, 1.0, 2.5, 7.0])
def test_guidance_arithmetic(w):
    stub = StubUNet()
    cond = ClassConditioning(stub, [1, 3], w, 2)
    eps = stub(cond.batch(torch.zeros(2, 3, 2, 2)), torch.tensor(7), class_labels=cond.labels).sample
    eps = guidance(eps, cond.scale) if cond.guided else eps  # as every pipeline's loop does
    eps_cond = torch.tensor([10.0 * 2 + 0, 10.0 * 4 + 1])
    if w in (0.0, 1.0):  # one call: the null class only, or the labels only
        assert stub.batches == [2]
        want = torch.tensor([10.0 * 6, 10.0 * 6 + 1]) if w == 0 else eps_cond
    else:  # one call on the doubled batch: rows 2, 3 are the null class
        assert stub.batches == [4]
        eps_uncond = torch.tensor([10.0 * 6 + 2, 10.0 * 6 + 3])
        want = eps_uncond + w * (eps_cond - eps_uncond)
    torch.testing.assert_close(eps[:, 0, 0, 0], want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("cls", PIPELINES)
def test_guidance_inside_the_pipeline(cls, cond_unet, monkeypatch):
    """A UNet forward that returns known eps for the cond and uncond halves; one step to x_0 by hand."""
    seen = []

    def fake_forward(x, t, class_labels=None, **kwargs):
        seen.append(class_labels.tolist())
        eps = torch.where(class_labels == NULL_CLASS, -0.5, 0.25 * (class_labels + 1)).view(-1, 1, 1, 1)
        return SimpleNamespace(sample=eps.expand_as(x).float())

    monkeypatch.setattr(cond_unet, "forward", fake_forward)
    x_T = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    w = 3.0
    images = _sample(cls, cond_unet, num_inference_steps=1, timestep_spacing="trailing", latents=x_T,
                     class_labels=["food", 0], guidance_scale=w)
    assert seen == [[2, 0, NULL_CLASS, NULL_CLASS]]  # one call, both halves
    eps = -0.5 + w * (torch.tensor([0.75, 0.25]) + 0.5)
    ab = float(torch.prod(1 - make_scheduler().betas.double()))  # one step from t = T - 1 straight to x_0
    x0 = (x_T - math.sqrt(1 - ab) * eps.view(-1, 1, 1, 1)) / math.sqrt(ab)
    torch.testing.assert_close(images, (x0 / 2 + 0.5).clamp(0, 1), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------- soft mixes

def test_mixed_embedding_is_the_weighted_sum_of_rows(cond_unet):
    table = cond_unet.class_embedding.weight.detach()
    cond = ClassConditioning(cond_unet, [MIX, [0.1, 0.2, 0.3, 0.4, 0.0]], 2.0, 2)
    with cond.applied(cond_unet):
        emb = cond_unet.class_embedding(cond.labels)
    want = torch.tensor([MIX, [0.1, 0.2, 0.3, 0.4, 0.0]]) @ table[:5]
    torch.testing.assert_close(emb[:2], want, rtol=1e-6, atol=1e-6)
    assert torch.equal(emb[2:], table[[NULL_CLASS, NULL_CLASS]])
    assert not cond_unet.class_embedding._forward_hooks  # removed on exit


@pytest.mark.parametrize("cls", PIPELINES)
def test_one_hot_mix_equals_the_integer_label(cls, cond_unet):
    """[1,0,0,0,0] next to a real mix goes through the mixing hook and must equal the plain label 0 exactly."""
    plain = _sample(cls, cond_unet, class_labels=[0, 0])
    mixed = _sample(cls, cond_unet, class_labels=[[1.0, 0, 0, 0, 0], MIX])
    assert torch.equal(mixed[0], plain[0])
    assert torch.equal(_sample(cls, cond_unet, class_labels=[1.0, 0, 0, 0, 0]), plain)
    assert not torch.equal(mixed[1], plain[1])


@pytest.mark.parametrize("cls", PIPELINES)
def test_labels_change_the_samples(cls, cond_unet):
    hero = _sample(cls, cond_unet, class_labels="hero")
    food = _sample(cls, cond_unet, class_labels="food")
    half = _sample(cls, cond_unet, class_labels=MIX)
    null = _sample(cls, cond_unet)  # no labels: the null class
    assert torch.equal(_sample(cls, cond_unet, class_labels=[0, 0]), hero)
    assert torch.equal(_sample(cls, cond_unet, class_labels="hero", guidance_scale=0.0), null)
    for a, b in ((hero, food), (hero, half), (food, half), (hero, null)):
        assert not torch.equal(a, b)


def test_hook_removed_after_an_error(cond_unet, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cond_unet, "forward", broken)
    with pytest.raises(RuntimeError, match="boom"):
        _sample(SpritesDDIMPipeline, cond_unet, class_labels=MIX)
    assert not cond_unet.class_embedding._forward_hooks


def test_conditional_folder_round_trip(cond_unet, tmp_path):
    _pipe(SpritesDDPMPipeline, cond_unet).save_pretrained(tmp_path)
    for cls in PIPELINES:
        kw = {"class_labels": ["spell", MIX], "guidance_scale": 2.0}
        before = _sample(cls, cond_unet, **kw)
        loaded = cls.from_pretrained(tmp_path)
        assert loaded.unet.config.num_class_embeds == 6
        assert torch.equal(_sample(cls, loaded.unet, **kw), before)
