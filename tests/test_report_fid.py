"""Q1 implementation 7's standard FID: computed with pytorch-fid where it and its Inception weights are on the
machine, else one line saying why sprite-FID stands in, with the command for the standard number."""

from __future__ import annotations

import importlib.util

import pytest

from report import q1


def test_pytorch_fids_output_is_parsed_and_a_missing_line_is_an_error():
    assert q1.parse_pytorch_fid("100%|####| 1/1\nFID:  12.3456\n") == pytest.approx(12.3456)
    with pytest.raises(ValueError, match="FID"):
        q1.parse_pytorch_fid("Traceback ...")


def test_standard_fid_needs_both_pytorch_fid_and_the_weights(monkeypatch, tmp_path):
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    monkeypatch.setenv("SPRITEDIFF_INCEPTION_WEIGHTS", str(weights))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "pytorch_fid" else real_find_spec(name, *a))
    assert q1.standard_fid_available() is None  # pytorch-fid "installed", no weights file
    weights.write_bytes(b"x")
    assert q1.standard_fid_available() == weights
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert q1.standard_fid_available() is None  # weights, no pytorch-fid


def test_without_them_the_report_says_why_and_gives_the_command():
    class Hw:
        from pathlib import Path

        pipeline = Path(__file__).resolve().parents[1] / "pretrained" / "sprites_ddpm"

    note = q1.standard_fid_note(Hw(), measured=False)
    assert "cannot download" in note and "python -m pytorch_fid fid/real fid/ddpm" in note
    assert "--generated_from pretrained/sprites_ddpm" in note
    assert "pytorch-fid's standard FID" in q1.standard_fid_note(Hw(), measured=True)
