"""Q1 of the homework: diffusion models, theory and implementation on the sprites.

Every measured number in the prose goes through ``r.num`` (report/numbers.py): it comes from this run's JSON or
from the committed results a part reuses, never from typing. Figures and tables are referred to by label.
"""

from __future__ import annotations

import json

import yaml

from report.homework import ROOT, Homework, pipeline_hash, rel

THEORY_DOC = "docs/theory.md"


def theory(hw: Homework) -> None:
    hw.r.heading("Q1. Diffusion models: theory")
    hw.r.text(f"The answers below are items 1 to 5 of {THEORY_DOC} (one source for the project's docs and this "
              "report), each linked to the test that checks it with the package's own code.")
    for n, q in zip((1, 2, 3, 4, 5), ("Q1.1", "Q1.2", "Q1.3", "Q1.4", "Q1.5"), strict=True):
        hw.theory_answer(n, q)
    es_ddpm_measured(hw)


def es_ddpm_measured(hw: Homework) -> None:
    """Q1.5's measurement on the reported model, from the committed experiments.es_ddpm results (when they are its)."""
    result = ROOT / "docs" / "figures" / "es_ddpm" / "results.json"
    if not result.is_file():
        return
    info = json.loads(result.read_text())
    if info.get("pipeline", {}).get("unet_sha256_16") != pipeline_hash(hw.pipeline):
        hw.r.text("The ES-DDPM measurement of docs/figures/es_ddpm/ was made on another model than the one this "
                  "report is about, so it is not quoted here (`python -m experiments.es_ddpm` remakes it).")
        return
    r, num = hw.r, hw.r.num
    cmd = info["command"]
    r.table(info["table_markdown"], f"ES-DDPM against its start step T' on the reported model: sprite-FID and KID "
            f"of {info['num_images']} samples against real half B, from the committed "
            f"docs/figures/es_ddpm/results.json (measured {info['date']}).", cmd, label="es-ddpm")
    rows = [x for x in info["rows"] if x["prior"] is not None or x["t_prime"]]
    ddpm = next((x for x in rows if x["prior"] is None), None)
    best = min((x for x in rows if x["prior"] is not None and x["t_prime"]), key=lambda x: x["sprite_fid"])
    text = (f"Measured (@tab:es-ddpm): the best ES-DDPM setting, {best['setting']}, reaches sprite-FID "
            f"{num(best['sprite_fid'], '.3f')} with {best['unet_calls']} UNet calls")
    if ddpm is not None:
        text += (f", against {num(ddpm['sprite_fid'], '.3f')} for DDPM from noise with {ddpm['unet_calls']}, on the "
                 "same seeds and the same N")
    r.text(text + ".")


