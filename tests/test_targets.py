"""bench.targets: each plain check on synthetic rows (same-prior ratios, pairs, best per NFE), the model-hash checks
of a results file, a changed number flipping its row, and the committed targets.md is what it writes now."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import bench.targets as targets
from bench.targets import (
    DEFAULT,
    DEFAULT_RESULTS,
    RESULTS,
    ROOT,
    Results,
    TargetsError,
    best_per_nfe,
    best_ratio,
    judge,
    load_results,
    main,
    no_worse,
)
from evaluation.sampling import pipeline_info


def r(id_, nfe, fid, sampler="ddim", prior=None):
    return {"id": id_, "label": id_.replace("_", " "), "nfe": nfe, "sampler": sampler,
            "kwargs": {"prior": prior} if prior else {}, "scores": {"sprite_fid": fid}}


def table_rows(text: str) -> dict[str, list[str]]:
    """{target text: [measured, met, results]} of every table row."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("target", "---"):
            out[cells[0]] = cells[1:]
    return out


def test_best_ratio_divides_each_row_by_ddpm_500_from_its_own_prior():
    data = {"rows": [r("ddpm_standard", 500, 0.10, "ddpm"), r("ddpm_moments", 500, 0.08, "ddpm", "moments"),
                     r("ours_m", 10, 0.09, "dpmpp_2m", "moments"), r("ours_s", 10, 0.11, "dpmpp_2m")]}
    rows = targets.ours(data, lambda n: n <= 10)
    assert [x["id"] for x in rows] == ["ours_m", "ours_s"]  # DDPM rows are not ours
    # 0.11 / 0.10 (standard) = 1.10x beats 0.09 / 0.08 (moments) = 1.125x
    assert best_ratio(rows, data, 1.2) == ("1.10x: ours s, 10 NFE, 0.110 against 0.100", True)
    assert best_ratio(rows, data, 1.05)[1] is False and best_ratio(rows, data, None)[1] is None


def test_pairs_and_best_per_nfe_name_every_row_behind():
    data = {"rows": [r("ours_m", 5, 0.20, "dpmpp_2m", "moments"), r("ours_m", 10, 0.09, "dpmpp_2m", "moments"),
                     r("stock_m", 5, 0.19, "stock_dpmpp_2m", "moments"),
                     r("stock_m", 10, 0.12, "stock_dpmpp_2m", "moments")]}
    assert no_worse(data, [("ours_m", "stock_m")]) == ("ours m at 5: 0.2000 > 0.1900", False)
    assert best_per_nfe(data) == ("5 NFE: 0.2000 > 0.1900", False)
    data["rows"][0]["scores"]["sprite_fid"] = 0.18
    assert no_worse(data, [("ours_m", "stock_m")]) == ("no worse in all 2 comparisons", True)
    assert best_per_nfe(data) == ("yes at every NFE both ran", True)
    with pytest.raises(KeyError):
        no_worse(data, [("ours_m", "nothing")])


def model(folder: Path) -> Path:
    (folder / "unet").mkdir(parents=True)
    (folder / "scheduler").mkdir()
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    (folder / "unet" / "config.json").write_text('{"sample_size": 16, "_diffusers_version": "0.1"}')
    (folder / "scheduler" / "scheduler_config.json").write_text('{"num_train_timesteps": 500}')
    return folder


def test_a_results_file_of_another_model_stops_with_the_command(tmp_path):
    info = pipeline_info(model(tmp_path / "m"))
    spec = Results("res.json", "python -m bench.x", model="m")

    def load(recorded):
        (tmp_path / "res.json").write_text(json.dumps({"pipeline": recorded, "rows": []}))
        return load_results("res", spec, tmp_path)

    assert load(info)[1:] == (f"model hash {info['model_sha256'][:12]}, the shipped one", True)
    legacy = load({"unet_sha256_16": info["unet_sha256_16"]})
    assert legacy[1].startswith("model hash not recorded (its UNet weights hash") and legacy[2] is False
    with pytest.raises(TargetsError, match="measured on another model .*run `python -m bench.x`"):
        load({**info, "model_sha256": "0" * 64})
    with pytest.raises(TargetsError, match="UNet weights sha256 0000"):
        load({"unet_sha256_16": "0" * 16})
    pinned = replace(spec, model_sha256="ab" * 32)
    (tmp_path / "res.json").write_text(json.dumps({"pipeline": {"model_sha256": "ab" * 32}}))
    assert load_results("res", pinned, tmp_path)[1] == "model hash abababababab, the pinned one"
    with pytest.raises(TargetsError, match="not the pinned cdcdcdcdcdcd: run `python -m bench.x`"):
        load_results("res", replace(spec, model_sha256="cd" * 32), tmp_path)
    (tmp_path / "res.json").unlink()
    with pytest.raises(TargetsError, match=r"res.json \(res\) is missing: run `python -m bench.x`"):
        load_results("res", spec, tmp_path)


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The committed results files, configs and shipped models' folders under a new root."""
    for spec in RESULTS.values():
        for rel in filter(None, (spec.file, spec.config)):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, tmp_path / rel)
        if not spec.model_sha256 and not (tmp_path / spec.model).exists():
            (tmp_path / spec.model).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / spec.model).symlink_to(ROOT / spec.model)
    (tmp_path / DEFAULT_RESULTS).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / DEFAULT_RESULTS, tmp_path / DEFAULT_RESULTS)
    (tmp_path / DEFAULT).symlink_to(ROOT / DEFAULT)
    return tmp_path


def test_a_changed_number_flips_its_row_and_a_missing_one_is_one_line(project_copy, monkeypatch, capsys):
    row = "--preset fast against --preset quality, wall time side by side >= 40x"
    assert table_rows(judge(project_copy))[row][1:] == ["yes", "presets"]
    presets = project_copy / RESULTS["presets"].file
    data = json.loads(presets.read_text())
    presets.write_text(json.dumps({**data, "speedup": 39.5}))
    assert table_rows(judge(project_copy))[row] == ["39.5x", "no", "presets"]
    del data["speedup"]
    presets.write_text(json.dumps(data))
    with pytest.raises(TargetsError, match="lacks 'speedup'"):
        judge(project_copy)
    monkeypatch.setattr(targets, "ROOT", project_copy)
    presets.unlink()
    assert main(["--out", str(project_copy / "t.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {RESULTS['presets'].file} (presets) is missing") and err.count("\n") == 1


def test_committed_targets_md_is_what_bench_targets_writes_now():
    committed = (ROOT / "docs" / "figures" / "targets.md").read_text()
    assert judge() == committed, "run python -m bench.targets (and python -m report.doc_tables)"


def test_the_default_models_results_must_be_of_its_unet(project_copy):
    assert "whose UNet weights hash, 80533dc65866d7df, is the default model's" in judge(project_copy)
    results = project_copy / DEFAULT_RESULTS
    data = json.loads(results.read_text())
    results.write_text(json.dumps({**data, "pipeline": {**data["pipeline"], "unet_sha256_16": "0" * 16}}))
    with pytest.raises(TargetsError, match=f"UNet weights 0000000000000000, not {DEFAULT}'s 80533dc65866d7df"):
        judge(project_copy)
