"""Score models, noise levels, sample metrics, training and the config loader."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from score_toy import (
    DSMLoss,
    GaussianMixture2D,
    NoiseConditionalScoreMLP,
    ScoreMLP,
    draw_sigmas,
    energy_distance,
    estimate_weights,
    fit,
    geometric_sigmas,
    mean_log_likelihood,
    relative_score_error,
)
from score_toy.config import ConfigError, load_config

EYE = [[1.0, 0.0], [0.0, 1.0]]
MIX = GaussianMixture2D([0.7, 0.3], [[3.0, 0.0], [-3.0, 0.0]], [EYE, [[0.5, 0.1], [0.1, 0.3]]])


def test_noise_conditional_model_scales_like_one_over_sigma():
    """f(x / sqrt(d^2 + sigma^2), log sigma) / sigma: with the net's output fixed, s halves when sigma doubles."""
    torch.manual_seed(0)
    model = NoiseConditionalScoreMLP(hidden=16, depth=2, data_std=None)
    for p in model.net.parameters():  # make f constant: only the last bias is non-zero
        torch.nn.init.zeros_(p)
    model.net[-1].bias.data = torch.tensor([1.0, -2.0])
    x = torch.randn(5, 2)
    assert torch.allclose(model(x, 2.0), torch.tensor([0.5, -1.0]).expand(5, 2))
    assert torch.allclose(model(x, 8.0) * 8.0, model(x, 0.5) * 0.5)


def test_noise_conditional_model_accepts_float_or_per_row_sigma():
    torch.manual_seed(0)
    model = NoiseConditionalScoreMLP(hidden=16, depth=2, data_std=1.5)
    x = torch.randn(6, 2)
    per_row = torch.tensor([1.0, 1.0, 1.0, 5.0, 5.0, 5.0])
    out = model(x, per_row)
    assert torch.allclose(out[:3], model(x[:3], 1.0)) and torch.allclose(out[3:], model(x[3:], 5.0))
    with pytest.raises(ValueError, match="shape"):
        model(x, torch.ones(4))
    with pytest.raises(ValueError, match="> 0"):
        model(x, 0.0)
    with pytest.raises(ValueError, match="needs sigma"):
        model(x, None)


