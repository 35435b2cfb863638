"""``python -m score_toy --quick`` end to end, and the guard against overwriting another run."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from score_toy import experiments
from score_toy.__main__ import main
from score_toy.config import load_config
from score_toy.experiments import OutputDirError, claim_output_dir, exact_score_fn
from score_toy.mixture import GaussianMixture2D, course_samples
from score_toy.plots import panels, save_figure
from score_toy.tables import TABLES, resolve_figure_refs

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_numbered_captioned_figures_and_finite_metrics(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "score_toy", "--quick", "--student_id", "42", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "annealed Langevin" in proc.stdout and "Song & Ermon" in proc.stdout  # the printed table

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["student_id"] == "42"
    figures = metrics["figures"]
    assert [f["number"] for f in figures] == list(range(1, 7))
    labels = [f["label"] for f in figures]
    assert len(set(labels)) == 6 and all(label.startswith("toy-") for label in labels)
    for f in figures:
        png = out / f["file"]
        assert f["file"].startswith(f"fig{f['number']}_") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(f["caption"]) > 40
        # captions refer to other figures by label only, never by a number a document would contradict
        assert not re.search(r"(?<!\(2019\), )\bfig(ure|\.)?\s*\d", f["caption"], re.I), f["caption"]  # a paper's
        assert set(re.findall(r"@fig:([\w-]+)", f["caption"])) <= set(labels)
    assert json.loads((out / "figures.json").read_text()) == figures
    captions = (out / "captions.md").read_text()
    assert "## Figure 6" in captions and "@fig:" not in captions
    assert "compare with the single-level models of Figure 2" in captions  # the noise-conditional figure's reference
    for name, label in TABLES.items():  # the Markdown tables documents quote
        assert label.startswith("toy-") and (out / name).read_text().startswith("| ")
    samplers = (out / "table_samplers.md").read_text().splitlines()
    assert len(samplers) == 2 + len(metrics["samplers"])
    assert f"{metrics['samplers'][-1]['energy_distance_p']:.3f}" in samplers[-1]

    # trained on the course data set's training split, held-out numbers on its test split
    assert metrics["data"] == {**metrics["data"], "n_samples": 5000, "train_split": 0.8, "n_train": 4000,
                               "n_test": 1000}
    rows = metrics["samplers"]
    assert {r["sampler"] for r in rows} == {"i.i.d. draws", "course data", "deterministic ascent", "Langevin",
                                            "annealed Langevin"}
    assert any("exact" in r["score"] for r in rows if r["sampler"] == "Langevin")
    assert any("learned" in r["score"] for r in rows if r["sampler"] == "Langevin")
    for r in rows:
        for key in ("weight_tv", "energy_distance_p", "energy_distance_p_sigma", "energy_distance_test", "mean_log_p"):
            assert math.isfinite(r[key]), (r, key)
        assert len(r["weights"]) == 2 and sum(r["weights"]) == pytest.approx(1.0)
    for m in metrics["models"]:
        assert math.isfinite(m["train_loss"]) and math.isfinite(m["test_loss"])
        for key in ("relative_score_error", "relative_score_error_test"):
            errs = m[key]
            assert all(math.isfinite(v) for v in (errs.values() if isinstance(errs, dict) else [errs]))
    # metrics.json says which set every number uses
    sets = metrics["evaluation_sets"]
    assert "test split" in sets["models.test_loss"] and "fresh" in sets["samplers.energy_distance_p"]
    assert "test split" in sets["samplers.energy_distance_test"] and "fresh" in sets["models.relative_score_error"]
    se = metrics["song_ermon"]
    assert se["true_weights"] == [0.8, 0.2] and set(se["weights"]) == {"iid", "langevin", "annealed"}
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_models_train_on_the_course_training_split(tmp_path, monkeypatch):
    """The first model's training data is course_samples(student)'s training split (float32), not fresh draws."""
    seen = []

    class Stop(Exception):
        pass

    def fake_fit(model, loss, data, **kwargs):
        seen.append(data)
        raise Stop

    monkeypatch.setattr(experiments, "fit", fake_fit)
    cfg = load_config(quick=True)
    with pytest.raises(Stop):
        experiments.run(cfg, "810101504", tmp_path / "run", log=lambda _: None)
    train, _ = course_samples(810101504, cfg["n_samples"], cfg["train_split"])
    assert seen[0].dtype == torch.float32 and torch.equal(seen[0], torch.from_numpy(train).float())


def test_output_dir_holding_another_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    claim_output_dir(out, {"student_id": "1", "quick": True})
    claim_output_dir(out, {"student_id": "1", "quick": True})  # the same run again is fine
    with pytest.raises(OutputDirError, match="different run"):
        claim_output_dir(out, {"student_id": "2", "quick": True})
    claim_output_dir(out, {"student_id": "2", "quick": True}, force=True)
    assert json.loads((out / "run.json").read_text())["student_id"] == "2"

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["--quick", "--out", str(other)]) == 2
    assert "not empty" in capsys.readouterr().err
    for bad in ("-5", str(2**32), "12a"):
        assert main(["--quick", "--student_id", bad, "--out", str(tmp_path / "new")]) == 2
        assert "student_id must be a whole number" in capsys.readouterr().err
        assert not (tmp_path / "new").exists()


def test_figures_hold_no_caption_and_references_resolve_by_label(tmp_path):
    """A saved PNG is the panels alone (its pixel size is the figure's: no caption strip added), and captions.md
    turns @fig:label into the run's own numbers; an unknown label is an error, not a wrong number."""
    fig, _ = panels(1, 2, size=2.0)
    from PIL import Image

    assert Image.open(save_figure(fig, tmp_path / "f.png", dpi=50)).size == (200, 100)
    figures = [{"number": 1, "label": "toy-a"}, {"number": 2, "label": "toy-b"}]
    assert resolve_figure_refs("see @fig:toy-b and @fig:toy-a.", figures) == "see Figure 2 and Figure 1."
    with pytest.raises(ValueError, match="@fig:toy-c"):
        resolve_figure_refs("@fig:toy-c", figures)


def test_exact_score_fn_takes_one_sigma_per_point():
    """The exact score used as a model under NCSMLoss: per-point sigmas give each point its own p_sigma's score."""
    mixture = GaussianMixture2D.from_student_id(12345678)
    x = torch.randn(6, 2, dtype=torch.float64) * 4
    sigma = torch.tensor([1.0, 3.0, 1.0, 20.0, 3.0, 7.0], dtype=torch.float64)
    got = exact_score_fn(mixture)(x, sigma)
    want = torch.stack([mixture.perturbed(float(s)).score(x[i:i + 1])[0] for i, s in enumerate(sigma)])
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert torch.equal(exact_score_fn(mixture)(x, None), mixture.score(x))
