"""bench.targets judges configs/bench/targets.yaml from results files: paths into the results, each kind of target,
same-prior ratios, the model-hash checks (synthetic results and models here), and the committed targets.md is what
it writes from the committed results now."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench.common import load_targets
from bench.targets import ROOT, NotRecorded, TargetsError, judge, main, resolve
from evaluation.sampling import pipeline_info


def r(id_, nfe, fid, sampler="ddim", prior=None, p=0.8, rec=0.8, gap=3.0):
    return {"id": id_, "label": id_.replace("_", " "), "nfe": nfe, "sampler": sampler,
            "kwargs": {"prior": prior} if prior else {},
            "scores": {"sprite_fid": fid, "precision": p, "recall": rec, "class_gap_points": gap}}


def model(folder: Path, weights: bytes = b"weights") -> Path:
    (folder / "unet").mkdir(parents=True)
    (folder / "scheduler").mkdir()
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(weights)
    (folder / "unet" / "config.json").write_text('{"sample_size": 16, "_diffusers_version": "0.1"}')
    (folder / "scheduler" / "scheduler_config.json").write_text('{"num_train_timesteps": 500}')
    return folder


def setup(tmp_path: Path, rows: list[dict], targets: list[dict], recorded: dict | None = None) -> dict:
    """A project root with a model and one results file recording ``recorded`` (default: the model's own info)."""
    info = pipeline_info(model(tmp_path / "m"))
    result = {"date": "2026-12-01", "pipeline": info if recorded is None else recorded, "rows": rows,
              "floor": {"sprite_fid": 0.04}}
    (tmp_path / "results.json").write_text(json.dumps(result))
    return {"results": {"res": {"file": "results.json", "model": "m", "command": "python -m bench.x"}},
            "targets": copy.deepcopy(targets)}


PRIOR_TARGETS = [
    {"id": "moments_pair", "text": "DDIM-50 over DDPM-500, moments", "results": "res", "compare": "<=",
     "threshold": 1.5, "value": "rows[id=ddim_m, nfe=50].scores.sprite_fid",
     "over": "rows[id=ddpm_m, nfe=500].scores.sprite_fid"},
    {"id": "pr", "text": "P / R", "results": "res", "compare": ">=", "threshold": 0.8, "format": ".2f",
     "value": ["rows[id=ddim_m, nfe=50].scores.precision", "rows[id=ddim_m, nfe=50].scores.recall"],
     "beside": [{"text": "memorised", "value": 'rows[id=ddim_m].memorisation["0.05"]', "format": ".1%"}]},
    {"id": "floor", "text": "DDPM-500 moments over the floor", "results": "res", "compare": "<=", "threshold": 1.5,
     "value": "rows[id=ddpm_m, nfe=500].scores.sprite_fid", "over": "floor.sprite_fid"}]


def table_rows(text: str) -> dict[str, list[str]]:
    """{target text: [measured, met, results]} of every table row."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("target", "---"):
            out[cells[0]] = cells[1:]
    return out


def test_paths_select_rows_keys_and_lists():
    data = {"rows": [{"id": "a", "nfe": 5, "s": {"0.05": 0.1}, "sampler": "stock_x"},
                     {"id": "a", "nfe": 10, "s": {"0.05": 0.2}, "sampler": "ddim"},
                     {"id": "b", "nfe": 10, "s": {"0.05": 0.3}, "sampler": "ddim"}]}
    assert resolve(data, 'rows[id=a, nfe=10].s["0.05"]') == [0.2]
    assert resolve(data, 'rows[*].s["0.05"]') == [0.1, 0.2, 0.3]
    assert resolve(data, "rows[nfe>=10, id!=b].id") == ["a"]
    assert resolve(data, "rows[sampler!^=stock].nfe") == [10, 10] and resolve(data, "rows[sampler^=stock].nfe") == [5]
    for missing in ("rows[id=c].nfe", "rows[id=a].t", "nothing"):
        with pytest.raises(NotRecorded):
            resolve(data, missing)


def test_ratios_compare_at_the_same_prior_and_each_number_must_meet(tmp_path):
    rows = [r("ddpm_s", 500, 0.07, "ddpm"), r("ddpm_m", 500, 0.05, "ddpm", "moments"),
            r("ddim_s", 50, 0.25), {**r("ddim_m", 50, 0.07, prior="moments", rec=0.79), "memorisation": {"0.05": 0.12}}]
    text = judge(setup(tmp_path, rows, PRIOR_TARGETS), tmp_path)
    got = table_rows(text)
    assert got["DDIM-50 over DDPM-500, moments <= 1.5x"] == ["1.40x (0.070 against 0.050)", "yes", "res"]
    assert got["P / R >= 0.8"] == ["0.80 / 0.79; memorised 12.0%", "no", "res"]  # recall 0.79 misses
    assert got["DDPM-500 moments over the floor <= 1.5x"][1] == "yes"  # 0.05 <= 1.5 * 0.04
    rows[0]["scores"]["sprite_fid"] = 0.01  # DDPM from N(0, I) is not the moments pair's reference
    assert table_rows(judge(setup(tmp_path / "b", rows, PRIOR_TARGETS), tmp_path / "b"))[
        "DDIM-50 over DDPM-500, moments <= 1.5x"][1] == "yes"
    rows[1]["scores"]["sprite_fid"] = 0.04
    assert table_rows(judge(setup(tmp_path / "c", rows, PRIOR_TARGETS), tmp_path / "c"))[
        "DDIM-50 over DDPM-500, moments <= 1.5x"][0].startswith("1.75x")


def test_frontier_kinds_best_pairs_per_nfe_and_smallest_meeting(tmp_path):
    rows = [r("ddpm_standard", 500, 0.10, "ddpm"), r("ddpm_moments", 500, 0.08, "ddpm", "moments"),
            r("ours_m", 5, 0.20, "dpmpp_2m", "moments"), r("ours_m", 10, 0.09, "dpmpp_2m", "moments"),
            r("ours_s", 10, 0.11, "dpmpp_2m"),
            r("stock_m", 5, 0.19, "stock_dpmpp_2m", "moments"), r("stock_m", 10, 0.12, "stock_dpmpp_2m", "moments"),
            {"id": "w1", "scale": 1.0, "match": {"match": 0.85}}, {"id": "w2", "scale": 2.0, "match": {"match": 0.99}},
            {"id": "w4", "scale": 4.0, "match": {"match": 0.999}}]
    targets = [
        {"id": "best", "kind": "best", "text": "best at <= 10", "results": "res", "compare": "<=", "threshold": 1.2,
         "rows": "rows[sampler!^=stock, sampler!=ddpm, nfe<=10]", "value": "scores.sprite_fid",
         "over": "rows[id=ddpm_{prior}, nfe=500].scores.sprite_fid"},
        {"id": "pairs", "kind": "pairs", "text": "ours vs stock", "results": "res", "value": "scores.sprite_fid",
         "format": ".4f", "pairs": [["ours_m", "stock_m"]]},
        {"id": "per_nfe", "kind": "best_per_nfe", "text": "best per NFE", "results": "res",
         "rows": "rows[sampler!^=stock, sampler!=ddpm]", "against": "rows[sampler^=stock]",
         "value": "scores.sprite_fid", "format": ".4f"},
        {"id": "w", "kind": "smallest_meeting", "text": "class match", "results": "res", "compare": ">=",
         "threshold": 0.8, "rows": "rows[scale>0, scale<=3]", "value": "match.match", "by": "scale",
         "by_text": "w =", "format": ".2f"}]
    got = table_rows(judge(setup(tmp_path, rows, targets), tmp_path))
    # each against DDPM-500 from its own prior: 0.11 / 0.10 (standard) = 1.10x beats 0.09 / 0.08 (moments) = 1.12x
    assert got["best at <= 10 <= 1.2x"] == ["1.10x: ours s, 10 NFE, 0.110 against 0.100", "yes", "res"]
    assert got["ours vs stock"] == ["ours m at 5: 0.2000 > 0.1900", "no", "res"]
    assert got["best per NFE"] == ["5 NFE: 0.2000 > 0.1900", "no", "res"]
    assert got["class match >= 0.8"] == ["0.85 at w = 1", "yes", "res"]  # the smallest w that meets it


def test_over_results_reads_the_reference_from_another_results_file(tmp_path):
    """A ratio whose reference row lives in another results file of the same model (``over_results``)."""
    cfg = setup(tmp_path, [r("fast_m", 5, 0.30, "dpmpp_2m", "moments")], [
        {"id": "fast", "kind": "best", "text": "best at 5", "results": "res", "over_results": "ref",
         "compare": "<=", "threshold": 2, "rows": "rows[nfe=5]", "value": "scores.sprite_fid",
         "over": "rows[id=ddpm_{prior}, nfe=500].scores.sprite_fid"},
        {"id": "one", "text": "one at 5", "results": "res", "over_results": "ref", "compare": "<=", "threshold": 2,
         "value": "rows[id=fast_m].scores.sprite_fid", "over": "rows[id=ddpm_moments].scores.sprite_fid"}])
    ref = json.loads((tmp_path / "results.json").read_text())
    ref["rows"] = [r("ddpm_moments", 500, 0.12, "ddpm", "moments")]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    cfg["results"]["ref"] = {**cfg["results"]["res"], "file": "ref.json"}
    got = table_rows(judge(cfg, tmp_path))
    assert got["best at 5 <= 2x"] == ["2.50x: fast m, 5 NFE, 0.300 against 0.120", "no", "res"]
    assert got["one at 5 <= 2x"] == ["2.50x (0.300 against 0.120)", "no", "res"]
    cfg["targets"][0]["over_results"] = "nowhere"
    with pytest.raises(TargetsError, match="over_results 'nowhere'"):
        judge(cfg, tmp_path)


def test_model_hash_checks_stop_with_one_line(tmp_path, capsys):
    rows = [r("ddpm_m", 500, 0.05, "ddpm", "moments"), r("ddim_m", 50, 0.07, prior="moments")]
    cfg = setup(tmp_path, rows, PRIOR_TARGETS[:1])
    assert "model hash " + pipeline_info(tmp_path / "m")["model_sha256"][:12] + ", the shipped one" in judge(
        cfg, tmp_path)
    legacy = {"path": "m", "unet_sha256_16": pipeline_info(tmp_path / "m")["unet_sha256_16"]}
    text = judge(setup(tmp_path / "l", rows, PRIOR_TARGETS[:1], legacy), tmp_path / "l")
    assert "model hash not recorded (its UNet weights hash" in text and "regenerate with `python -m bench.x`" in text
    other = {**pipeline_info(tmp_path / "m"), "model_sha256": "0" * 64}
    with pytest.raises(TargetsError, match="measured on another model .*run `python -m bench.x`"):
        judge(setup(tmp_path / "o", rows, PRIOR_TARGETS[:1], other), tmp_path / "o")
    with pytest.raises(TargetsError, match="measured on other UNet weights"):
        judge(setup(tmp_path / "u", rows, PRIOR_TARGETS[:1], {"unet_sha256_16": "0" * 16}), tmp_path / "u")
    (tmp_path / "results.json").unlink()
    with pytest.raises(TargetsError, match=r"results.json \(res\) is missing: run `python -m bench.x`"):
        judge(cfg, tmp_path)
    cfg["targets"][0]["value"] = "rows[id=nope, nfe=50].scores.sprite_fid"
    (tmp_path / "results.json").write_text(json.dumps({"pipeline": pipeline_info(tmp_path / "m"), "rows": rows}))
    with pytest.raises(TargetsError, match="lacks rows\\[id=nope"):
        judge(cfg, tmp_path)

    bad = tmp_path / "bad.yaml"  # the command: one line, exit 2
    bad.write_text(json.dumps({**cfg, "results": {"res": {**cfg["results"]["res"], "file": "gone.json"}}}))
    assert main(["--config", str(bad), "--out", str(tmp_path / "t.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gone.json (res) is missing") and err.count("\n") == 1


def test_legacy_frontier_rows_get_their_setting_ids_from_the_config(tmp_path):
    config = tmp_path / "f.yaml"
    config.write_text(json.dumps({"pipeline": "m", "num_images": 2, "batch_size": 2, "seed": 0, "settings": [
        {"id": "ddim_m", "label": "DDIM, moments", "sampler": "ddim", "nfe": [50], "eta": 0.0, "prior": "moments"},
        {"id": "ddpm_m", "label": "DDPM, moments", "sampler": "ddpm", "nfe": [500], "prior": "moments"}]}))
    rows = [{**r("x", 500, 0.05, "ddpm"), "kwargs": {"prior": "moments"}},
            {**r("y", 50, 0.07), "kwargs": {"eta": 0.0, "prior": "moments"}}]
    for row in rows:
        del row["id"]  # written before rows carried ids
    cfg = setup(tmp_path, rows, PRIOR_TARGETS[:1])
    cfg["results"]["res"]["config"] = "f.yaml"
    assert table_rows(judge(cfg, tmp_path))["DDIM-50 over DDPM-500, moments <= 1.5x"][0].startswith("1.40x")


def test_committed_targets_md_is_what_bench_targets_writes_now():
    committed = (ROOT / "docs" / "figures" / "targets.md").read_text()
    assert judge(load_targets()) == committed, "run python -m bench.targets (and python -m bench.doc_tables)"


def test_a_reference_model_that_is_not_shipped_is_pinned_by_its_hash(tmp_path):
    """A results file of another model (the first one) is read by its pinned model_sha256, no folder needed; a
    file recording another hash stops with one line naming the command."""
    rows = [r("ddpm_s", 500, 0.30, "ddpm")]
    cfg = setup(tmp_path, rows, [{"id": "vs_first", "text": "DDPM-500 over the first model's", "results": "res",
                                  "value": "rows[id=ddpm_s, nfe=500].scores.sprite_fid", "over_results": "first",
                                  "over": "rows[id=ddpm_s, nfe=500].scores.sprite_fid", "compare": "<=",
                                  "threshold": 1, "unit": "x"}])
    pinned = "ab" * 32
    (tmp_path / "first.json").write_text(json.dumps({"date": "2026-12-06", "pipeline": {"model_sha256": pinned},
                                                     "rows": [r("ddpm_s", 500, 0.15, "ddpm")]}))
    cfg["results"]["first"] = {"file": "first.json", "model_sha256": pinned, "command": "python -m bench.y"}
    text = judge(cfg, tmp_path)
    assert table_rows(text)["DDPM-500 over the first model's <= 1x"][:2] == ["2.00x (0.300 against 0.150)", "no"]
    assert "judged for a reference model: model hash abababababab, the pinned one" in text
    cfg["results"]["first"]["model_sha256"] = "cd" * 32
    with pytest.raises(TargetsError, match="not the pinned cdcdcdcdcdcd: run `python -m bench.y`"):
        judge(cfg, tmp_path)
