"""The targets of the shipped models, judged from the committed benchmark results (nothing is sampled).

    python -m bench.targets [--out docs/figures/targets.md]

Every target is one plain check below (a function of the loaded results files); its threshold is in
:data:`THRESHOLDS`, which ``bench.sampling_time`` also reads for the targets it judges on its own run. The output is
one Markdown table per section (target, measured, met, results file) and under them every results file of
:data:`RESULTS` with its date and whether the model hash it records is the model it is judged for. It stops with
one line (exit code 2) when a results file is missing, records another model's hash, or lacks a number a target
needs. The unconditional targets are judged on the min-SNR-5 model (:data:`MEASURED`), the model the results were
measured on; a last line says which results the default model (:data:`DEFAULT`) has.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evaluation.sampling import pipeline_info
from pipelines.atomic import write_text_atomic

__all__ = ["DEFAULT", "MEASURED", "RESULTS", "THRESHOLDS", "Results", "TargetsError", "judge", "main"]

ROOT = Path(__file__).resolve().parents[1]
MEASURED = "pretrained/sprites_ddpm_minsnr5"  # the min-SNR-5 model every results file below was measured on
DEFAULT = "pretrained/sprites_ddpm"  # the default model (L_simple)
DEFAULT_RESULTS = "docs/figures/training/candidates/sprites_eps/rerun/eval/results.json"  # its UNet's N = 1,000 rows
FRONTIER = "python -m bench.sampler_frontier --pipeline " + MEASURED + " --config configs/bench/"
CANDIDATES = "python -m bench.sampler_frontier --config configs/bench/candidates.yaml "
# the first model; its folder: git archive 1049b13^ pretrained/sprites_ddpm
FIRST_MODEL_SHA256 = "7e4ae2ccb0e6dfbc7d332618cf71c33b73aac9b07c4c0eb1a77b9603e65aabaa"


class TargetsError(Exception):
    """A results file is missing, measured on another model, or lacks a number."""


@dataclass(frozen=True)
class Results:
    """A committed results file: the model it must be measured on (a folder, or a pinned hash for a reference
    model that is not shipped), the command that remakes it, and for bench.sampler_frontier results the config
    whose setting ids name rows written before rows carried ids."""

    file: str
    command: str
    model: str = MEASURED
    model_sha256: str | None = None
    config: str | None = None


RESULTS = {
    "priors": Results("docs/figures/priors/results.json", FRONTIER + "priors.yaml", config="configs/bench/priors.yaml"),
    "shipped_candidates": Results(  # the min-SNR-5 model on the candidates' settings (the priors' z and N)
        "docs/figures/training/candidates/shipped/eval/results.json",
        CANDIDATES + f"--pipeline {MEASURED} --cache docs/figures/training/candidates/samples "
        "--out docs/figures/training/candidates/shipped/eval", config="configs/bench/candidates.yaml"),
    "first_model": Results(  # the first shipped model on the same settings: DDPM-500 from N(0, I)
        "docs/figures/training/candidates/first_model/eval/results.json",
        "mkdir -p outputs/first_model && git archive 1049b13^ pretrained/sprites_ddpm | tar -x -C outputs/first_model"
        " && " + CANDIDATES + "--pipeline outputs/first_model/pretrained/sprites_ddpm --only ddpm_standard --cache "
        "docs/figures/training/candidates/samples --out docs/figures/training/candidates/first_model/eval",
        model_sha256=FIRST_MODEL_SHA256, config="configs/bench/candidates.yaml"),
    "ddpm_vs_ddim": Results("docs/figures/ddpm_vs_ddim/results.json",
                            f"python -m bench.fid_vs_steps --pipeline {MEASURED} --cache outputs/cache/"
                            "samples --ddim_steps 10 20 50 --out docs/figures/ddpm_vs_ddim --overwrite"),
    "sampling": Results("docs/figures/sampling/results.json", FRONTIER + "frontier.yaml",
                        config="configs/bench/frontier.yaml"),
    "learned": Results("docs/figures/sampling/learned/results.json", FRONTIER + "learned_steps.yaml",
                       config="configs/bench/learned_steps.yaml"),
    "presets": Results("docs/figures/sampling/presets.json", f"python -m bench.presets --pipeline {MEASURED}"
                       " --num_images 25 --repeats 3 --json docs/figures/sampling/presets.json"),
    "guidance": Results("docs/figures/guidance/results.json",
                        "python -m bench.guidance --pipeline pretrained/sprites_conditional --scales 0 1 2 3 4 "
                        "--prior moments --threads 1 --out docs/figures/guidance --overwrite",
                        model="pretrained/sprites_conditional"),
    "timing": Results("docs/figures/timing/sampling_time.json",
                      f"python -m bench.sampling_time --pipeline {MEASURED} --num_images 50 --repeats 3 "
                      "--ddpm_steps 50 --threads 1 --clock cpu --json docs/figures/timing/sampling_time.json"),
}

THRESHOLDS = {
    "ddpm500_standard": 0.147,  # the first model's sprite-FID
    "ddpm500_standard_vs_first_model": 1.0,
    "ddpm500_moments": 0.08,
    "ddpm500_moments_floor": 1.5,
    "ddim50_moments_vs_ddpm500_moments": 1.5,
    "ddim50_standard_vs_ddpm500_standard": 3.0,
    "precision_recall": 0.8,
    "ddim50_moments_class_gap": 5.0,
    "fast_best_at_10_nfe": 1.2,
    "learned_best_at_4_nfe": 3.0,
    "learned_best_at_5_nfe": 2.0,
    "learned_best_at_10_nfe": 1.5,
    "fast_preset_speedup": 40.0,
    "conditional_class_match": 0.8,
    "timing_overhead_pct": 5.0,
    "timing_ours_over_stock": 1.0,
    "timing_speedup_fraction": 0.90,
}


# ------------------------------------------------------------------------------------------------ reading rows


def row(data: dict, setting: str, nfe: int) -> dict:
    """The row of a bench.sampler_frontier results file for one setting id at one NFE."""
    found = [r for r in data["rows"] if r.get("id") == setting and r.get("nfe") == nfe]
    if len(found) != 1:
        raise KeyError(f"the row {setting} at {nfe} NFE")
    return found[0]


def fid(r: dict) -> float:
    return r["scores"]["sprite_fid"]


def prior(r: dict) -> str:
    return (r.get("kwargs") or {}).get("prior", "standard")


def ours(data: dict, nfe: Callable[[int], bool]) -> list[dict]:
    """This project's sampler rows (not diffusers' stock ones, not DDPM) at the NFE that ``nfe`` accepts."""
    return [r for r in data["rows"] if not r["sampler"].startswith("stock") and r["sampler"] != "ddpm"
            and nfe(r["nfe"])]


def memorised(r: dict) -> str:
    """The share of samples closer to a training sprite than the real 5% quantile (frontier or fid_vs_steps row)."""
    memo = r.get("memorisation") or {}
    share = memo.get("pixel", memo).get("share_below_real_quantile", {}).get("0.05")
    return "not recorded" if share is None else f"{share:.1%}"


# -------------------------------------------------------------------------------------------------- checks


def best_ratio(rows: list[dict], reference: dict, bound: float | None) -> tuple[str, bool | None]:
    """The row with the smallest sprite-FID relative to DDPM-500 from its own prior (in ``reference``)."""
    scored = [(fid(r) / fid(row(reference, f"ddpm_{prior(r)}", 500)), r) for r in rows]
    ratio, best = min(scored, key=lambda s: s[0])
    ref = fid(row(reference, f"ddpm_{prior(best)}", 500))
    text = f"{ratio:.2f}x: {best.get('label', best.get('id'))}, {best['nfe']} NFE, {fid(best):.3f} against {ref:.3f}"
    return text, None if bound is None else ratio <= bound


def no_worse(data: dict, pairs: list[tuple[str, str]]) -> tuple[str, bool]:
    """Each first setting's sprite-FID at most the second's at every NFE both ran."""
    worse, compared = [], 0
    for mine, theirs in pairs:
        for other in (r for r in data["rows"] if r.get("id") == theirs):
            same = [r for r in data["rows"] if r.get("id") == mine and r["nfe"] == other["nfe"]]
            compared += len(same)
            worse += [f"{r.get('label', r.get('id'))} at {r['nfe']}: {fid(r):.4f} > {fid(other):.4f}"
                      for r in same if fid(r) > fid(other)]
    if not compared:
        raise KeyError(f"a pair of rows at the same NFE among {pairs}")
    return "; ".join(worse) or f"no worse in all {compared} comparisons", not worse


def best_per_nfe(data: dict) -> tuple[str, bool]:
    """At each NFE a stock scheduler ran, our best sprite-FID at most the best stock one."""
    stock = [r for r in data["rows"] if r["sampler"].startswith("stock")]
    behind = []
    for n in sorted({r["nfe"] for r in stock}):
        mine = [fid(r) for r in ours(data, lambda k, n=n: k == n)]
        theirs = min(fid(r) for r in stock if r["nfe"] == n)
        if mine and min(mine) > theirs:
            behind.append(f"{n} NFE: {min(mine):.4f} > {theirs:.4f}")
    return "; ".join(behind) or "yes at every NFE both ran", not behind


def ratio_text(value: float, ref: float) -> str:
    return f"{value / ref:.2f}x ({value:.3f} against {ref:.3f})"


def quality(res: dict[str, dict]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, results, met) of the quality targets at N = 1,000."""
    t, pri, cand, first, dvd = THRESHOLDS, res["priors"], res["shipped_candidates"], res["first_model"], \
        res["ddpm_vs_ddim"]
    slug = {r["slug"]: r for r in dvd["rows"]}
    d_std, d_mom = row(pri, "ddpm_standard", 500), row(pri, "ddpm_moments", 500)
    i_std, i_mom = row(pri, "ddim_eta0_standard", 50), row(pri, "ddim_eta0_moments", 50)
    c_std, f_std = row(cand, "ddpm_standard", 500), row(first, "ddpm_standard", 500)
    mem_i, mem_d = memorised(row(cand, "ddim_eta0_moments", 50)), memorised(row(cand, "ddpm_moments", 500))
    floor = pri["floor"]["sprite_fid"]
    out = [
        (f"sprite-FID, DDPM-500 from N(0, I) <= {t['ddpm500_standard']:g} (aim 0.1)",
         f"{fid(d_std):.3f}; memorised {memorised(slug['ddpm_500'])}", "priors", fid(d_std) <= t["ddpm500_standard"]),
        ("sprite-FID, DDPM-500 from N(0, I), relative to the first model's measured now (same z and N) <= "
         f"{t['ddpm500_standard_vs_first_model']:g}x",
         f"{ratio_text(fid(c_std), fid(f_std))}; first model memorised {memorised(f_std)}", "shipped_candidates",
         fid(c_std) / fid(f_std) <= t["ddpm500_standard_vs_first_model"]),
        (f"sprite-FID, DDPM-500 from the moments prior <= {t['ddpm500_moments']:g}",
         f"{fid(d_mom):.3f}; memorised {mem_d}", "priors", fid(d_mom) <= t["ddpm500_moments"]),
        ("sprite-FID, DDPM-500 from the moments prior, relative to the real-vs-real floor <= "
         f"{t['ddpm500_moments_floor']:g}x", ratio_text(fid(d_mom), floor), "priors",
         fid(d_mom) / floor <= t["ddpm500_moments_floor"]),
        ("DDIM-50 eta 0 relative to DDPM-500, both from the moments prior <= "
         f"{t['ddim50_moments_vs_ddpm500_moments']:g}x", f"{ratio_text(fid(i_mom), fid(d_mom))}; memorised {mem_i}",
         "priors", fid(i_mom) / fid(d_mom) <= t["ddim50_moments_vs_ddpm500_moments"]),
        ("DDIM-50 eta 0 relative to DDPM-500, both from N(0, I) <= "
         f"{t['ddim50_standard_vs_ddpm500_standard']:g}x",
         f"{ratio_text(fid(i_std), fid(d_std))}; memorised {memorised(slug['ddim_050_eta0'])}", "priors",
         fid(i_std) / fid(d_std) <= t["ddim50_standard_vs_ddpm500_standard"]),
    ]
    for name, r, mem in (("DDIM-50 eta 0", i_mom, mem_i), ("DDPM-500", d_mom, mem_d)):
        p, rec = r["scores"]["precision"], r["scores"]["recall"]
        out.append((f"precision / recall, {name} from the moments prior, each >= {t['precision_recall']:g}",
                    f"{p:.2f} / {rec:.2f}; memorised {mem}", "priors", min(p, rec) >= t["precision_recall"]))
    gap = i_mom["scores"]["class_gap_points"]
    out.append(("largest gap between the class shares of DDIM-50 eta 0 samples (moments prior) and the data's, "
                f"points <= {t['ddim50_moments_class_gap']:g}", f"{gap:.1f}", "priors",
                gap <= t["ddim50_moments_class_gap"]))
    return out


