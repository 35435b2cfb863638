"""The choice of the default model (issue 21): a candidate's results against the shipped model's, by the rule of
configs/bench/model_choice.yaml (the prose is in docs/training.md, "How the default model is chosen").

    python -m bench.model_choice --candidate docs/figures/training/candidates/sprites_eps/eval/results.json \
        [--shipped FILE] [--measures FILE --name NAME] [--out FILE.md] [--compare NAME_A NAME_B]

Both results files come from ``bench.sampler_frontier`` on the same settings, seed and N
(configs/bench/candidates.yaml for a candidate; the shipped model's rows may come from configs/bench/priors.yaml,
which holds the same four). Prints a table of the four settings and the verdict: "replace", "keep", or
"undecided" when a number the rule reads is not recorded (with what to run). ``--compare NAME_A NAME_B`` prints the
table alone with its columns so named: two runs of one config, where no verdict applies.

A ``bench.guidance`` results file (the class-conditional model, configs/bench/model_choice_conditional.yaml) is
read as one setting per guidance scale, id ``w<scale>`` (:func:`guidance_rows`), with the class match share as one
more rule-2 number (``match_drop_at_most``).

With ``--measures`` (a ``bench.measures`` results file holding the candidate, ``--name``, and the shipped model on
the same settings) rules 1 and 2 are read as the rule's addendum says: in every feature space of the cross-check.
A setting is won when the Frechet distance is lower in more than half the spaces and lost when it is more than
``fid_ratio_at_most`` higher in more than half; a precision or recall shortfall counts when it is more than
``precision_recall_drop_at_most`` in more than half the spaces and more than ``se_at_least`` standard errors of
the difference in ``se_space``. Rule 3 (memorisation, pixel space) always reads the frontier results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from bench.targets import ROOT, TargetsError, load_results
from pipelines.atomic import write_text_atomic

CONFIG = ROOT / "configs" / "bench" / "model_choice.yaml"


def row_of(results: dict, setting: str, nfe: int) -> dict[str, Any] | None:
    return next((r for r in results["rows"] if r.get("id") == setting and r.get("nfe") == nfe), None)


def guidance_rows(results: dict) -> dict:
    """``results`` with frontier-like rows when it is a ``bench.guidance`` file: per scale w, id ``w<w>``, the
    sampling steps as NFE, its scores against half B, memorisation and class match share; else unchanged."""
    if "scales" not in results:
        return results
    rows = [{"id": f"w{r['scale']:g}", "nfe": results["steps"], "scores": r["vs_half_b"],
             "memorisation": r.get("memorisation"), "match": r["match"]["match"]} for r in results["rows"]]
    return {**results, "rows": rows}


def memorised(row: dict, quantile: str) -> float | None:
    """The memorisation share of a frontier row, or None when the row does not record it."""
    share = (row.get("memorisation") or {}).get("share_below_real_quantile") or {}
    return share.get(quantile)


def cross_check(measures: dict, name: str, shipped: str = "shipped") -> dict[str, dict]:
    """Per setting id, the ``bench.measures`` pair of the shipped model and the candidate ``name``, turned to read
    from the candidate's side: ``fd_ratio`` candidate / shipped, ``*_short`` shipped minus candidate (a
    shortfall when positive) and ``*_short_se`` that shortfall in standard errors, each per feature space."""
    out = {}
    for p in measures["pairs"]:
        if {p["a"], p["b"]} != {shipped, name}:
            continue
        if "recall_diff_se" not in p:
            raise ValueError("the cross-check predates recall's standard error: run its bench.measures config again")
        sign = 1 if p["a"] == shipped else -1
        out[p["setting"]] = {"fd_ratio": {sp: v ** -sign for sp, v in p["fd_ratio"].items()},
                             **{f"{m}_short{k}": {sp: sign * v for sp, v in p[f"{m}_diff{k}"].items()}
                                for m in ("precision", "recall") for k in ("", "_se")}}
    if not out:
        raise ValueError(f"the cross-check has no pair of {shipped!r} and {name!r}: add the candidate's sets to "
                         "its bench.measures config and run it again")
    return out


def judge(candidate: dict, shipped: dict, rule: dict,
          cross: dict[str, dict] | None = None) -> tuple[list[dict], str, list[str]]:
    """(one line per setting, the verdict, the reasons) of ``candidate`` against ``shipped`` by ``rule``; with
    ``cross`` (:func:`cross_check`) rules 1 and 2 are read across its feature spaces (the addendum)."""
    lines, reasons, unknown, wins = [], [], [], 0
    q = str(rule["memorisation_quantile"])
    for setting, nfe in rule["settings"]:
        c, s = row_of(candidate, setting, nfe), row_of(shipped, setting, nfe)
        if s is None:
            raise ValueError(f"{setting} at {nfe} NFE is missing from the shipped model's results: run "
                             "bench.sampler_frontier --config configs/bench/candidates.yaml on it")
        pair = None if cross is None else cross.get(setting)
        if c is None or (cross is not None and pair is None):  # not measured yet: the rule cannot replace
            unknown.append(f"candidate {setting} at {nfe} NFE" + ("" if c is None else " in the cross-check"))
            lines.append({"setting": setting, "nfe": nfe, "fid": (s["scores"]["sprite_fid"], None)})
            continue
        cs, ss = c["scores"], s["scores"]
        ratio = cs["sprite_fid"] / ss["sprite_fid"]
        line = {"setting": setting, "nfe": nfe, "fid": (ss["sprite_fid"], cs["sprite_fid"]), "ratio": ratio,
                "precision": (ss["precision"], cs["precision"]), "recall": (ss["recall"], cs["recall"]),
                "memorised": (memorised(s, q), memorised(c, q))}
        if "match_drop_at_most" in rule:  # the conditional rule: the class match share is a rule-2 number
            line["match"] = (s["match"], c["match"])
            if c["match"] < s["match"] - rule["match_drop_at_most"]:
                reasons.append(f"rule 2: match {c['match']:.3f} against {s['match']:.3f} at {setting}")
        lines.append(line)
        if pair is None:
            wins += ratio < 1
            if ratio > rule["fid_ratio_at_most"]:
                reasons.append(f"rule 1: sprite-FID {ratio:.2f}x the shipped model's at {setting}")
            for key in ("precision", "recall"):
                if line[key][1] < line[key][0] - rule["precision_recall_drop_at_most"]:
                    reasons.append(f"rule 2: {key} {line[key][1]:.2f} against {line[key][0]:.2f} at {setting}")
        else:
            reasons += read_across(pair, line, setting, rule)
            wins += line["closer"] > line["spaces"] / 2
        if None in line["memorised"]:
            unknown.append(f"{'shipped' if line['memorised'][0] is None else 'candidate'} memorisation at {setting}")
        elif line["memorised"][1] > line["memorised"][0]:
            reasons.append(f"rule 3: memorised {line['memorised'][1]:.1%} against {line['memorised'][0]:.1%} "
                           f"at {setting}")
    if wins + sum(x.get("ratio") is None for x in lines) < rule["fid_lower_in_at_least"]:
        reasons.insert(0, f"rule 1: sprite-FID lower in {wins} of {len(lines)} settings, not "
                          f"{rule['fid_lower_in_at_least']}")
    verdict = "keep" if reasons else ("undecided" if unknown else "replace")
    return lines, verdict, reasons + [f"not recorded: {u}" for u in unknown]


def read_across(pair: dict, line: dict, setting: str, rule: dict) -> list[str]:
    """Rules 1 (the loss side) and 2 read across the cross-check's spaces (the addendum); fills ``line``'s counts."""
    add, ratios = rule["addendum"], pair["fd_ratio"]
    n = line["spaces"] = len(ratios)
    line["closer"] = sum(r < 1 for r in ratios.values())
    line["further"] = sum(r > rule["fid_ratio_at_most"] for r in ratios.values())
    out = []
    if line["further"] > n / 2:
        out.append(f"rule 1: Frechet distance more than {rule['fid_ratio_at_most']:.2f}x the shipped model's in "
                   f"{line['further']} of {n} spaces at {setting}")
    for key in ("precision", "recall"):
        short = sum(v > rule["precision_recall_drop_at_most"] for v in pair[f"{key}_short"].values())
        z = pair[f"{key}_short_se"][add["se_space"]]
        line[f"{key}_short"] = short
        if short > n / 2 and z > add["se_at_least"]:
            out.append(f"rule 2: {key} more than {rule['precision_recall_drop_at_most']} below the shipped "
                       f"model's in {short} of {n} spaces ({z:.1f} se in {add['se_space']}) at {setting}")
    return out


def markdown(lines: list[dict], verdict: str | None, reasons: list[str],
             names: tuple[str, str] = ("shipped", "candidate")) -> str:
    """The table of :func:`judge`'s lines with the verdict below it; ``verdict`` None: the table only (two runs
    compared, nothing chosen), its columns headed by ``names``."""
    a, b = names

    def pct(v: float | None) -> str:
        return "not recorded" if v is None else f"{v:.1%}"

    across = any("spaces" in x for x in lines)
    match = any("match" in x for x in lines)
    out = [f"| setting | NFE | sprite-FID {a} | {b} | ratio | precision {a} / {b} | "
           f"recall {a} / {b} | memorised {a} / {b} |"
           + (" spaces closer / >10% further / P short / R short |" if across else "")
           + (" match shipped / candidate |" if match else ""),
           "| --- | ---: |" + " ---: |" * (6 + across + match)]
    for x in lines:
        if x["fid"][1] is None:
            out.append(f"| {x['setting']} | {x['nfe']} | {x['fid'][0]:.3f} | not measured | | | | |"
                       + (" |" if across else "") + (" |" if match else ""))
            continue
        out.append(f"| {x['setting']} | {x['nfe']} | {x['fid'][0]:.3f} | {x['fid'][1]:.3f} | {x['ratio']:.2f} | "
                   f"{x['precision'][0]:.2f} / {x['precision'][1]:.2f} | {x['recall'][0]:.2f} / {x['recall'][1]:.2f}"
                   f" | {pct(x['memorised'][0])} / {pct(x['memorised'][1])} |"
                   + (f" {x['closer']} / {x['further']} / {x['precision_short']} / {x['recall_short']} of "
                      f"{x['spaces']} |" if across else "")
                   + (f" {x['match'][0]:.3f} / {x['match'][1]:.3f} |" if match else ""))
    if verdict is not None:
        out += ["", f"Verdict: **{verdict}**" + (": " + "; ".join(reasons) if reasons else "") + "."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidate", required=True,
                   help="the candidate's bench.sampler_frontier (or, conditional, bench.guidance) results.json")
    p.add_argument("--shipped", default=None, help="the shipped model's results (default: the config's)")
    p.add_argument("--config", default=str(CONFIG))
    p.add_argument("--measures", default=None, help="a bench.measures results file: read rules 1-2 across its "
                   "feature spaces (the addendum)")
    p.add_argument("--name", default=None, help="the candidate's model name in --measures")
    p.add_argument("--out", default=None, help="write the table and verdict here (Markdown)")
    p.add_argument("--compare", nargs=2, metavar=("NAME_SHIPPED", "NAME_CANDIDATE"), default=None,
                   help="the table only, its columns named so, no verdict: two runs of one config side by side "
                        "(e.g. a rerun against the first run, their training noise)")
    args = p.parse_args(argv)
    if args.compare and args.shipped is None:
        p.error("--compare needs --shipped: the results file of the run to compare against")
    if (args.measures is None) != (args.name is None):
        p.error("--measures and --name go together: the cross-check's file and the candidate's name in it")
    try:
        rule = yaml.safe_load(Path(args.config).read_text())
        if args.compare:  # two runs of one config: the first need not be the shipped model
            shipped = json.loads(Path(args.shipped).read_text())
        else:
            spec = {**rule["shipped"], **({"file": str(Path(args.shipped).resolve())} if args.shipped else {})}
            shipped = load_results("shipped", spec, ROOT)[0]
        shipped = guidance_rows(shipped)
        candidate = guidance_rows(json.loads(Path(args.candidate).read_text()))
        cross = None if args.measures is None else cross_check(json.loads(Path(args.measures).read_text()),
                                                                 args.name)
        lines, verdict, reasons = judge(candidate, shipped, rule, cross)
        shown = (None, [], tuple(args.compare)) if args.compare else (verdict, reasons)
        text = markdown(lines, *shown)
    except (OSError, ValueError, KeyError, TargetsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
