"""The targets of the shipped models, judged from the committed benchmark results (nothing is sampled).

    python -m bench.targets [--config configs/bench/targets.yaml] [--out docs/figures/targets.md]

Every target - the results file it reads, the numbers in it, the comparison and the threshold - is an entry of
configs/bench/targets.yaml; this module reads the files and judges. It writes one Markdown table per section
(target, measured, met, results file) and under them every results file with its date and whether the model hash
it records is the shipped model's. A file made before hashes were recorded is judged and marked "model hash not
recorded". It stops with one line (exit code 2) when a results file is missing, records another model's hash, or
lacks a number a target needs.
"""

from __future__ import annotations

import argparse
import json
import operator
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from bench.common import TARGETS_CONFIG, load_targets
from evaluation.sampling import pipeline_info
from pipelines.atomic import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
COMPARE = {"<=": operator.le, ">=": operator.ge}
FILTER_OPS = {"=": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt,
              ">": operator.gt, "^=": lambda a, b: str(a).startswith(str(b)),
              "!^=": lambda a, b: not str(a).startswith(str(b))}
TOKEN = re.compile(r'\.?(?P<key>[A-Za-z_]\w*)|\["(?P<quoted>[^"]*)"\]|\[(?P<rows>[^\]]*)\]')
FILTER = re.compile(r"^\s*(?P<key>[\w.]+)\s*(?P<op>!\^=|\^=|!=|<=|>=|=|<|>)\s*(?P<value>.*?)\s*$")


class TargetsError(Exception):
    """A results file is missing, measured on another model, or lacks a number; or the YAML is wrong."""


class NotRecorded(LookupError):
    """A path leads nowhere in a results file."""


# ------------------------------------------------------------------------------------------------ paths


def tokens(path: str) -> list[tuple[str, str]]:
    """``rows[id=x, nfe=5].scores["0.05"]`` -> [("key", "rows"), ("rows", "id=x, nfe=5"), ("key", "scores"),
    ("key", "0.05")]."""
    out, pos = [], 0
    while pos < len(path):
        m = TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            raise TargetsError(f"cannot read the path {path!r} at {path[pos:]!r}")
        out.append(("rows", m["rows"]) if m["rows"] is not None else ("key", m["key"] or m["quoted"]))
        pos = m.end()
    return out


def field(row: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict) or part not in row:
            return None
        row = row[part]
    return row


def selects(row: Any, filters: str) -> bool:
    """Whether a row meets every filter of ``k=v, k<=v, ...`` (``*``: every row)."""
    if filters.strip() == "*":
        return True
    for part in filters.split(","):
        m = FILTER.match(part)
        if m is None:
            raise TargetsError(f"cannot read the row filter {part.strip()!r}")
        value, wanted = field(row, m["key"]), yaml.safe_load(m["value"])
        numeric = m["op"] in ("<=", ">=", "<", ">")
        if value is None or (numeric and not isinstance(value, (int, float))) or not FILTER_OPS[m["op"]](value, wanted):
            return False
    return True


def resolve(data: Any, path: str) -> list[Any]:
    """Every value ``path`` leads to in ``data`` (at least one); :class:`NotRecorded` if none."""
    items = [data]
    for kind, arg in tokens(path):
        found = []
        for item in items:
            if kind == "key":
                if not isinstance(item, dict) or arg not in item:
                    raise NotRecorded(path)
                found.append(item[arg])
            elif isinstance(item, list):
                found.extend(r for r in item if selects(r, arg))
            else:
                raise NotRecorded(path)
        items = found
    if not items:
        raise NotRecorded(path)
    return items


def number(data: Any, path: str) -> float:
    """The one number ``path`` leads to."""
    values = resolve(data, path)
    if len(values) != 1 or not isinstance(values[0], (int, float)):
        raise TargetsError(f"{path!r} leads to {len(values)} values, not one number")
    return float(values[0])


# ---------------------------------------------------------------------------------------------- results


