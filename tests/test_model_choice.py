"""bench.model_choice: the written rule that picks the default model, on made-up results."""

from __future__ import annotations

import copy

import pytest
import yaml

from bench.model_choice import CONFIG, cross_check, judge, markdown

RULE = yaml.safe_load(CONFIG.read_text())


def results(fids: list[float], p: float = 0.85, r: float = 0.85, memorised: float | None = 0.05) -> dict:
    rows = []
    for (setting, nfe), fid in zip(RULE["settings"], fids, strict=True):
        row = {"id": setting, "nfe": nfe, "scores": {"sprite_fid": fid, "precision": p, "recall": r}}
        if memorised is not None:
            row["memorisation"] = {"share_below_real_quantile": {"0.05": memorised}}
        rows.append(row)
    return {"rows": rows}


SHIPPED = results([1.8, 0.23, 0.12, 0.30])


def test_better_everywhere_replaces_and_the_table_says_why():
    lines, verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.25]), SHIPPED, RULE)
    assert verdict == "replace" and reasons == []
    assert [round(x["ratio"], 3) for x in lines] == [round(a / b, 3) for a, b in zip(
        [1.7, 0.18, 0.10, 0.25], [1.8, 0.23, 0.12, 0.30], strict=True)]
    assert "Verdict: **replace**." in markdown(lines, verdict, reasons)


def test_each_rule_can_keep_the_shipped_model():
    # rule 1: lower in only two settings; or lower in three but 20% worse in the fourth
    assert judge(results([1.7, 0.18, 0.13, 0.31]), SHIPPED, RULE)[1] == "keep"
    verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.36]), SHIPPED, RULE)[1:]
    assert verdict == "keep" and any("rule 1" in x and "ddpm_standard" in x for x in reasons)
    # rule 2: recall down by more than 0.02
    verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.25], r=0.82), SHIPPED, RULE)[1:]
    assert verdict == "keep" and any(x.startswith("rule 2: recall") for x in reasons)
    # rule 3: memorises more
    verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.25], memorised=0.06), SHIPPED, RULE)[1:]
    assert verdict == "keep" and any(x.startswith("rule 3") for x in reasons)


def test_a_number_not_recorded_leaves_it_undecided_never_replace():
    shipped = copy.deepcopy(SHIPPED)
    del shipped["rows"][2]["memorisation"]
    verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.25]), shipped, RULE)[1:]
    assert verdict == "undecided" and reasons == ["not recorded: shipped memorisation at ddpm_moments"]
    assert "not recorded / 5.0%" in markdown(*judge(results([1.7, 0.18, 0.10, 0.25]), shipped, RULE))


def test_a_setting_the_candidate_has_not_run_leaves_it_undecided():
    partial = results([1.7, 0.18, 0.10, 0.25])
    partial["rows"] = partial["rows"][:3]
    lines, verdict, reasons = judge(partial, SHIPPED, RULE)
    assert verdict == "undecided" and reasons == ["not recorded: candidate ddpm_standard at 500 NFE"]
    assert "| ddpm_standard | 500 | 0.300 | not measured |" in markdown(lines, verdict, reasons)
    partial["rows"][0]["scores"]["sprite_fid"] = 1.9  # now it can win in only two of four: keep
    partial["rows"][1]["scores"]["sprite_fid"] = 0.3
    assert judge(partial, SHIPPED, RULE)[1] == "keep"


SPACES = ["sprite (v1)", "seed 1", "seed 2", "narrow", "wide", "pixels"]


def measures(fd_ratio: dict[str, list[float]], p_short: float = 0.0, r_short: float = 0.0, z: float = 0.0,
             flip: bool = False) -> dict:
    """A bench.measures results file of the pair (shipped, cand) per setting: ``fd_ratio`` candidate / shipped per
    space, the candidate's precision and recall ``*_short`` below the shipped model's everywhere, ``z`` se."""
    pairs = []
    for setting, ratios in fd_ratio.items():
        sign = -1 if flip else 1  # flip: the file lists the candidate first (a = cand)
        pairs.append({"a": "cand" if flip else "shipped", "b": "shipped" if flip else "cand", "setting": setting,
                      "fd_ratio": {sp: (1 / r) ** sign for sp, r in zip(SPACES, ratios, strict=True)},
                      **{f"{m}_diff{k}": {sp: sign * v for sp in SPACES}
                         for m, short in (("precision", p_short), ("recall", r_short))
                         for k, v in (("", short), ("_se", z))}})
    return {"pairs": pairs}


ALL_CLOSER = {s: [0.9] * 6 for s, _ in RULE["settings"]}