def fast_sampling(res: dict[str, dict]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, results, met) of the fast-sampling targets, ratios against DDPM-500 from the same prior."""
    t, sam, learned, pri = THRESHOLDS, res["sampling"], res["learned"], res["priors"]
    same = "sprite-FID relative to DDPM-500 from the same prior"
    out = [(f"best of ours at <= 10 NFE, {same} <= {t['fast_best_at_10_nfe']:g}x",
            *best_ratio(ours(sam, lambda n: n <= 10), sam, t["fast_best_at_10_nfe"]))]
    for n in (4, 5):
        out.append((f"what {n} NFE reach (best of ours, {same}; reported)",
                    *best_ratio(ours(sam, lambda k, n=n: k == n), sam, None)))
    out.append(("each of our samplers at least as good as diffusers' same method at every NFE both ran (sprite-FID)",
                *no_worse(sam, [("dpmpp_2m_karras_moments", "stock_dpmpp_2m_karras_moments"),
                                ("dpmpp_2m_sde_discrete_moments", "stock_dpmpp_2m_sde_moments"),
                                ("euler_ancestral_discrete_moments", "stock_euler_ancestral_moments"),
                                ("heun_spaced_moments", "stock_heun_karras_moments")])))
    out.append(("our best at each NFE at least as good as the best stock scheduler there (sprite-FID)",
                *best_per_nfe(sam)))
    out = [(text, measured, "sampling", met) for text, measured, met in out]
    for where, nfe, key in (("at 5 NFE", lambda n: n == 5, "learned_best_at_5_nfe"),
                            ("at 4 NFE or fewer", lambda n: n <= 4, "learned_best_at_4_nfe"),
                            ("at 10 NFE", lambda n: n == 10, "learned_best_at_10_nfe")):
        measured, met = best_ratio(ours(learned, nfe), pri, t[key])
        out.append((f"best of ours {where}, learned schedules among them, {same} <= {t[key]:g}x", measured, "learned",
                    met))
    measured, met = no_worse(learned, [("dpmpp_2m_learned_moments", "dpmpp_2m_spaced_moments"),
                                       ("dpmpp_2m_sde_learned_moments", "dpmpp_2m_sde_spaced_moments"),
                                       ("heun_learned_moments", "heun_spaced_moments"),
                                       ("euler_learned_moments", "euler_spaced_moments"),
                                       ("ddim_learned_moments", "ddim_eta0_moments")])
    out.append(("each learned schedule at least as good as the schedule its fit started from, at every NFE "
                "(sprite-FID)", measured, "learned", met))
    speedup = res["presets"]["speedup"]
    out.append((f"--preset fast against --preset quality, wall time side by side >= {t['fast_preset_speedup']:g}x",
                f"{speedup:.1f}x", "presets", speedup >= t["fast_preset_speedup"]))
    rows = sorted((r for r in res["guidance"]["rows"] if 0 < r["scale"] <= 3), key=lambda r: r["scale"])
    bound = t["conditional_class_match"]
    pick = next((r for r in rows if r["match"]["match"] >= bound), max(rows, key=lambda r: r["match"]["match"]))
    out.append(("conditional model, at some guidance scale w <= 3, the share of samples in the requested class >= "
                f"{bound:g}", f"{pick['match']['match']:.2f} at w = {pick['scale']:g}", "guidance",
                pick["match"]["match"] >= bound))
    return out


def speed(res: dict[str, dict]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, results, met) of the timing targets, on the CPU clock, every setting."""
    t, cpu = THRESHOLDS, res["timing"]["cpu"]
    over = [r["ours_over_bare_pct"] for r in cpu["rows"]]
    stock = [r["ours_over_stock"] for r in cpu["rows"]]
    share = [s["ours"]["fraction_of_step_ratio"] for s in cpu["speedups"]]
    return [
        (f"our pipelines' time over a bare loop of the same UNet calls, percent <= {t['timing_overhead_pct']:g}",
         ", ".join(f"{v:.1f}" for v in over), "timing", max(over) <= t["timing_overhead_pct"]),
        (f"our pipelines' time over the stock ones' (bench.sampling_time) <= {t['timing_ours_over_stock']:g}",
         ", ".join(f"{v:.3f}" for v in stock), "timing", max(stock) <= t["timing_ours_over_stock"]),
        (f"DDIM's speed-up over DDPM as a share of the step-count ratio >= {t['timing_speedup_fraction']:.0%}",
         ", ".join(f"{v:.0%}" for v in share), "timing", min(share) >= t["timing_speedup_fraction"]),
    ]