def with_setting_ids(result: dict, config: Path) -> dict:
    """``result`` with every row of a bench.sampler_frontier results file carrying its setting id: rows written
    before ids were recorded get the id of the config setting with the same sampler, NFE and arguments."""
    from bench.sampler_frontier import load_frontier_config, runs_of

    runs = runs_of(load_frontier_config(config))
    for row in result.get("rows", []):
        if row.get("id") is None:
            same = (r["id"] for r in runs if (r["sampler"], r["nfe"], r["kwargs"]) ==
                    (row.get("sampler"), row.get("nfe"), row.get("kwargs")))
            row["id"] = next(same, None)
    return result


def load_results(name: str, spec: dict, root: Path) -> tuple[dict, str, bool]:
    """``(data, model status, hash recorded)`` of one results file; :class:`TargetsError` when it is missing or
    records another model than ``spec["model"]``."""
    file, command = root / spec["file"], spec["command"]
    if not file.is_file():
        raise TargetsError(f"{spec['file']} ({name}) is missing: run `{command}`")
    data = json.loads(file.read_text())
    if spec.get("config"):
        data = with_setting_ids(data, root / spec["config"])
    if "model_sha256" in spec:  # a reference model that is not shipped (its folder need not exist): a pinned hash
        recorded = (data.get("pipeline") or {}).get("model_sha256")
        if recorded != spec["model_sha256"]:
            raise TargetsError(f"{spec['file']} ({name}) records model hash {str(recorded)[:12]}, not the pinned "
                               f"{spec['model_sha256'][:12]}: run `{command}`")
        return data, f"model hash {recorded[:12]}, the pinned one", True
    model = root / spec["model"]
    if not (model / "unet").is_dir():
        raise TargetsError(f"{spec['model']}: the model folder the targets of {spec['file']} are judged on is missing")
    shipped, recorded = pipeline_info(model), data.get("pipeline")
    recorded = recorded if isinstance(recorded, dict) else {}
    if recorded.get("model_sha256"):
        if recorded["model_sha256"] != shipped["model_sha256"]:
            raise TargetsError(f"{spec['file']} was measured on another model (model sha256 "
                               f"{recorded['model_sha256'][:12]}, {spec['model']}: {shipped['model_sha256'][:12]}): "
                               f"run `{command}`")
        return data, f"model hash {shipped['model_sha256'][:12]}, the shipped one", True
    if recorded.get("unet_sha256_16"):
        if recorded["unet_sha256_16"] != shipped["unet_sha256_16"]:
            raise TargetsError(f"{spec['file']} was measured on other UNet weights (sha256 "
                               f"{recorded['unet_sha256_16']}, {spec['model']}: {shipped['unet_sha256_16']}): "
                               f"run `{command}`")
        return data, (f"model hash not recorded (its UNet weights hash, {recorded['unet_sha256_16']}, is the shipped "
                      "one's)"), False
    return data, "model hash not recorded", False


# ---------------------------------------------------------------------------------------------- judging


def unit_of(target: dict) -> str:
    """The unit shown after a target's numbers: its ``unit``, else "x" for a ratio (``over``), else none."""
    return target.get("unit", "x" if "over" in target else "")


def fmt(value: float, target: dict, unit: bool = True) -> str:
    return f"{value:{target.get('format', '.3f')}}" + (unit_of(target) if unit else "")


def label(row: dict) -> str:
    return str(row.get("label") or row.get("name") or row.get("id"))


def row_fields(row: dict) -> dict[str, Any]:
    """What ``{...}`` in an ``over`` path may name: the row's prior, NFE and id."""
    kwargs = row.get("kwargs") or {}
    return {"prior": kwargs.get("prior", "standard"), "nfe": row.get("nfe"), "id": row.get("id")}


def meets(target: dict, value: float) -> bool:
    return COMPARE[target["compare"]](value, float(target["threshold"]))


