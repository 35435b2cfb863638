"""The choice of the default model (issue 21): a candidate's results against the shipped model's, by the rule of
configs/bench/model_choice.yaml (the prose is in docs/training.md, "How the default model is chosen").

    python -m bench.model_choice --candidate docs/figures/training/candidates/sprites_eps/eval/results.json \
        [--shipped FILE] [--out FILE.md]

Both results files come from ``bench.sampler_frontier`` on the same settings, seed and N
(configs/bench/candidates.yaml for a candidate; the shipped model's rows may come from configs/bench/priors.yaml,
which holds the same four). Prints a table of the four settings and the verdict: "replace", "keep", or
"undecided" when a number the rule reads is not recorded (with what to run).
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


def memorised(row: dict, quantile: str) -> float | None:
    """The memorisation share of a frontier row, or None when the row does not record it."""
    share = (row.get("memorisation") or {}).get("share_below_real_quantile") or {}
    return share.get(quantile)


def judge(candidate: dict, shipped: dict, rule: dict) -> tuple[list[dict], str, list[str]]:
    """(one line per setting, the verdict, the reasons) of ``candidate`` against ``shipped`` by ``rule``."""
    lines, reasons, unknown, wins = [], [], [], 0
    q = str(rule["memorisation_quantile"])
    for setting, nfe in rule["settings"]:
        c, s = row_of(candidate, setting, nfe), row_of(shipped, setting, nfe)
        if s is None:
            raise ValueError(f"{setting} at {nfe} NFE is missing from the shipped model's results: run "
                             "bench.sampler_frontier --config configs/bench/candidates.yaml on it")
        if c is None:  # not measured yet: the rule cannot replace the model
            unknown.append(f"candidate {setting} at {nfe} NFE")
            lines.append({"setting": setting, "nfe": nfe, "fid": (s["scores"]["sprite_fid"], None)})
            continue
        cs, ss = c["scores"], s["scores"]
        ratio = cs["sprite_fid"] / ss["sprite_fid"]
        wins += ratio < 1
        line = {"setting": setting, "nfe": nfe, "fid": (ss["sprite_fid"], cs["sprite_fid"]), "ratio": ratio,
                "precision": (ss["precision"], cs["precision"]), "recall": (ss["recall"], cs["recall"]),
                "memorised": (memorised(s, q), memorised(c, q))}
        lines.append(line)
        if ratio > rule["fid_ratio_at_most"]:
            reasons.append(f"rule 1: sprite-FID {ratio:.2f}x the shipped model's at {setting}")
        for key in ("precision", "recall"):
            if line[key][1] < line[key][0] - rule["precision_recall_drop_at_most"]:
                reasons.append(f"rule 2: {key} {line[key][1]:.2f} against {line[key][0]:.2f} at {setting}")
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


def markdown(lines: list[dict], verdict: str, reasons: list[str]) -> str:
    def pct(v: float | None) -> str:
        return "not recorded" if v is None else f"{v:.1%}"

    out = ["| setting | NFE | sprite-FID shipped | candidate | ratio | precision shipped / candidate | "
           "recall shipped / candidate | memorised shipped / candidate |", "| --- | ---: |" + " ---: |" * 6]
    for x in lines:
        if x["fid"][1] is None:
            out.append(f"| {x['setting']} | {x['nfe']} | {x['fid'][0]:.3f} | not measured | | | | |")
            continue
        out.append(f"| {x['setting']} | {x['nfe']} | {x['fid'][0]:.3f} | {x['fid'][1]:.3f} | {x['ratio']:.2f} | "
                   f"{x['precision'][0]:.2f} / {x['precision'][1]:.2f} | {x['recall'][0]:.2f} / {x['recall'][1]:.2f}"
                   f" | {pct(x['memorised'][0])} / {pct(x['memorised'][1])} |")
    out += ["", f"Verdict: **{verdict}**" + (": " + "; ".join(reasons) if reasons else "") + "."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidate", required=True, help="the candidate's bench.sampler_frontier results.json")
    p.add_argument("--shipped", default=None, help="the shipped model's results (default: the config's)")
    p.add_argument("--config", default=str(CONFIG))
    p.add_argument("--out", default=None, help="write the table and verdict here (Markdown)")
    args = p.parse_args(argv)
    try:
        rule = yaml.safe_load(Path(args.config).read_text())
        spec = {**rule["shipped"], **({"file": str(Path(args.shipped).resolve())} if args.shipped else {})}
        shipped = load_results("shipped", spec, ROOT)[0]
        candidate = json.loads(Path(args.candidate).read_text())
        text = markdown(*judge(candidate, shipped, rule))
    except (OSError, ValueError, KeyError, TargetsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