def schedule(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    r.heading("Q1. Diffusion models: implementation")
    r.subheading("1. The linear noise schedule")
    cmd = hw.run("python", "-m", "report.figures", "schedule", "--out", rel(hw.work))
    sch = hw.json("schedule.json")
    fig = r.figure(hw.work / "schedule.png", "The course's schedule: beta_t linear over T steps (left); alpha_t = "
                   "1 - beta_t, alpha_bar_t = prod alpha_s and sqrt(alpha_bar_t), the share of the image left in "
                   "x_t (right).", cmd, label="schedule")
    r.text(f"beta runs from {num(sch['beta_1'], '.4g')} to {num(sch['beta_T'], '.4g')} over T = {sch['T']} steps "
           f"({fig}; pipelines/schedule.py: diffusers' DDPMScheduler with beta_schedule='linear'). At t = T the "
           f"product alpha_bar_T is {num(sch['alpha_bar_T'], '.4f')}, so x_T still holds sqrt(alpha_bar_T) = "
           f"{num(sch['sqrt_alpha_bar_T'], '.3f')} of the image: the chain does not quite reach pure noise, which "
           "is why the distribution x_T is drawn from (the prior at T) matters (section 7).")


def forward(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    r.subheading("2. The forward process in one step: perturb_input")
    cmd = hw.run("python", "-m", "report.figures", "forward", "--out", rel(hw.work))
    fw = hw.json("forward.json")
    rows = ", ".join(f"t = {t}: {num(c, '.2f')} (sqrt(alpha_bar_t) = {num(s, '.2f')})" for t, c, s in
                     zip(fw["timesteps"], fw["correlation_with_x0"], fw["sqrt_alpha_bar"], strict=True))
    fig = r.figure(hw.work / "forward.png", "perturb_input(x_0, t, eps) = sqrt(alpha_bar_t) x_0 + sqrt(1 - "
                   "alpha_bar_t) eps on 8 sprites, one row per t, the same eps in every row.", cmd, label="forward")
    r.text("x_t is drawn in one shot from q(x_t | x_0) (Q1.1; tests/test_noise.py checks it against t single "
           f"steps). In {fig} the correlation of x_t with x_0 falls with t: {rows}. It follows sqrt(alpha_bar_t) "
           "divided by the standard deviation of x_t: at t = T the sprites are no longer visible, though their mean "
           "colour is still in x_T.")


def training(hw: Homework) -> None:
    r, num = hw.r, hw.r.num
    r.subheading("3. Training")
    card = hw.pipeline / "training"
    rows = [json.loads(line) for line in (card / "stats.jsonl").read_text().splitlines() if line.strip()]
    cfg = yaml.safe_load((card / "config.yaml").read_text())
    loss = ("the epsilon-prediction MSE weighted by min(SNR_t, gamma) / SNR_t with gamma = "
            f"{num(cfg['min_snr_gamma'], 'g')} (min-SNR weighting, Hang et al. 2023)"
            if cfg.get("loss_weighting") == "min_snr" else "the plain epsilon-prediction MSE (Ho et al. eq. 14)")
    cmd = "accelerate launch --quiet --config_file accelerate_config.yaml training/train.py --config " \
          "configs/sprites_ddpm.yaml"
    fig = r.figure(card / "loss.png", f"Training loss (log scale) of the reported model against steps and training "
                   f"time: {loss}. From its training record, {rel(card)}/stats.jsonl.", cmd, label="loss")
    first = next(x for x in rows if x["step"] >= 100)
    r.text(f"The UNet ({', '.join(map(str, cfg['unet']['block_out_channels']))} channels, attention at 8x8) "
           f"was trained for {rows[-1]['step']:,} steps of {cfg['train_batch_size']} sprites with AdamW "
           f"(learning rate {num(cfg['learning_rate'], 'g')}, warm-up and cosine decay), an EMA of the weights and "
           f"{loss}, in {rows[-1]['time_s'] / 60:.0f} min on this machine ({fig}). The loss falls from "
           f"{num(first['loss'], '.3f')} at step {first['step']} to {num(rows[-1]['loss'], '.4f')}: most of the "
           "fall is in the first few hundred steps; the rest is the slow part of the fit that sample quality "
           "depends on (docs/training.md).")


def sampling(hw: Homework) -> None:
    r, s, p, num = hw.r, hw.s, rel(hw.pipeline), hw.r.num
    r.subheading("4. Sampling with DDPM (Algorithm 2)")
    n = s["grid_images"]
    if s["no_noise_images"] != n:
        raise ValueError("configs/report.yaml: no_noise_images must equal grid_images (the DDPM grid is the "
                         "no-noise figure's run with the noise)")
    cmd = hw.run("python", "-m", "report.figures", "no-noise", "--pipeline", p, "--n", str(n),
                 *hw.ddpm_steps("--ddpm_steps"), "--threads", str(s["threads"]), "--grid",
                 rel(hw.work / "ddpm_grid.png"), "--out", rel(hw.work))
    r.figure(hw.work / "ddpm_grid.png", f"{n} sprites from the DDPM pipeline (Ho et al. 2020, Algorithm 2, all "
             "500 steps, sigma_t^2 = beta_t, x_T from N(0, I) as in the course), seed 0.", cmd, label="ddpm-grid")
    nn = hw.json("no_noise.json")
    with_z, without = nn["noise_scale_1"], nn["noise_scale_0"]
    fig = r.figure(hw.work / "no_noise.png", "The same starts with Algorithm 2 as written (top) and with the "
                   "sigma_t z term removed from every step (bottom; noise_scale = 0).", cmd, label="no-noise")
    r.text("Why Algorithm 2 adds sigma_t z. Each reverse step should draw x_{t-1} from p(x_{t-1} | x_t), a "
           "Gaussian whose mean the network predicts; sigma_t z is the draw around that mean. Without it every "
           "step takes the mean of the posterior over x_{t-1}, an average over all the images still compatible "
           "with x_t, and averaging 500 times in a row washes the sample out: the chain is no longer a sampler "
           f"of q(x_0) but a smoother. Measured on {without['n']} samples from the same x_T ({fig}): the mean "
           f"per-sprite pixel standard deviation is {num(with_z['pixel_std'], '.3f')} with the noise and "
           f"{num(without['pixel_std'], '.3f')} without; sprite-FID {num(with_z['sprite_fid'], '.2f')} against "
           f"{num(without['sprite_fid'], '.2f')} (precision {num(with_z['precision'], '.2f')} against "
           f"{num(without['precision'], '.2f')}). The noise also keeps the samples apart: it is what makes DDPM a "
           "stochastic sampler that can recover from its own errors, where a deterministic one carries every "
           "error to the end (docs/theory.md, item 10).")

    r.subheading("5. Sampling with DDIM")
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                 str(s["ddim_steps"]), "--num_images", str(n), "--no_caption", "--out",
                 rel(hw.work / "ddim_grid.png"))
    std = r.figure(hw.work / "ddim_grid.png", f"{n} sprites from the DDIM pipeline (Song et al. 2021, eq. 12, eta "
                   f"= 0, {s['ddim_steps']} steps, trailing spacing), seed 0: the same z as the DDPM grid.", cmd,
                   label="ddim-grid")
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                 str(s["ddim_steps"]), "--prior", "moments", "--num_images", str(n), "--out",
                 rel(hw.work / "ddim_moments_grid.png"), "--no_caption")
    mom = r.figure(hw.work / "ddim_moments_grid.png", "The same DDIM sampler and z, with x_T drawn from the data's "
                   "Gaussian at T (the moments prior, pipelines/prior.py) instead of N(0, I).", cmd,
                   label="ddim-moments-grid")
    sch = hw.json("schedule.json")
    r.text("DDIM with eta = 0 is deterministic: one x_T gives one sprite, so it needs the right x_T distribution. "
           f"The course's schedule leaves sqrt(alpha_bar_T) = {num(sch['sqrt_alpha_bar_T'], '.3f')} of the image "
           f"in x_T; starting from N(0, I) misses that mean and covariance, and the deterministic sampler carries "
           f"the error into every sample ({std}: colour casts, blotches); starting from the data's moment-matched "
           f"Gaussian at T fixes most of it ({mom}; the numbers are in section 7).")