SECTIONS = {"Quality, 1,000 samples against real half B": quality, "Fast sampling": fast_sampling,
            "Speed on a CPU": speed}


# ---------------------------------------------------------------------------------------------- results files


def with_setting_ids(data: dict, config: Path) -> dict:
    """``data`` with every row of a bench.sampler_frontier results file carrying its setting id: rows written
    before ids were recorded get the id of the config's setting with the same sampler, NFE and arguments."""
    from bench.sampler_frontier import load_frontier_config, runs_of

    runs = runs_of(load_frontier_config(config))
    for r in data.get("rows", []):
        if r.get("id") is None:
            r["id"] = next((run["id"] for run in runs if (run["sampler"], run["nfe"], run["kwargs"]) ==
                            (r.get("sampler"), r.get("nfe"), r.get("kwargs"))), None)
    return data


def load_results(name: str, spec: Results, root: Path) -> tuple[dict, str, bool]:
    """``(data, model status, hash recorded)`` of one results file; :class:`TargetsError` when it is missing or
    records another model than the one it is judged for."""
    file = root / spec.file
    if not file.is_file():
        raise TargetsError(f"{spec.file} ({name}) is missing: run `{spec.command}`")
    data = json.loads(file.read_text())
    if spec.config:
        data = with_setting_ids(data, root / spec.config)
    recorded = data.get("pipeline") if isinstance(data.get("pipeline"), dict) else {}
    if spec.model_sha256:  # a reference model that is not shipped (its folder need not exist): a pinned hash
        if recorded.get("model_sha256") != spec.model_sha256:
            raise TargetsError(f"{spec.file} ({name}) records model hash {str(recorded.get('model_sha256'))[:12]}, "
                               f"not the pinned {spec.model_sha256[:12]}: run `{spec.command}`")
        return data, f"model hash {spec.model_sha256[:12]}, the pinned one", True
    if not (root / spec.model / "unet").is_dir():
        raise TargetsError(f"{spec.model}: the model folder the targets of {spec.file} are judged on is missing")
    shipped = pipeline_info(root / spec.model)
    for key, what in (("model_sha256", "model sha256"), ("unet_sha256_16", "UNet weights sha256")):
        if recorded.get(key):
            if recorded[key] != shipped[key]:
                raise TargetsError(f"{spec.file} was measured on another model ({what} {recorded[key][:12]}, "
                                   f"{spec.model}: {shipped[key][:12]}): run `{spec.command}`")
            if key == "model_sha256":
                return data, f"model hash {shipped[key][:12]}, the shipped one", True
            return data, (f"model hash not recorded (its UNet weights hash, {recorded[key]}, is the shipped "
                          "one's)"), False
    return data, "model hash not recorded", False