def judge_value(target: dict, data: dict, over: dict) -> tuple[str, bool | None]:
    """One number or several (a list of paths, or rows selected by a path), each against the threshold; with
    ``over``, each divided by that number (read from ``over``: the results named by ``over_results``)."""
    paths = target["value"] if isinstance(target["value"], list) else [target["value"]]
    values = [float(v) for p in paths for v in resolve(data, p)]
    if "over" in target:
        ref = number(over, target["over"])
        ratios = [v / ref for v in values]
        text = ", ".join(f"{r:.2f}{unit_of(target)}" for r in ratios) + \
            f" ({', '.join(fmt(v, target, False) for v in values)} against {fmt(ref, target, False)})"
        values = ratios
    else:
        text = (" / " if len(paths) > 1 else ", ").join(fmt(v, target) for v in values)
    return text, all(meets(target, v) for v in values) if "threshold" in target else None


def judge_best(target: dict, data: dict, over: dict) -> tuple[str, bool | None]:
    """The best row of ``rows`` by ``value`` (divided by ``over`` of the same prior, when given, read from
    ``over``: the results named by ``over_results``)."""
    scored = []
    for row in resolve(data, target["rows"]):
        v = number(row, target["value"])
        ref = number(over, target["over"].format(**row_fields(row))) if "over" in target else None
        scored.append((v / ref if ref else v, v, ref, row))
    pick = max if target.get("compare") == ">=" else min
    score, v, ref, row = pick(scored, key=lambda s: s[0])
    where = f"{label(row)}, {row.get('nfe')} NFE"
    text = f"{score:.2f}{unit_of(target)}: {where}, {fmt(v, target, False)} against {fmt(ref, target, False)}" \
        if ref else f"{fmt(v, target)}: {where}"
    return text, meets(target, score) if "threshold" in target else None


def judge_pairs(target: dict, data: dict, over: dict) -> tuple[str, bool | None]:
    """Ours no worse than diffusers' same method (``pairs`` of setting ids) at every NFE both ran."""
    rows = resolve(data, target.get("rows", "rows[*]"))
    worse, compared = [], 0
    for ours, theirs in target["pairs"]:
        for stock in (r for r in rows if r.get("id") == theirs):
            mine = next((r for r in rows if r.get("id") == ours and r.get("nfe") == stock.get("nfe")), None)
            if mine is None:
                continue
            compared += 1
            a, b = number(mine, target["value"]), number(stock, target["value"])
            if a > b:
                worse.append(f"{label(mine)} at {mine['nfe']}: {fmt(a, target)} > {fmt(b, target)}")
    if not compared:
        raise TargetsError(f"target {target['id']}: no pair of rows ran at the same NFE")
    return "; ".join(worse) or f"ours <= stock in all {compared} comparisons", not worse


def judge_best_per_nfe(target: dict, data: dict, over: dict) -> tuple[str, bool | None]:
    """At each NFE where ``against`` ran, the best of ``rows`` no worse than the best of ``against``."""
    ours, stock = resolve(data, target["rows"]), resolve(data, target["against"])
    behind = []
    for n in sorted({r.get("nfe") for r in stock}):
        mine = [number(r, target["value"]) for r in ours if r.get("nfe") == n]
        if mine:
            best_stock = min(number(r, target["value"]) for r in stock if r.get("nfe") == n)
            if min(mine) > best_stock:
                behind.append(f"{n} NFE: {fmt(min(mine), target)} > {fmt(best_stock, target)}")
    return "; ".join(behind) or "yes at every NFE both ran", not behind


def judge_smallest_meeting(target: dict, data: dict, over: dict) -> tuple[str, bool | None]:
    """The smallest ``by`` among ``rows`` whose value meets the threshold (else the best value)."""
    rows = [(number(r, target["value"]), r) for r in resolve(data, target["rows"])]
    meeting = [vr for vr in rows if meets(target, vr[0])]
    pick = max if target["compare"] == ">=" else min
    v, row = min(meeting, key=lambda vr: vr[1][target["by"]]) if meeting else pick(rows, key=lambda vr: vr[0])
    return f"{fmt(v, target)} at {target.get('by_text', target['by'] + ' =')} {row[target['by']]:g}", bool(meeting)


KINDS = {"value": judge_value, "best": judge_best, "pairs": judge_pairs, "best_per_nfe": judge_best_per_nfe,
         "smallest_meeting": judge_smallest_meeting}