def timing_command(hw: Homework) -> tuple[str, ...]:
    """The course's timing (section 6): the report runs it first, alone, so nothing else shares the CPU."""
    s = hw.s
    return ("python", "-m", "bench.sampling_time", "--pipeline", rel(hw.pipeline), "--num_images",
            str(s["timing_images"]), "--repeats", str(s["timing_repeats"]), "--ddim_steps", str(s["ddim_steps"]),
            *hw.ddpm_steps("--ddpm_steps"), "--threads", str(s["timing_threads"]), "--no_stock",
            "--json", rel(hw.work / "timing.json"))


def fid_command(hw: Homework) -> tuple[str, ...]:
    """The FID run (section 7), the longest part: the report starts it in the background after the timing."""
    s = hw.s
    return ("python", "-m", "bench.fid_vs_steps", "--pipeline", rel(hw.pipeline), "--num_images",
            str(s["fid_images"]), "--batch_size", str(s["fid_batch_size"]), "--ddim_steps",
            *map(str, s["fid_ddim_steps"]), "--threads", str(s["threads"]), *hw.ddpm_steps("--ddpm_steps"),
            "--out", rel(hw.work / "fid"), "--overwrite")


def timing(hw: Homework) -> None:
    r, s, num = hw.r, hw.s, hw.r.num
    r.subheading("6. Sampling time")
    n = s["timing_images"]
    cmd = hw.run(*timing_command(hw))
    timing = hw.json("timing.json")
    rows = {row["sampler"]: row for row in timing["wall"]["rows"]}
    ddpm, ddim = rows["ddpm"], rows["ddim"]
    r.table(timing["wall"]["table_markdown"], f"The course's `%timeit -r 1` of sample_ddpm against sample_ddim: "
                  f"wall time of sampling the same {n} sprites with all {ddpm['steps']} DDPM steps and with "
                  f"{ddim['steps']} DDIM steps, each run in full (median of {s['timing_repeats']}, "
                  f"{s['timing_threads']} torch threads, nothing else running), as a bare loop "
                  "of UNet calls (the floor any sampler pays) and our pipelines on the same model and inputs; below, "
                  "the speed-up of DDIM over DDPM against the ratio of the step counts (diffusers' stock pipelines "
                  "against ours: docs/speed.md).",
                  cmd, label="timing")
    speed = next(x for x in timing["wall"]["speedups"] if x["ddim"] == ddim["setting"])
    cost = timing["sampler_cost_ms_per_step"]
    own = max(100 * cost[row["setting"]]["ours"] / (1e3 * row["median_s"]["bare"] / row["steps"])
              for row in (ddpm, ddim))
    r.text(f"Sampling {n} sprites took {num(ddpm['median_s']['ours'], '.1f')} s with DDPM's {ddpm['steps']} steps "
           f"and {num(ddim['median_s']['ours'], '.1f')} s with DDIM's {ddim['steps']} (@tab:timing): DDIM is "
           f"{num(speed['ours']['speedup'], '.1f')} times faster, against a step ratio of "
           f"{num(speed['step_ratio'], '.0f')}, since the UNet is nearly all of the cost. Measured end to end, our "
           f"pipelines ran {num(ddpm['ours_over_bare_pct'], '+.1f')}% (DDPM) and "
           f"{num(ddim['ours_over_bare_pct'], '+.1f')}% (DDIM) over the bare loop of the same run, one repeat each "
           "as the course's `%timeit -r 1`. Timed alone, with a stub in place of the UNet, the pipelines' own work "
           f"is at most {num(own, '.2f')}% of a UNet call per step (the sampler cost table of the same run, in "
           "commands.log), so whatever part of those differences exceeds that is the machine's timing noise in a "
           "single repeat, not the pipelines' cost (medians of interleaved repeats: `python -m bench.sampling_time`, "
           "docs/speed.md).")