def test_the_addendum_reads_rules_1_and_2_across_the_spaces():
    """A sprite-FID loss that a majority of spaces does not share is no loss, and a sprite-FID win a majority
    contradicts is no win; a precision shortfall counts only in a majority of spaces and beyond two se."""
    worse_in_v1 = results([2.1, 0.18, 0.10, 0.25])  # sprite-FID 17% worse at the first setting ...
    assert judge(worse_in_v1, SHIPPED, RULE)[1] == "keep"
    for flip in (False, True):  # ... but closer in every space of the cross-check: replace
        lines, verdict, reasons = judge(worse_in_v1, SHIPPED, RULE, cross_check(measures(ALL_CLOSER, flip=flip),
                                                                                 "cand"))
        assert verdict == "replace" and reasons == [] and lines[0]["closer"] == 6 and lines[0]["further"] == 0
        assert "| 6 / 0 / 0 / 0 of 6 |" in markdown(lines, verdict, reasons)
    split = {**ALL_CLOSER, "ddim_eta0_moments": [0.9, 0.9, 1.2, 1.0, 1.2, 1.2]}  # 3 of 6 > 10% further: no loss
    assert judge(worse_in_v1, SHIPPED, RULE, cross_check(measures(split), "cand"))[1] == "replace"
    split["ddim_eta0_moments"][3] = 1.15  # 4 of 6: a loss
    verdict, reasons = judge(worse_in_v1, SHIPPED, RULE, cross_check(measures(split), "cand"))[1:]
    assert verdict == "keep" and reasons == [
        "rule 1: Frechet distance more than 1.10x the shipped model's in 4 of 6 spaces at ddim_eta0_moments"]
    tie = {**ALL_CLOSER, "ddim_eta0_moments": [0.9, 0.9, 0.9, 1.05, 1.05, 1.05]}  # half closer: not a win
    mixed = {**tie, "ddpm_moments": [0.9, 0.9, 0.9, 1.05, 1.05, 1.05]}
    assert judge(worse_in_v1, SHIPPED, RULE, cross_check(measures(tie), "cand"))[1] == "replace"  # 3 of 4 won
    verdict, reasons = judge(worse_in_v1, SHIPPED, RULE, cross_check(measures(mixed), "cand"))[1:]
    assert verdict == "keep" and reasons == ["rule 1: sprite-FID lower in 2 of 4 settings, not 3"]
    cross = measures(ALL_CLOSER, p_short=0.03, z=1.5)  # 0.03 below everywhere but within two se: no shortfall
    assert judge(worse_in_v1, SHIPPED, RULE, cross_check(cross, "cand"))[1] == "replace"
    verdict, reasons = judge(worse_in_v1, SHIPPED, RULE,
                             cross_check(measures(ALL_CLOSER, r_short=0.03, z=2.5), "cand"))[1:]
    assert verdict == "keep" and len(reasons) == 4 and reasons[0].startswith("rule 2: recall more than 0.02")


def test_the_addendum_needs_the_candidate_in_the_cross_check():
    partial = {s: r for s, r in ALL_CLOSER.items() if s != "ddpm_standard"}
    cross = cross_check(measures(partial), "cand")
    verdict, reasons = judge(results([1.7, 0.18, 0.10, 0.25]), SHIPPED, RULE, cross)[1:]
    assert verdict == "undecided"
    assert reasons == ["not recorded: candidate ddpm_standard at 500 NFE in the cross-check"]
    with pytest.raises(ValueError, match="no pair of 'shipped' and 'other'"):
        cross_check(measures(ALL_CLOSER), "other")


def guidance_results(fids: list[float], match: float = 0.99, memorised: float = 0.05) -> dict:
    """A bench.guidance results file at scales 0..len(fids)-1 (50 steps)."""
    rows = [{"scale": float(w), "vs_half_b": {"sprite_fid": f, "precision": 0.85, "recall": 0.85},
             "match": {"match": match}, "memorisation": {"share_below_real_quantile": {"0.05": memorised}}}
            for w, f in enumerate(fids)]
    return {"scales": [float(w) for w in range(len(fids))], "steps": 50, "rows": rows}


def test_the_conditional_rule_reads_guidance_scales_and_the_match_share():
    from bench.model_choice import guidance_rows

    rule = yaml.safe_load((CONFIG.parent / "model_choice_conditional.yaml").read_text())
    shipped = guidance_rows(guidance_results([0.6, 0.15, 0.06, 0.10, 0.14]))
    assert [r["id"] for r in shipped["rows"]] == ["w0", "w1", "w2", "w3", "w4"]
    better = guidance_rows(guidance_results([0.9, 0.12, 0.05, 0.09, 0.2]))  # w0 and w4 are not read
    lines, verdict, reasons = judge(better, shipped, rule)
    assert verdict == "replace" and [x["setting"] for x in lines] == ["w1", "w2", "w3"]
    assert "| w2 | 50 | 0.060 | 0.050 |" in markdown(lines, verdict, reasons) and "0.990 / 0.990 |" in markdown(
        lines, verdict, reasons)
    verdict, reasons = judge(guidance_rows(guidance_results([0.6, 0.12, 0.05, 0.09, 0.1], match=0.97)), shipped,
                             rule)[1:]
    assert verdict == "keep" and any(x.startswith("rule 2: match 0.970") for x in reasons)
    assert judge(guidance_rows(guidance_results([0.6, 0.12, 0.07, 0.11, 0.1])), shipped, rule)[1] == "keep"


def test_compare_prints_two_runs_side_by_side_without_a_verdict(tmp_path, capsys):
    """--compare A B: the same table, columns named A and B, no verdict line (two runs of one config)."""
    import json

    from bench.model_choice import main

    first, rerun = tmp_path / "first.json", tmp_path / "rerun.json"
    other_model = {"pipeline": {"model_sha256": "0" * 64}}  # not the shipped model: --compare does not ask
    first.write_text(json.dumps(results([1.8, 0.20, 0.12, 0.20]) | other_model))
    rerun.write_text(json.dumps(results([1.8, 0.25, 0.12, 0.18], memorised=0.07)))
    assert main(["--candidate", str(rerun), "--shipped", str(first), "--compare", "first run", "rerun",
                 "--out", str(tmp_path / "t.md")]) == 0
    text = (tmp_path / "t.md").read_text()
    assert "| setting | NFE | sprite-FID first run | rerun | ratio | precision first run / rerun |" in text
    assert "| ddim_eta0_moments | 50 | 0.200 | 0.250 | 1.25 |" in text and "5.0% / 7.0%" in text
    assert "Verdict" not in text and "shipped" not in text and "candidate" not in text
    assert main(["--candidate", str(rerun), "--shipped", str(first)]) == 2  # judged: it must be the shipped model
    assert "measured on another model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--candidate", str(rerun), "--compare", "a", "b"])