def default_model(root: Path) -> str:
    """The line on the default model: which N = 1,000 results it has (:data:`DEFAULT_RESULTS`, measured on a run
    whose UNet weights are the default's, byte for byte); :class:`TargetsError` when that file or folder is missing
    or the UNet hashes differ."""
    file, folder = root / DEFAULT_RESULTS, root / DEFAULT
    if not file.is_file() or not (folder / "unet").is_dir():
        raise TargetsError(f"{DEFAULT_RESULTS} or {DEFAULT}: the default model's results or folder is missing")
    data, info = json.loads(file.read_text()), pipeline_info(folder)
    recorded = data["pipeline"]["unet_sha256_16"]
    if recorded != info["unet_sha256_16"]:
        raise TargetsError(f"{DEFAULT_RESULTS} was measured on UNet weights {recorded}, not {DEFAULT}'s "
                           f"{info['unet_sha256_16']}: run `{data['command']}` on {DEFAULT}")
    settings = ", ".join(f"{r['label']} ({r['nfe']} NFE)" for r in data["rows"])
    return (f"The default model, {DEFAULT} (L_simple, model hash {info['model_sha256'][:12]}), is judged by none of "
            f"the targets above: they are judged on {MEASURED} (min-SNR-5), the model their results were measured "
            f"on. Its N = 1,000 results are {DEFAULT_RESULTS} ({str(data['date'])[:10]}; {settings}), measured on "
            f"{data['pipeline']['path']}, whose UNet weights hash, {recorded}, is the default model's; no target has "
            "been judged from them.")


