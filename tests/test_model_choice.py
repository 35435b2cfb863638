"""bench.model_choice: the written rule that picks the default model, on made-up results."""

from __future__ import annotations

import copy

import yaml

from bench.model_choice import CONFIG, judge, markdown

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