def target_text(target: dict) -> str:
    """The target's text with its comparison, threshold and aim."""
    if "threshold" not in target:
        return target["text"]
    percent = target.get("format", "").endswith("%")
    unit = "" if percent else unit_of(target)

    def show(x: float) -> str:
        return f"{x:{target['format']}}" if percent else f"{x:g}{unit}"
    aim = f" (aim {show(target['aim'])})" if "aim" in target else ""
    return f"{target['text']} {target['compare']} {show(target['threshold'])}{aim}"


def check_config(cfg: dict) -> None:
    ids = set()
    for t in cfg["targets"]:
        missing = {"id", "text", "results", "value"} - t.keys()
        if missing:
            raise TargetsError(f"target {t.get('id', t)}: needs {', '.join(sorted(missing))}")
        if t["id"] in ids:
            raise TargetsError(f"target id {t['id']!r} appears twice")
        ids.add(t["id"])
        for key in ("results", "over_results"):
            if key in t and t[key] not in cfg["results"]:
                raise TargetsError(f"target {t['id']}: {key} {t[key]!r} is not one of {', '.join(cfg['results'])}")
        if t.get("kind", "value") not in KINDS:
            raise TargetsError(f"target {t['id']}: kind must be one of {', '.join(KINDS)}, got {t['kind']!r}")
        if ("threshold" in t or t.get("kind") == "smallest_meeting") and t.get("compare") not in COMPARE:
            raise TargetsError(f"target {t['id']}: compare must be one of {', '.join(COMPARE)}")


def judge(cfg: dict, root: Path = ROOT) -> str:
    """The Markdown of every target of ``cfg`` judged from the results files under ``root``."""
    check_config(cfg)
    loaded = {name: load_results(name, spec, root) for name, spec in cfg["results"].items()
              if any(name in (t["results"], t.get("over_results"), *(b.get("results") for b in t.get("beside", [])))
                     for t in cfg["targets"])}
    unrecorded: dict[str, list[str]] = {}
    sections: dict[str, list[str]] = {}
    for t in cfg["targets"]:
        data = loaded[t["results"]][0]
        try:
            measured, met = KINDS[t.get("kind", "value")](t, data, loaded[t.get("over_results", t["results"])][0])
        except NotRecorded as e:
            raise TargetsError(f"{cfg['results'][t['results']]['file']} lacks {e} (target {t['id']}): run "
                               f"`{cfg['results'][t['results']]['command']}`") from None
        for b in t.get("beside", []):
            source = b.get("results", t["results"])
            try:
                values = [float(v) for v in resolve(loaded[source][0], b["value"])]
                measured += f"; {b['text']} " + ", ".join(fmt(v, b) for v in values)
            except NotRecorded:
                measured += f"; {b['text']}: not recorded"
                unrecorded.setdefault(source, []).append(b["text"])
        ok = "n/a" if met is None else ("yes" if met else "no")
        sections.setdefault(t.get("section", "Targets"), []).append(
            f"| {target_text(t)} | {measured} | {ok} | {t['results']} |")
    out = []
    for section, rows in sections.items():
        out += [f"**{section}**", "", "| target | measured | met | results |", "| --- | --- | --- | --- |", *rows, ""]
    out += ["Results files (`python -m bench.targets` stops when one is missing or records another model's hash):", ""]
    for name, (data, status, recorded) in loaded.items():
        spec = cfg["results"][name]
        lacks = sorted(set(unrecorded.get(name, [])))
        judged = spec.get("model", "a reference model")
        line = f"- `{name}`: {spec['file']} ({str(data.get('date', '?'))[:10]}), judged for {judged}: {status}"
        if lacks:
            line += f"; does not record: {', '.join(lacks)}"
        if not recorded or lacks:
            line += f"; regenerate with `{spec['command']}`"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(TARGETS_CONFIG), help="the targets (default configs/bench/targets.yaml)")
    p.add_argument("--out", default=str(FIGURES / "targets.md"))
    args = p.parse_args(argv)
    try:
        text = judge(load_targets(args.config))
    except TargetsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