def judge(root: Path | None = None, results: dict[str, Results] | None = None) -> str:
    """The Markdown of every target judged from the results files under ``root`` (default: the project's)."""
    root, results = root or ROOT, results or RESULTS
    loaded = {name: load_results(name, spec, root) for name, spec in results.items()}
    data = {name: d for name, (d, _, _) in loaded.items()}
    out = []
    for section, check in SECTIONS.items():
        try:
            rows = check(data)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise TargetsError(f"a results file of the section {section!r} lacks {e}: run the commands of "
                               f"{', '.join(sorted(results))} in bench/targets.py RESULTS") from None
        out += [f"**{section}**", "", "| target | measured | met | results |", "| --- | --- | --- | --- |"]
        out += [f"| {text} | {measured} | {'n/a' if met is None else 'yes' if met else 'no'} | {name} |"
                for text, measured, name, met in rows]
        out.append("")
    out += ["Results files (`python -m bench.targets` stops when one is missing or records another model's hash):", ""]
    for name, (d, status, recorded) in loaded.items():
        spec = results[name]
        judged = "a reference model" if spec.model_sha256 else spec.model
        line = f"- `{name}`: {spec.file} ({str(d.get('date', '?'))[:10]}), judged for {judged}: {status}"
        out.append(line + ("" if recorded else f"; regenerate with `{spec.command}`"))
    out += ["", default_model(root)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "figures" / "targets.md"))
    args = p.parse_args(argv)
    try:
        text = judge()
    except TargetsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
