"""experiments.diagnosis: the ideal denoiser of a finite data set (Tweedie's formula) and the per-timestep table."""

from types import SimpleNamespace

import numpy as np
import torch

from experiments.diagnosis import eps_mse_table, ideal_eps, markdown


def test_ideal_eps_of_one_point_is_exact_and_of_two_picks_the_near_one():
    x0 = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    ab, eps = 0.3, torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    x_t = ab**0.5 * x0 + (1 - ab) ** 0.5 * eps
    torch.testing.assert_close(ideal_eps(x_t, x0.flatten(1).double(), ab).float(), eps, atol=1e-5, rtol=0)
    far = torch.cat([x0, x0 + 50]).flatten(1).double()
    torch.testing.assert_close(ideal_eps(x_t, far, ab).float(), eps, atol=1e-5, rtol=0)


def test_the_ideal_beats_any_other_predictor_and_the_table_shows_the_excess():
    g = torch.Generator().manual_seed(2)
    images = torch.rand(40, 3, 4, 4, generator=g) * 2 - 1
    ab = np.linspace(0.999, 0.01, 10)

    def zero(x, t):
        return SimpleNamespace(sample=torch.zeros_like(x))

    rows = eps_mse_table({"zero": zero}, images, ab, timesteps=(0, 5, 9), batch=16)
    assert all(r["ideal"] < r["zero"] for r in rows)
    assert abs(rows[-1]["zero"] - 1.0) < 0.1  # predicting 0 costs E[eps^2] = 1
    assert "| 9 | 0.0100 |" in markdown(rows, ["zero"])


def test_gap_table_orders_checkpoints_and_takes_the_ratio(tmp_path):
    import json

    from experiments.diagnosis import gap_table

    def write(name, step, fids):
        rows = [{"label": k, "nfe": 50, "scores": {"sprite_fid": v}} for k, v in fids.items()]
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"pipeline": {"training_steps": step}, "config": {"num_images": 300}, "rows": rows}))

    write("gap_final", 5500, {"DDIM eta 0, standard": 1.0, "DDIM eta 0, moments": 0.2, "DDIM eta 1, standard": 0.5})
    write("gap_final_raw", 5500, {"DDIM eta 0, standard": 1.2, "DDIM eta 0, moments": 0.2, "DDIM eta 1, standard": 0.6})
    write("gap_1000", 1000, {"DDIM eta 0, standard": 3.0, "DDIM eta 0, moments": 1.0, "DDIM eta 1, standard": 0.6})
    lines = gap_table(tmp_path).splitlines()
    assert lines[2].startswith("| 1,000 | EMA | 3.000") and lines[2].endswith("| 5.00 | 300 |")
    assert lines[3].startswith("| 5,500 | EMA |") and "| 2.00 |" in lines[3] and lines[4].startswith("| 5,500 | raw |")