def test_fixed_sigma_model_refuses_another_noise_level():
    model = ScoreMLP(hidden=8, depth=1, sigma=1.0)
    x = torch.zeros(3, 2)
    assert model(x).shape == (3, 2) and torch.equal(model(x, 1.0), model(x))
    with pytest.raises(ValueError, match="sigma=1.0 only"):
        model(x, 3.0)
    with pytest.raises(ValueError, match="sigma=None only"):
        ScoreMLP(hidden=8, depth=1)(x, 1.0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        model(torch.zeros(3, 4))


def test_geometric_sigmas_have_a_constant_ratio_and_exact_ends():
    s = geometric_sigmas(20.0, 1.0, 10)
    assert s[0].item() == pytest.approx(20.0) and s[-1].item() == pytest.approx(1.0)
    ratios = s[1:] / s[:-1]
    assert torch.allclose(ratios, torch.full_like(ratios, 20.0 ** (-1 / 9)))
    with pytest.raises(ValueError, match="sigma_max must be > sigma_min"):
        geometric_sigmas(1.0, 20.0, 10)
    with pytest.raises(ValueError, match="n_levels"):
        geometric_sigmas(20.0, 1.0, 0)


def test_draw_sigmas_geometric_and_log_uniform():
    g = torch.Generator().manual_seed(0)
    levels = geometric_sigmas(20.0, 1.0, 5).float()
    s = draw_sigmas(20_000, 1.0, 20.0, sampling="geometric", n_levels=5, generator=g)
    assert torch.isin(s, levels).all()
    counts = torch.stack([(s == v).sum() for v in levels]).double() / s.numel()
    assert (counts - 0.2).abs().max() < 0.015
    s = draw_sigmas(20_000, 1.0, 20.0, sampling="log_uniform", generator=g)
    assert s.min() >= 1.0 and s.max() <= 20.0
    # log sigma uniform on [0, log 20]: mean log 20 / 2, variance (log 20)^2 / 12
    assert s.log().mean().item() == pytest.approx(math.log(20) / 2, abs=0.02)
    assert s.log().var().item() == pytest.approx(math.log(20) ** 2 / 12, rel=0.03)


def test_energy_distance_point_masses_and_invariances():
    a = torch.tensor([[1.0, 2.0]]).repeat(5, 1)
    b = torch.tensor([[4.0, 6.0]]).repeat(7, 1)
    assert energy_distance(a, b) == pytest.approx(2 * 5.0)  # 2 |a - b| for two point masses
    g = torch.Generator().manual_seed(0)
    x, y = MIX.sample(800, g), MIX.sample(800, g)
    same = energy_distance(x, y)
    shifted = energy_distance(x, y + torch.tensor([1.0, 0.0]))
    assert abs(same) < 0.02 and shifted > 0.2
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    assert energy_distance(x @ rot.T + 3, y @ rot.T + 3) == pytest.approx(same, abs=1e-5)
    assert energy_distance(x, y) == pytest.approx(energy_distance(y, x), abs=1e-9)


def test_estimate_weights_and_mean_log_likelihood():
    g = torch.Generator().manual_seed(1)
    x = MIX.sample(20_000, g)
    w = estimate_weights(MIX, x)
    assert torch.allclose(w, MIX.weights, atol=0.015)
    with_nan = torch.cat([x[:99], torch.full((1, 2), float("nan"))])
    assert estimate_weights(MIX, with_nan).sum().item() == pytest.approx(0.99)
    # E_p[log p] is minus the entropy; points all at a mode score higher than samples
    assert mean_log_likelihood(MIX, x) < mean_log_likelihood(MIX, MIX.means[:1].float().repeat(10, 1))


def test_relative_score_error_is_zero_for_the_exact_score_and_exact_for_a_scaled_one():
    g = torch.Generator().manual_seed(2)
    assert relative_score_error(MIX.score_fn, MIX, 2.0, n=500, generator=g) == pytest.approx(0.0, abs=1e-12)
    scaled = relative_score_error(lambda x, s: 1.1 * MIX.score_fn(x, s), MIX, None, n=500, generator=g)
    assert scaled == pytest.approx(0.01, rel=1e-4)
    # on given clean points (a held-out test set) plus sigma noise, instead of fresh draws of p_sigma
    test = MIX.sample(300, torch.Generator().manual_seed(9))
    assert relative_score_error(MIX.score_fn, MIX, 2.0, generator=g, points=test) == pytest.approx(0.0, abs=1e-12)
    on_points = relative_score_error(lambda x, s: 1.1 * MIX.score_fn(x, s), MIX, 2.0, generator=g, points=test)
    assert on_points == pytest.approx(0.01, rel=1e-4)
    seen = []
    relative_score_error(lambda x, s: seen.append(x) or MIX.score_fn(x, s), MIX, None, points=test)
    assert torch.equal(seen[0], test)  # sigma None: the points themselves
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        relative_score_error(MIX.score_fn, MIX, 1.0, points=torch.zeros(4, 3))


def test_fit_is_deterministic_and_reduces_the_score_error():
    data = MIX.sample(4000, torch.Generator().manual_seed(3))

    def train() -> ScoreMLP:
        torch.manual_seed(0)
        model = ScoreMLP(hidden=32, depth=2, sigma=2.0, input_scale=3.0)
        fit(model, DSMLoss(2.0), data, steps=150, batch_size=256, lr=3e-3, generator=torch.Generator().manual_seed(4))
        return model

    torch.manual_seed(0)
    untrained = ScoreMLP(hidden=32, depth=2, sigma=2.0, input_scale=3.0)
    a, b = train(), train()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    g = torch.Generator().manual_seed(5)
    before = relative_score_error(untrained, MIX, 2.0, n=2000, generator=g)
    after = relative_score_error(a, MIX, 2.0, n=2000, generator=torch.Generator().manual_seed(5))
    assert after < 0.1 < before
    with pytest.raises(ValueError, match="steps"):
        fit(a, DSMLoss(2.0), data, steps=0, batch_size=8, lr=1e-3)


def test_config_default_quick_and_bad_files(tmp_path):
    full, quick = load_config(), load_config(quick=True)
    assert "quick" not in full and full["fixed_sigma"]["sigmas"] == [1.0, 3.0, 7.0]
    assert quick["fixed_sigma"]["steps"] < full["fixed_sigma"]["steps"]
    assert quick["noise_conditional"]["sigma_max"] == full["noise_conditional"]["sigma_max"]  # untouched keys kept
    user = tmp_path / "mine.yaml"
    user.write_text(yaml.safe_dump({"seed": 3, "sampling": {"n_samples": 50}}))
    cfg = load_config(user)
    assert cfg["seed"] == 3 and cfg["sampling"]["n_samples"] == 50 and cfg["sampling"]["sigma"] == 1.0
    user.write_text(yaml.safe_dump({"sampling": {"n_sample": 50}}))
    with pytest.raises(ConfigError, match="did you mean sampling.n_samples"):
        load_config(user)
    user.write_text(yaml.safe_dump({"sampling": {"sigma": 2.0}}))
    with pytest.raises(ConfigError, match="sampling.sigma"):
        load_config(user)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_reads_the_course_data_set_settings(tmp_path):
    cfg = load_config()
    assert cfg["n_samples"] == 5000 and cfg["train_split"] == 0.8 and "n_train" not in cfg
    user = tmp_path / "mine.yaml"
    user.write_text(yaml.safe_dump({"n_train": 2000}))
    with pytest.raises(ConfigError, match="n_train is gone.*n_samples and train_split"):
        load_config(user)
    for bad, match in (({"train_split": 1.5}, "train_split"), ({"n_samples": 3}, "at least 2"),
                       ({"n_samples": 0}, "n_samples")):
        user.write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError, match=match):
            load_config(user)