def fid(hw: Homework) -> None:
    r, s, num = hw.r, hw.s, hw.r.num
    r.subheading("7. FID: DDPM against DDIM")
    out = hw.work / "fid"
    cmd = hw.run(*fid_command(hw))
    res = json.loads((out / "results.json").read_text())
    n, floor = s["fid_images"], res["floor"]
    rows = [fid_row(x) for x in res["rows"]]
    rows.append({"setting": "real half A vs half B (floor)", "NFE": "", "sprite-FID": f"{floor['sprite_fid']:.3f}",
                 "KID": f"{floor['sprite_kid']:.4f}", "precision": f"{floor['precision']:.2f}",
                 "recall": f"{floor['recall']:.2f}", "class gap (points)": "0.0", "closer than real q0.05": "5%"})
    r.table(rows, f"{n} samples per sampler, x_T from N(0, I) as in the course, scored against real half B: "
                  "894 of the 1,788 sprites, which the model trained on (it trained on all of them), so these "
                  "numbers reward closeness to the training set, and a model that copied it would score near the "
                  "floor row; the last column (the share of samples closer to a training sprite than 95% of real "
                  "sprites are to their nearest other sprite) is the check for copying. Glossary: sprite-FID, KID, "
                  "precision, recall, class gap.", cmd, label="fid")
    by = {x["name"]: x for x in res["rows"]}
    ddpm = next(v for k, v in by.items() if k.startswith("DDPM"))
    eta0 = sorted((v for v in res["rows"] if v["sampler"] == "ddim" and not v.get("eta")), key=lambda v: v["steps"])
    eta1 = sorted((v for v in res["rows"] if v["sampler"] == "ddim" and v.get("eta")), key=lambda v: v["steps"])
    f = fid_of
    text = (f"In @tab:fid, at N = {n} and from the same prior N(0, I), DDPM-{ddpm['steps']} reaches sprite-FID "
            f"{num(f(ddpm), '.3f')}. Two sets of real sprites of this size already score "
            f"{num(floor['sprite_fid'], '.3f')} against each other (the floor row): at this N every estimate carries "
            "a bias of about that size, so the table resolves only differences well above it; the N = 1,000 tables "
            "below are the comparison to read. ")
    if eta0:
        last = eta0[-1]
        text += (f"Deterministic DDIM (eta = 0) at {last['steps']} steps reaches {num(f(last), '.3f')}, "
                 f"{num(f(last) / f(ddpm), '.1f')} times DDPM's distance")
        if eta1:
            same = next((v for v in eta1 if v["steps"] == last["steps"]), eta1[-1])
            text += f", and stochastic DDIM (eta = 1) at {same['steps']} steps {num(f(same), '.3f')}"
            text += (": lower than eta = 0, as the noise that DDPM and eta = 1 add corrects the error a deterministic "
                     "chain started from the wrong x_T distribution carries to the end (the prior, below)"
                     if f(same) < f(last) else ": no lower than eta = 0 here, so this run does not show the noise "
                     "correcting the deterministic chain's error")
        text += ". "
    share = 100 * ddpm["memorisation"]["pixel"]["share_below_real_quantile"]["0.05"]
    text += (f"The share of samples closer to a training sprite than the real 5% quantile is {num(share, '.1f')}% "
             "for DDPM against 5% for real sprites")
    best = min(res["rows"], key=f)
    text += (": above the real rate, so part of DDPM's lead in this table is closeness to the training set "
             "(docs/ddpm_vs_ddim.md shows the closest pairs)" if share > 5 and best is ddpm else
             " (the memorisation column of every row is in the table; docs/ddpm_vs_ddim.md shows the closest pairs)")
    text += ". FID estimates move with N, so compare rows within one table, not these with the N = 1,000 tables."
    r.text(text)
    committed_tables(hw)


