"""Q1 of the homework: diffusion models, theory and implementation on the sprites.

Every measured number in the prose goes through ``r.num`` (report/numbers.py): it comes from this run's JSON or
from the committed results a part reuses, never from typing. Figures and tables are referred to by label.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from report import claims
from report.answers import THEORY
from report.homework import ROOT, THEORY_QUESTIONS, Homework, rel


def theory(hw: Homework) -> None:
    """Q1 theory 1-5: docs/theory.md's items 1 to 5, each after its direct answer; ES-DDPM's measurement."""
    for n in (1, 2, 3, 4):
        hw.theory_answer(n, THEORY[THEORY_QUESTIONS[n]])
    body = hw.theory[5][1]
    derivation, pipeline = body.split("**The pipeline.**", 1)
    pipeline = pipeline.split("**Measured.**", 1)[0]
    hw.theory_answer(5, THEORY["Q1 theory 5"], derivation)
    hw.checks.append(("Q1 theory 5, the pipeline", pipeline.strip()))
    es_ddpm_measured(hw)


def es_ddpm_measured(hw: Homework) -> None:
    """Q1 theory 5's measurement on this report's model, from the committed experiments.es_ddpm results (when they are
    this model's): the table without wall times, and a reading computed from its rows."""
    info = hw.committed("es_ddpm")
    if info is None:
        hw.r.text(f"ES-DDPM has not been measured on this model: `python -m {module_of('es_ddpm')} --pipeline "
                  f"{rel(hw.pipeline)}` measures it.")
        return
    r, num = hw.r, hw.r.num
    rows = [x for x in info["rows"] if x["prior"] is not None or x["t_prime"]]
    table = [{"setting": x["setting"].replace("ES-DDPM ", ""), "T'": x["t_prime"], "UNet calls": x["unet_calls"],
              "CPU s": f"{x['cpu_s']:.1f}", "sprite-FID": f"{x['sprite_fid']:.3f}",
              "sprite-KID": f"{x['sprite_kid']:.4f}"} for x in rows]
    machine = info.get("machine") or {}
    busy = (machine.get("load_average") or [0])[0] > (machine.get("cpu_count") or 1)
    if not busy:
        for row, x in zip(table, rows, strict=True):
            row["wall s"] = f"{x['wall_s']:.1f}"
    tab = r.table(table, f"ES-DDPM against its start step T': sprite-FID and KID of {info['num_images']} samples "
                  "per setting against 894 of the real sprites, all from seed 0; the last row is DDPM from noise "
                  "on the same seeds." + (" CPU seconds only: the run shared its machine (@tab:machines), so its "
                                          "wall times include waiting for the CPU." if busy else ""),
                  info["command"], label="es-ddpm")
    hw.source(tab, "docs/figures/es_ddpm/results.json", info)
    ddpm = next((x for x in rows if x["prior"] is None), None)
    parts = []
    for prior in dict.fromkeys(x["prior"] for x in rows if x["prior"] is not None):
        steps = sorted((x for x in rows if x["prior"] == prior and x["t_prime"]), key=lambda x: x["t_prime"])
        points = [(f"T' = {x['t_prime']}", x["sprite_fid"]) for x in steps]
        parts.append(f"with the {PRIORS.get(prior, prior)}, sprite-FID {claims.trend(points, num)}")
    text = f"Measured (@tab:es-ddpm): {'; '.join(parts)}."
    es = [x for x in rows if x["prior"] is not None and x["t_prime"]]
    if es and ddpm is not None:
        best = claims.best_of(es, lambda x: x["sprite_fid"])
        text += (f" The best ES-DDPM setting, {best['setting'].replace('ES-DDPM ', '')} with {best['unet_calls']} "
                 f"UNet calls, has a sprite-FID {claims.comparison(best['sprite_fid'], ddpm['sprite_fid'])} DDPM's "
                 f"from noise with {ddpm['unet_calls']} ({num(best['sprite_fid'], '.3f')} against "
                 f"{num(ddpm['sprite_fid'], '.3f')}), so on this model and with these priors ES-DDPM "
                 f"{'pays' if best['sprite_fid'] <= ddpm['sprite_fid'] else 'does not pay'}.")
    r.text(text)


def module_of(study: str) -> str:
    """The module of a study: experiments/ holds the studies, bench/ the benchmarks."""
    return f"experiments.{study}" if (ROOT / "experiments" / f"{study}.py").is_file() else f"bench.{study}"


PRIORS = {"ddim": "DDIM prior (a 10-step DDIM sample)", "gaussian": "per-pixel Gaussian prior"}


def schedule(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    cmd = hw.run("python", "-m", "report.figures", "schedule", "--out", rel(hw.work))
    sch = hw.json("schedule.json")
    hw.question("Q1 implementation 1",
                f"`pipelines.schedule.make_scheduler` builds diffusers' `DDPMScheduler` with beta_t linear from "
                f"{num(sch['beta_1'], '.4g')} to {num(sch['beta_T'], '.4g')} over T = {sch['T']} steps, "
                f"alpha_t = 1 - beta_t and alpha_bar_t their running product (@fig:schedule). At t = T, "
                f"alpha_bar_T = {num(sch['alpha_bar_T'], '.4f')}, so x_T still holds sqrt(alpha_bar_T) = "
                f"{num(sch['sqrt_alpha_bar_T'], '.3f')} of the image: the chain does not quite reach pure noise, "
                "which is why the law x_T is drawn from matters (@app:prior).")
    fig = r.figure(hw.work / "schedule.png", "The course's schedule: beta_t linear over T steps (left); alpha_t, "
                   "alpha_bar_t and sqrt(alpha_bar_t), the share of the image left in x_t (right).", cmd,
                   label="schedule")
    hw.source(fig, rel(hw.out_results / "schedule.json"))


def forward(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    cmd = hw.run("python", "-m", "report.figures", "forward", "--out", rel(hw.work))
    fw = hw.json("forward.json")
    gap = [abs(c - p) for c, p in zip(fw["correlation_with_x0"], fw["predicted_correlation"], strict=True)]
    rows = [{"t": t, "sqrt(alpha_bar_t)": f"{s:.3f}", "correlation of x_t with x_0": f"{c:.3f}",
             "closed form": f"{p:.3f}"} for t, c, p, s in zip(fw["timesteps"], fw["correlation_with_x0"],
                                                               fw["predicted_correlation"], fw["sqrt_alpha_bar"],
                                                               strict=True)]
    hw.question("Q1 implementation 2",
                "`pipelines.schedule.perturb_input(x_0, t, eps)` returns sqrt(alpha_bar_t) x_0 + sqrt(1 - "
                "alpha_bar_t) eps for a batch of steps at once, the one-shot law of Q1 theory 1 (@fig:forward). "
                "For pixels of standard deviation s, the correlation of x_t with x_0 is sqrt(alpha_bar_t) s / "
                "sqrt(alpha_bar_t s^2 + 1 - alpha_bar_t); with the sprites' s = "
                f"{num(fw['x0_std'], '.3f')}, the measured correlations differ from it by "
                f"{claims.at_most(gap, num)} (@tab:forward). At t = T the sprites are no longer visible, though "
                "a trace of the image is still in x_T.")
    fig = r.figure(hw.work / "forward.png", "perturb_input on 8 sprites, one row per t, the same eps in every row.",
                   cmd, label="forward")
    tab = r.table(rows, "The correlation of x_t with x_0 over the 8 sprites of @fig:forward, against its closed "
                  "form.", cmd, label="forward")
    hw.source(f"{fig}, {tab}", rel(hw.out_results / "forward.json"))


def training(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    card = hw.pipeline / "training"
    rows = [json.loads(line) for line in (card / "stats.jsonl").read_text().splitlines() if line.strip()]
    cfg = yaml.safe_load((card / "config.yaml").read_text())
    simple = (cfg.get("loss_weighting") or "none") == "none"
    loss = ("L_simple, the plain epsilon-prediction MSE of Ho et al. (eq. 14), with t uniform" if simple else
            f"the epsilon-prediction MSE weighted by min(SNR_t, gamma) / SNR_t with gamma = "
            f"{num(cfg['min_snr_gamma'], 'g')} (min-SNR weighting, Hang et al. 2023), not the course's L_simple")
    cmd = hw.run("python", "-m", "report.figures", "loss", "--pipeline", rel(hw.pipeline), "--out", rel(hw.work))
    first = next(x for x in rows if x["step"] >= 100)
    hw.question("Q1 implementation 3",
                f"`training/train.py` trained the UNet ({', '.join(map(str, cfg['unet']['block_out_channels']))} "
                f"channels, attention at 8x8) for {rows[-1]['step']:,} steps of {cfg['train_batch_size']} sprites "
                f"with {loss}, AdamW (learning rate {num(cfg['learning_rate'], 'g')}, warm-up and cosine decay) and "
                f"an EMA of the weights, in {rows[-1]['time_s'] / 60:.0f} min on 2 CPU cores (@fig:loss). The loss "
                f"falls from {num(first['loss'], '.3f')} at step {first['step']} to {num(rows[-1]['loss'], '.4f')} "
                f"at the end ({claims.at_most([x['loss'] for x in rows[len(rows) // 2:]], num, 3)} over the "
                "second half of training): the first few hundred steps learn most of it.")
    fig = r.figure(hw.work / "loss.png", f"Training loss against step (bottom axis) and training time (top axis): "
                   f"{'L_simple (epsilon MSE)' if simple else 'the weighted epsilon MSE'}, log scale, from the "
                   "model's training record.", cmd, label="loss")
    hw.source(fig, f"{rel(card)}/stats.jsonl", {"date": "the model's training run (its machine: training/log.txt)"})


def ddpm_sampling(hw: Homework) -> None:
    r, s, p, num = hw.r, hw.s, rel(hw.pipeline), hw.r.num
    n = s["grid_images"]
    if s["no_noise_images"] != n:
        raise ValueError("configs/report.yaml: no_noise_images must equal grid_images (the DDPM grid is the "
                         "no-noise figure's run with the noise)")
    cmd = hw.run("python", "-m", "report.figures", "no-noise", "--pipeline", p, "--n", str(n),
                 *hw.ddpm_steps("--ddpm_steps"), "--threads", str(s["threads"]), "--grid",
                 rel(hw.work / "ddpm_grid.png"), "--out", rel(hw.work))
    nn = hw.json("no_noise.json")
    with_z, without = nn["noise_scale_1"], nn["noise_scale_0"]
    spread = claims.comparison(without["pixel_std"], with_z["pixel_std"])
    fid = claims.comparison(with_z["sprite_fid"], without["sprite_fid"])
    hw.question("Q1 implementation 4",
                f"`SpritesDDPMPipeline` runs Algorithm 2 of Ho et al. (2020): x_T from N(0, I), then for t = T, "
                "..., 1, x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + "
                f"sigma_t z with sigma_t^2 = beta_t (@fig:ddpm-grid). The term sigma_t z makes each step a draw from "
                "the Gaussian p(x_{t-1} | x_t) instead of its mean; without it every step averages over all the "
                "images still compatible with x_t, and the chain becomes a smoother rather than a sampler. "
                f"Measured on {without['n']} samples from the same x_T (@fig:no-noise): without the noise the mean "
                f"pixel standard deviation of a sprite is {spread} with it ({num(without['pixel_std'], '.3f')} "
                f"against {num(with_z['pixel_std'], '.3f')}), and the sprite-FID with the noise is {fid} without "
                f"({num(with_z['sprite_fid'], '.2f')} against {num(without['sprite_fid'], '.2f')}).")
    fig = r.figure(hw.work / "ddpm_grid.png", f"{n} sprites from the DDPM pipeline (all "
                   f"{s.get('ddpm_steps') or 500} steps, sigma_t^2 = beta_t, x_T from N(0, I)), seed 0.", cmd,
                   label="ddpm-grid")
    fig2 = r.figure(hw.work / "no_noise.png", "The same starts with Algorithm 2 as written (top) and with the "
                    "sigma_t z term removed from every step (bottom).", cmd, label="no-noise")
    hw.source(f"{fig}, {fig2}", rel(hw.out_results / "no_noise.json"))


def ddim_sampling(hw: Homework) -> None:
    r, s, p = hw.r, hw.s, rel(hw.pipeline)
    n = s["grid_images"]
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                 str(s["ddim_steps"]), "--num_images", str(n), "--no_caption", "--out",
                 rel(hw.work / "ddim_grid.png"))
    cmd2 = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                  str(s["ddim_steps"]), "--prior", "moments", "--num_images", str(n), "--out",
                  rel(hw.work / "ddim_moments_grid.png"), "--no_caption")
    hw.question("Q1 implementation 5",
                f"`SpritesDDIMPipeline` runs eq. 12 of Song et al. (2021) on {s['ddim_steps']} of the {500} steps "
                "(trailing spacing): it predicts x_0 from eps_theta, then moves to the next step along the same "
                "noise direction, with eta = 0 adding no fresh noise (@fig:ddim-grid). Being deterministic, it maps "
                "each x_T to one sprite, so it depends on the law of x_T more than DDPM does: @fig:ddim-moments-grid "
                "starts the same sampler from the Gaussian with the mean and covariance of the noised data at T "
                "(@app:prior).")
    r.figure(hw.work / "ddim_grid.png", f"{n} sprites from the DDIM pipeline (eta = 0, {s['ddim_steps']} steps), "
             "x_T from N(0, I) with the same z as the DDPM grid, seed 0.", cmd, label="ddim-grid")
    r.figure(hw.work / "ddim_moments_grid.png", "The same DDIM sampler and z, with x_T drawn from the data's "
             "Gaussian at T (pipelines/prior.py) instead of N(0, I).", cmd2, label="ddim-moments-grid")


def timing_command(hw: Homework) -> tuple[str, ...]:
    """The course's timing: the report runs it first, alone, so nothing else of the report shares the CPU."""
    s = hw.s
    return ("python", "-m", "bench.sampling_time", "--pipeline", rel(hw.pipeline), "--num_images",
            str(s["timing_images"]), "--repeats", str(s["timing_repeats"]), "--ddim_steps", str(s["ddim_steps"]),
            *hw.ddpm_steps("--ddpm_steps"), "--threads", str(s["timing_threads"]), "--no_stock",
            "--json", rel(hw.work / "timing.json"))


def fid_command(hw: Homework) -> tuple[str, ...]:
    """The FID run, the longest part: the report starts it in the background after the timing."""
    s = hw.s
    return ("python", "-m", "bench.fid_vs_steps", "--pipeline", rel(hw.pipeline), "--num_images",
            str(s["fid_images"]), "--batch_size", str(s["fid_batch_size"]), "--ddim_steps",
            *map(str, s["fid_ddim_steps"]), "--threads", str(s["threads"]), *hw.ddpm_steps("--ddpm_steps"),
            "--out", rel(hw.work / "fid"), "--overwrite")


def timing(hw: Homework) -> None:
    r, s, num = hw.r, hw.s, hw.r.num
    n = s["timing_images"]
    cmd = hw.run(*timing_command(hw))
    timing = hw.json("timing.json")
    rows = {row["sampler"]: row for row in timing["wall"]["rows"]}
    ddpm, ddim = rows["ddpm"], rows["ddim"]
    speed = next(x for x in timing["wall"]["speedups"] if x["ddim"] == ddim["setting"])
    ratio = speed["ours"]["speedup"] / speed["step_ratio"]
    cost = timing["sampler_cost_ms_per_step"]
    own = max(100 * cost[row["setting"]]["ours"] / (1e3 * row["median_s"]["bare"] / row["steps"])
              for row in (ddpm, ddim))
    beyond = max(abs(row["ours_over_bare_pct"]) for row in (ddpm, ddim)) > own
    noise = ": the rest of the differences is the timing noise of a single run" if beyond else ""
    hw.question("Q1 implementation 6",
                f"Sampling {n} sprites took {num(ddpm['median_s']['ours'], '.1f')} s with DDPM's {ddpm['steps']} "
                f"steps and {num(ddim['median_s']['ours'], '.1f')} s with DDIM's {ddim['steps']} (@tab:timing), "
                f"one run each as the course's `%timeit -r 1`: DDIM was {num(speed['ours']['speedup'], '.1f')} times "
                f"faster, {num(100 * ratio, '.0f')}% of the ratio of the step counts, "
                f"{num(speed['step_ratio'], '.0f')}. The network is nearly all of the cost: against a loop of the "
                "same network calls alone, the pipelines took "
                f"{num(ddpm['ours_over_bare_pct'], '+.1f')}% (DDPM) and {num(ddim['ours_over_bare_pct'], '+.1f')}% "
                f"(DDIM) more, while their own work, timed with a stub network, is {claims.at_most([own], num)}% "
                f"of a network call per step{noise}.")
    table = [{"sampler": x["setting"], "network calls only (s)": f"{x['median_s']['bare']:.2f}",
              "pipeline (s)": f"{x['median_s']['ours']:.2f}", "difference": f"{x['ours_over_bare_pct']:+.1f}%"}
             for x in (ddpm, ddim)]
    tab = r.table(table, f"Wall time of sampling the same {n} sprites with DDPM and DDIM, one run each, "
                  f"{claims.load_note(timing.get('machine'), num)}: the pipeline, and a loop of the same network "
                  "calls alone.", cmd, label="timing")
    hw.source(tab, rel(hw.out_results / "timing.json"), timing)


def fid(hw: Homework) -> None:
    r, s, num = hw.r, hw.s, hw.r.num
    out = hw.work / "fid"
    cmd = hw.run(*fid_command(hw))
    res = json.loads((out / "results.json").read_text())
    n, real = s["fid_images"], res["floor"]
    by = {x["name"]: x for x in res["rows"]}
    ddpm = next(v for k, v in by.items() if k.startswith("DDPM"))
    eta0 = sorted((v for v in res["rows"] if v["sampler"] == "ddim" and not v.get("eta")), key=lambda v: v["steps"])
    eta1 = sorted((v for v in res["rows"] if v["sampler"] == "ddim" and v.get("eta")), key=lambda v: v["steps"])
    f = fid_of
    inception = standard_fid(hw, res["rows"])
    text = (f"At N = {n} per sampler, with x_T from N(0, I) as in the course, DDPM-{ddpm['steps']} reaches "
            f"sprite-FID {num(f(ddpm), '.3f')} (@tab:fid)")
    if eta0:
        last = eta0[-1]
        text += (f", and deterministic DDIM-{last['steps']} {num(f(last), '.3f')}, "
                 f"{num(f(last) / f(ddpm), '.1f')} times DDPM's")
    text += (f". Two sets of {n} real sprites already score {num(real['sprite_fid'], '.3f')} against each other: at "
             "this N every estimate carries a bias of that size, so only differences well above it count. "
             + standard_fid_note(hw, bool(inception)))
    hw.question("Q1 implementation 7", text)
    rows = [fid_row(x) for x in res["rows"]]
    if inception:
        for row, x in zip(rows, res["rows"], strict=True):
            row["Inception FID"] = f"{inception[x['name']]:.2f}" if x["name"] in inception else ""
    rows.append({"setting": "real sprites (other half)", "NFE": "", "sprite-FID": f"{real['sprite_fid']:.3f}",
                 "KID": f"{real['sprite_kid']:.4f}", "precision": f"{real['precision']:.2f}",
                 "recall": f"{real['recall']:.2f}", "class mix off by (points)": "0.0",
                 "near-copies": "5%"})
    tab = r.table(rows, f"{n} samples per sampler, x_T from N(0, I), scored against 894 of the 1,788 sprites (the "
                  "model trained on all of them); the last row is the other 894 real sprites. The columns are "
                  "defined in @app:glossary; near-copies is 5% for real data.", cmd, label="fid")
    hw.source(tab, rel(hw.out_results / "fid" / "results.json"), res)
    parts = []
    if eta0 and eta1:
        last = eta0[-1]
        same = next((v for v in eta1 if v["steps"] == last["steps"]), eta1[-1])
        parts.append(f"At {same['steps']} steps, stochastic DDIM (eta = 1) has a sprite-FID "
                     f"{claims.comparison(f(same), f(last))} deterministic DDIM's at this N "
                     f"({num(f(same), '.3f')} against {num(f(last), '.3f')})")
    share = 100 * ddpm["memorisation"]["pixel"]["share_below_real_quantile"]["0.05"]
    parts.append(f"{num(share, '.1f')}% of DDPM's samples are near-copies, "
                 f"{'more than' if share > 5 else 'no more than'} the 5% of real sprites")
    r.text(". ".join(parts) + ".")
    committed_priors(hw, eta0, eta1)


def standard_fid_available() -> Path | None:
    """pytorch-fid's Inception weights where pytorch-fid finds them, when pytorch-fid is installed: then the report
    computes standard FID with it; else None (nothing is ever downloaded)."""
    from importlib.util import find_spec

    from evaluation.inception import InceptionWeightsNotFound, find_fid_inception_weights

    if find_spec("pytorch_fid") is None:
        return None
    try:
        return find_fid_inception_weights()
    except InceptionWeightsNotFound:
        return None


def parse_pytorch_fid(output: str) -> float:
    """The number of ``python -m pytorch_fid``'s ``FID:  12.34`` line."""
    m = re.search(r"^FID:\s*([-+0-9.eE]+)\s*$", output, re.M)
    if m is None:
        raise ValueError(f"no 'FID: <number>' line in pytorch-fid's output: {output[-200:]!r}")
    return float(m.group(1))


def standard_fid(hw: Homework, rows: list[dict]) -> dict[str, float]:
    """Inception FID (pytorch-fid) of DDPM's and of DDIM's samples of the FID table, from the same seed and N,
    against all the real sprites; empty when pytorch-fid or its weights are not on this machine."""
    if standard_fid_available() is None:
        return {}
    folder, s, out = hw.work / "fid_png", hw.s, {}
    hw.run("python", "-m", "evaluation.export", "--real", rel(folder / "real"), "--overwrite")
    for x in rows:
        if x["sampler"] == "ddim" and x.get("eta"):
            continue
        dest = folder / x["slug"]
        hw.run("python", "-m", "evaluation.export", "--generated", rel(dest), "--generated_from", rel(hw.pipeline),
               "--sampler", x["sampler"], "--steps", str(x["steps"]), "--num_images", str(s["fid_images"]),
               "--seed", "0", "--overwrite")
        args = ("python", "-m", "pytorch_fid", rel(folder / "real"), rel(dest), "--device", "cpu")
        hw.run(*args)
        out[x["name"]] = parse_pytorch_fid(hw.run.output[args])
    return out


def standard_fid_note(hw: Homework, measured: bool) -> str:
    """The one line on standard FID: measured here (pytorch-fid and its weights are on this machine), or why
    sprite-FID stands in and the command for the standard number."""
    if measured:
        return ("The table's Inception FID column is pytorch-fid's standard FID of the same samples against all "
                "1,788 sprites (biased upwards at this N, far below the 2,048 features).")
    return ("Standard FID needs Inception-v3 weights, which this offline machine cannot download, so the sprite-FID "
            "of a network trained on the sprites stands in (@app:glossary); on a connected machine, "
            "`python -m evaluation.export --real fid/real && python -m evaluation.export --generated fid/ddpm "
            f"--generated_from {rel(hw.pipeline)} --sampler ddpm --num_images 1788 && python -m pytorch_fid "
            "fid/real fid/ddpm --device cpu` gives it, and this report then adds it to the table.")


def fid_of(row: dict) -> float:
    return row["vs_half_b"]["sprite_fid"]


def fid_row(x: dict) -> dict:
    """A compact row of the FID table (the full one, with timing and more columns, is in commands.log)."""
    v = x["vs_half_b"]
    return {"setting": x["name"], "NFE": x["steps"], "sprite-FID": f"{v['sprite_fid']:.3f}",
            "KID": f"{v['sprite_kid']:.4f}", "precision": f"{v['precision']:.2f}", "recall": f"{v['recall']:.2f}",
            "class mix off by (points)": f"{v['class_gap_points']:.1f}",
            "near-copies": f"{100 * x['memorisation']['pixel']['share_below_real_quantile']['0.05']:.1f}%"}


def committed_priors(hw: Homework, eta0: list[dict], eta1: list[dict]) -> None:
    """The N = 1,000 comparison of the prior at T (hours of CPU), from the committed results when they are this
    model's: DDPM and DDIM from N(0, I) and from the data's Gaussian at T, like with like."""
    r, num = hw.r, hw.r.num
    info = hw.committed("priors")
    if info is None:
        r.text("The N = 1,000 comparison of the prior at T has not been measured on this model: `python -m "
               "bench.sampler_frontier --config configs/bench/priors.yaml` measures it.")
        return
    keep = [x for x in info["rows"] if prior_of(x) in ("standard", "moments") and x["nfe"] in (10, 50, 100, 500)]
    rows = [{"sampler": setting_name(x), "prior": "N(0, I)" if prior_of(x) == "standard" else "data's Gaussian",
             "NFE": x["nfe"], "sprite-FID": f"{x['scores']['sprite_fid']:.3f}",
             "precision": f"{x['scores']['precision']:.2f}", "recall": f"{x['scores']['recall']:.2f}"}
            for x in keep]
    cmd = info.get("command") or "python -m bench.sampler_frontier --config configs/bench/priors.yaml"
    tab = r.table(rows, f"The same comparison at N = 1,000 per setting, from N(0, I) and from the data's Gaussian at T "
                  f"(a run of its own, measured {info['date']}: @tab:machines).", cmd, label="priors")
    hw.source(tab, "docs/figures/priors/results.json", info)
    get = {(x["sampler"], x["nfe"], prior_of(x), (x["kwargs"] or {}).get("eta")): x["scores"]["sprite_fid"]
           for x in keep}
    d_std, d_mom = get[("ddpm", 500, "standard", None)], get[("ddpm", 500, "moments", None)]
    i_std, i_mom = get[("ddim", 50, "standard", 0.0)], get[("ddim", 50, "moments", 0.0)]
    text = (f"At N = 1,000 (@tab:priors), DDIM-50 (eta = 0) has {num(i_std / d_std, '.2f')} times DDPM-500's "
            f"sprite-FID from N(0, I) ({num(i_std, '.3f')} against {num(d_std, '.3f')}) and "
            f"{num(i_mom / d_mom, '.2f')} times from the data's Gaussian ({num(i_mom, '.3f')} against "
            f"{num(d_mom, '.3f')}): the better prior divides DDIM's distance by {num(i_std / i_mom, '.1f')} and "
            f"DDPM's by {num(d_std / d_mom, '.1f')}, as a deterministic chain carries the error of its start to "
            "the end (@app:prior).")
    e1 = get.get(("ddim", 50, "standard", 1.0))
    if e1 is not None:
        text += (f" Here stochastic DDIM-50 (eta = 1) from N(0, I) has a sprite-FID "
                 f"{claims.comparison(e1, i_std)} eta = 0's ({num(e1, '.3f')} against {num(i_std, '.3f')})")
        at50 = [fid_of(v) for rows in (eta1, eta0) for v in rows if v["steps"] == 50]
        if len(at50) == 2:
            small, big = claims.comparison(*at50), claims.comparison(e1, i_std)
            text += (f", as at N = {hw.s['fid_images']}" if small == big else
                     f", where at N = {hw.s['fid_images']} it was {small}: the smaller sample is the one to doubt")
        text += "."
    r.text(text)


def fast_samplers(hw: Homework) -> None:
    """Appendix: the fast samplers at N = 1,000, from the committed results when they are this model's."""
    r, num = hw.r, hw.r.num
    info = hw.committed("sampling")
    if info is None:
        return
    r.appendix("fast samplers", "fast")
    cmd = info.get("command") or "python -m bench.sampler_frontier --config configs/bench/frontier.yaml"
    best = best_per_nfe(info["rows"])
    rows = [{"NFE": x["nfe"], "best setting": display_name(setting_name(x)),
             "sprite-FID": f"{x['scores']['sprite_fid']:.3f}", "precision": f"{x['scores']['precision']:.2f}",
             "recall": f"{x['scores']['recall']:.2f}"} for x in best]
    tab = r.table(rows, f"The best setting at each number of UNet calls (NFE), x_T from the data's Gaussian at T, "
                  f"among the {len(info['rows'])} settings of a run of its own (measured {info['date']}), 1,000 "
                  "samples each.", cmd, label="fast")
    fcmd = hw.run("python", "-m", "report.figures", "frontier", "--results", "docs/figures/sampling/results.json",
                  "--out", rel(hw.work))
    fig = r.figure(hw.work / "frontier.png", "sprite-FID against NFE for every setting of the same run, this "
                   "package's samplers (left) and diffusers' schedulers (right), log axes.", fcmd,
                   label="frontier")
    hw.source(f"{tab}, {fig}", "docs/figures/sampling/results.json", info)
    ref = next(x for x in info["rows"] if x["sampler"] == "ddpm" and prior_of(x) == "moments")
    few = [x for x in best if x["nfe"] <= 10 and x["sampler"] != "ddpm"]
    if few:
        top = claims.best_of(few, lambda x: x["scores"]["sprite_fid"])
        r.text(f"Within 10 UNet calls (@tab:fast, {fig}), the best setting, {display_name(setting_name(top))} at "
               f"{top['nfe']}, reaches sprite-FID {num(top['scores']['sprite_fid'], '.3f')}, "
               f"{num(top['scores']['sprite_fid'] / ref['scores']['sprite_fid'], '.2f')} times DDPM-500's from the "
               f"same prior ({num(ref['scores']['sprite_fid'], '.3f')}), with "
               f"{num(ref['nfe'] / top['nfe'], '.0f')} times fewer calls.")


def display_name(label: str) -> str:
    """A setting's label as the report prints it (diffusers' schedulers by that name)."""
    return label.replace("stock ", "diffusers' ")


def setting_name(row: dict) -> str:
    """A frontier row's label without its prior (the table says which prior)."""
    return row["label"].rsplit(",", 1)[0] if row["label"].endswith(", " + prior_of(row)) else row["label"]


def prior_of(row: dict) -> str:
    return (row["kwargs"] or {}).get("prior", "standard")


def best_per_nfe(rows: list[dict]) -> list[dict]:
    """The row with the lowest sprite-FID at each NFE, among the moments-prior rows."""
    best: dict[int, dict] = {}
    for x in rows:
        if prior_of(x) == "moments" and (x["nfe"] not in best or
                                          x["scores"]["sprite_fid"] < best[x["nfe"]]["scores"]["sprite_fid"]):
            best[x["nfe"]] = x
    return [best[k] for k in sorted(best)]