def fid_of(row: dict) -> float:
    return row["vs_half_b"]["sprite_fid"]


def fid_row(x: dict) -> dict:
    """A compact row of the FID table (the full one, with timing and more columns, is in commands.log)."""
    v = x["vs_half_b"]
    return {"setting": x["name"], "NFE": x["steps"], "sprite-FID": f"{v['sprite_fid']:.3f}",
            "KID": f"{v['sprite_kid']:.4f}", "precision": f"{v['precision']:.2f}", "recall": f"{v['recall']:.2f}",
            "class gap (points)": f"{v['class_gap_points']:.1f}",
            "closer than real q0.05": f"{100 * x['memorisation']['pixel']['share_below_real_quantile']['0.05']:.1f}%"}


def committed_tables(hw: Homework) -> None:
    """The N = 1,000 results of the prior and of the fast samplers, read from the committed results (hours of
    CPU), summarised; only when they were measured on the reported model."""
    r, num = hw.r, hw.r.num
    loaded = {}
    for folder in ("priors", "sampling"):
        result = ROOT / "docs" / "figures" / folder / "results.json"
        if result.is_file():
            info = json.loads(result.read_text())
            if info["pipeline"].get("unet_sha256_16") == pipeline_hash(hw.pipeline):
                loaded[folder] = info
    if "priors" in loaded:
        info = loaded["priors"]
        keep = [x for x in info["rows"] if prior_of(x) in ("standard", "moments") and x["nfe"] in (10, 50, 100, 500)]
        rows = [{"sampler": setting_name(x), "prior": prior_of(x), "NFE": x["nfe"],
                 "sprite-FID": f"{x['scores']['sprite_fid']:.3f}", "precision": f"{x['scores']['precision']:.2f}",
                 "recall": f"{x['scores']['recall']:.2f}"} for x in keep]
        cmd = "python -m bench.sampler_frontier --config configs/bench/priors.yaml"
        r.table(rows, f"The prior at T: DDPM and DDIM from N(0, I) (standard) and from the data's Gaussian at T "
                f"(moments), 1,000 samples each against real half B, from the committed "
                f"docs/figures/priors/results.json (measured {info['date']}; the low-rank and diagonal priors are in "
                "docs/ddpm_vs_ddim.md).", cmd, label="priors")
        get = {(x["sampler"], x["nfe"], prior_of(x), (x["kwargs"] or {}).get("eta")): x["scores"] for x in keep}
        d_std, d_mom = get[("ddpm", 500, "standard", None)], get[("ddpm", 500, "moments", None)]
        i_std, i_mom = get[("ddim", 50, "standard", 0.0)], get[("ddim", 50, "moments", 0.0)]
        r.text(f"Same prior, same N (@tab:priors): from N(0, I), DDIM-50 (eta = 0) is "
               f"{num(i_std['sprite_fid'] / d_std['sprite_fid'], '.2f')} times DDPM-500's sprite-FID "
               f"({num(i_std['sprite_fid'], '.3f')} against {num(d_std['sprite_fid'], '.3f')}); from the moments "
               f"prior it is {num(i_mom['sprite_fid'] / d_mom['sprite_fid'], '.2f')} times "
               f"({num(i_mom['sprite_fid'], '.3f')} against {num(d_mom['sprite_fid'], '.3f')}). The right prior "
               "shrinks deterministic DDIM's distance by a factor "
               f"{num(i_std['sprite_fid'] / i_mom['sprite_fid'], '.1f')} and DDPM's by "
               f"{num(d_std['sprite_fid'] / d_mom['sprite_fid'], '.1f')}: most of DDIM's lag from "
               "N(0, I) is the prior, and what is left under the same prior is the cost of a deterministic chain "
               "with a tenth of the steps (docs/theory.md, item 10, explains why the deterministic sampler is the "
               "one that needs the right prior).")
    if "sampling" in loaded:
        info = loaded["sampling"]
        cmd = "python -m bench.sampler_frontier --config configs/bench/frontier.yaml"
        best = best_per_nfe(info["rows"])
        rows = [{"NFE": x["nfe"], "best setting": setting_name(x), "sprite-FID": f"{x['scores']['sprite_fid']:.3f}",
                 "precision": f"{x['scores']['precision']:.2f}", "recall": f"{x['scores']['recall']:.2f}"}
                for x in best]
        r.table(rows, "Fast samplers, moments prior: the best setting at each number of UNet calls (NFE) among "
                f"the {len(info['rows'])} settings of the committed docs/figures/sampling/results.json (measured "
                f"{info['date']}; the full table, ours and diffusers' schedulers on the same model and z, is in "
                "docs/sampling.md), 1,000 samples each against real half B.", cmd, label="fast")
        fig = r.figure(ROOT / "docs" / "figures" / "sampling" / "frontier.png", "sprite-FID against NFE for every "
                       "setting of the fast-sampler benchmark (log axes).", cmd, label="frontier")
        ref = next(x for x in info["rows"] if x["sampler"] == "ddpm" and prior_of(x) == "moments")
        few = [x for x in best if x["nfe"] <= 10 and x["sampler"] != "ddpm"]
        if few:
            top = min(few, key=lambda x: x["scores"]["sprite_fid"])
            r.text(f"With the moments prior (@tab:fast, {fig}), the best setting within 10 UNet calls, "
                   f"{setting_name(top)} at {top['nfe']}, reaches sprite-FID "
                   f"{num(top['scores']['sprite_fid'], '.3f')}, "
                   f"{num(top['scores']['sprite_fid'] / ref['scores']['sprite_fid'], '.2f')} times DDPM-500 from the "
                   f"same prior ({num(ref['scores']['sprite_fid'], '.3f')}), for "
                   f"{num(ref['nfe'] / top['nfe'], '.0f')} times fewer UNet calls. At the fewest calls measured, "
                   f"{best[0]['nfe']}, the best setting ({setting_name(best[0])}) is at "
                   f"{num(best[0]['scores']['sprite_fid'], '.3f')}.")


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
