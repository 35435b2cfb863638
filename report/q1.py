"""Q1 of the homework: diffusion models, theory and implementation on the sprites."""

from __future__ import annotations

import json

import yaml

from report.homework import ROOT, Homework, pipeline_hash, rel


def theory(hw: Homework) -> None:
    hw.r.heading("Q1. Diffusion models: theory")
    hw.r.text("The answers below are docs/theory.md, items 1 to 5, each linked to the test that checks it "
                "with the package's own code.")
    for n, q in zip((1, 2, 3, 4, 5), ("Q1.1", "Q1.2", "Q1.3", "Q1.4", "Q1.5"), strict=True):
        hw.theory_answer(n, q)

def schedule(hw: Homework) -> None:
    r = hw.r
    r.heading("Q1. Diffusion models: implementation")
    r.subheading("1. The linear noise schedule")
    cmd = hw.run("python", "-m", "report.figures", "schedule", "--out", rel(hw.work))
    sch = hw.json("schedule.json")
    r.figure(hw.work / "schedule.png", "The course's schedule: beta_t linear from 1e-4 to 0.02 over T = 500 "
             "(left); alpha_t = 1 - beta_t, alpha_bar_t = prod alpha_s and sqrt(alpha_bar_t), the share of the "
             "image left in x_t (right).", cmd)
    r.text(f"beta runs from {sch['beta_1']:.4g} to {sch['beta_T']:.4g} over T = {sch['T']} steps "
           "(pipelines/schedule.py: diffusers' DDPMScheduler with beta_schedule='linear'). At t = T the "
           f"product alpha_bar_T is {sch['alpha_bar_T']:.4f}, so x_T still holds sqrt(alpha_bar_T) = "
           f"{sch['sqrt_alpha_bar_T']:.3f} of the image: the chain does not quite reach pure noise, which "
           "is why the prior at T matters (section 7 and theory item 10).")

def forward(hw: Homework) -> None:
    r = hw.r
    r.subheading("2. The forward process in one step: perturb_input")
    cmd = hw.run("python", "-m", "report.figures", "forward", "--out", rel(hw.work))
    fw = hw.json("forward.json")
    rows = ", ".join(f"t = {t}: {c:.2f}" for t, c in zip(fw["timesteps"], fw["correlation_with_x0"],
                                                            strict=True))
    r.figure(hw.work / "forward.png", "perturb_input(x_0, t, eps) = sqrt(alpha_bar_t) x_0 + sqrt(1 - "
             "alpha_bar_t) eps on 8 sprites, one row per t, the same eps in every row.", cmd)
    r.text("x_t is drawn in one shot from q(x_t | x_0) (theory item 1; tests/test_noise.py checks it against t "
           f"single steps). The correlation of x_t with x_0 falls with t: {rows}. It follows sqrt(alpha_bar_t) "
           "divided by the standard deviation of x_t, and at t = T the sprites are no longer visible, though "
           "their mean colour is still in x_T.")

def training(hw: Homework) -> None:
    r = hw.r
    r.subheading("3. Training")
    card = hw.pipeline / "training"
    rows = [json.loads(line) for line in (card / "stats.jsonl").read_text().splitlines() if line.strip()]
    cfg = yaml.safe_load((card / "config.yaml").read_text())
    cmd = "accelerate launch --quiet --config_file accelerate_config.yaml training/train.py --config " \
          "configs/sprites_ddpm.yaml"
    r.figure(card / "loss.png", "Training loss (epsilon MSE, log scale) of the reported model against steps "
             "and training time (its training record, pretrained/sprites_ddpm/training/stats.jsonl).", cmd)
    first = next(x for x in rows if x["step"] >= 100)
    r.text(f"The UNet ({', '.join(map(str, cfg['unet']['block_out_channels']))} channels, attention at 8x8) "
           f"was trained for {rows[-1]['step']:,} steps of {cfg['train_batch_size']} sprites with AdamW "
           f"(learning rate {cfg['learning_rate']:g}, warm-up and cosine decay), EMA of the weights and the "
           f"epsilon-prediction loss, in {rows[-1]['time_s'] / 60:.0f} min on this machine. The loss falls from "
           f"{first['loss']:.3f} at step {first['step']} to {rows[-1]['loss']:.4f}: most of the fall is in the "
           "first few hundred steps; the rest is the slow part of the fit that sample quality depends on "
           "(docs/training.md).")

def sampling(hw: Homework) -> None:
    r, s, p = hw.r, hw.s, rel(hw.pipeline)
    r.subheading("4. Sampling with DDPM (Algorithm 2)")
    n = s["grid_images"]
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--preset", "quality", "--prior",
                   "standard", "--num_images", str(n), *hw.ddpm_steps("--nfe"), "--out",
                   rel(hw.work / "ddpm_grid.png"))
    r.figure(hw.work / "ddpm_grid.png", f"{n} sprites from the DDPM pipeline (Ho et al. 2020, Algorithm 2, all "
             "500 steps, sigma_t^2 = beta_t, x_T from N(0, I) as in the course), seed 0.", cmd)
    cmd = hw.run("python", "-m", "report.figures", "no-noise", "--pipeline", p, "--n",
                   str(s["no_noise_images"]), *hw.ddpm_steps("--ddpm-steps"), "--out", rel(hw.work))
    nn = hw.json("no_noise.json")
    with_z, without = nn["noise_scale_1"], nn["noise_scale_0"]
    r.figure(hw.work / "no_noise.png", "The same 20 starts with Algorithm 2 as written (top) and with the "
             "sigma_t z term removed from every step (bottom; noise_scale = 0).", cmd)
    r.text("Why Algorithm 2 adds sigma_t z. Each reverse step should draw x_{t-1} from p(x_{t-1} | x_t), a "
           "Gaussian whose mean the network predicts; sigma_t z is the draw around that mean. Without it every "
           "step takes the mean of the posterior over x_{t-1}, an average over all the images still compatible "
           "with x_t, and averaging 500 times in a row washes the sample out: the chain is no longer a sampler "
           f"of q(x_0) but a smoother. Measured on {without['n']} samples from the same x_T: the mean per-sprite "
           f"pixel standard deviation is {with_z['pixel_std']:.3f} with the noise and {without['pixel_std']:.3f} "
           f"without; sprite-FID {with_z['sprite_fid']:.2f} against {without['sprite_fid']:.2f} (precision "
           f"{with_z['precision']:.2f} against {without['precision']:.2f}). The noise also keeps the samples "
           "apart: it is what makes DDPM a stochastic sampler that can recover from its own errors (theory "
           "item 10).")

    r.subheading("5. Sampling with DDIM")
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                   str(s["ddim_steps"]), "--num_images", str(n), "--out", rel(hw.work / "ddim_grid.png"))
    r.figure(hw.work / "ddim_grid.png", f"{n} sprites from the DDIM pipeline (Song et al. 2021, eq. 12, eta = "
             f"0, {s['ddim_steps']} steps, trailing spacing), seed 0: the same z as the DDPM grid.", cmd)
    cmd = hw.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                   str(s["ddim_steps"]), "--prior", "moments", "--num_images", str(n), "--out",
                   rel(hw.work / "ddim_moments_grid.png"))
    r.figure(hw.work / "ddim_moments_grid.png", "The same DDIM sampler and z, with x_T drawn from the data's "
             "Gaussian at T (prior='moments', pipelines/prior.py) instead of N(0, I).", cmd)
    r.text("DDIM with eta = 0 is deterministic: one x_T gives one sprite, and it needs the right x_T "
           "distribution. The course's schedule leaves 8% of the image in x_T; starting from N(0, I) misses that "
           "mean and covariance, and the deterministic sampler carries the error into every sample (colour "
           "casts, blotches); starting from the data's moment-matched Gaussian at T fixes most of it (the "
           "numbers are in section 7).")

def timing(hw: Homework) -> None:
    r, s = hw.r, hw.s
    r.subheading("6. Sampling time")
    cmd = hw.run("python", "-m", "bench.sampling_time", "--pipeline", rel(hw.pipeline), "--num_images",
                   str(s["timing_images"]), "--repeats", str(s["timing_repeats"]), "--ddpm_steps",
                   str(s["timing_ddpm_steps"]), "--json", rel(hw.work / "timing.json"))
    timing = hw.json("timing.json")
    r.table(timing["wall"]["table_markdown"], f"Wall time of sampling {s['timing_images']} sprites (median of "
            f"{s['timing_repeats']}), the course's `%timeit -r 1` of sample_ddpm against sample_ddim: a bare loop "
            f"of UNet calls, our pipelines and diffusers' stock ones on the same model and inputs. DDPM is timed "
            f"on {s['timing_ddpm_steps']} of its 500 steps (every step costs the same).", cmd)
    rows = {row["sampler"]: row for row in timing["wall"]["rows"]}
    ddpm, ddim = rows["ddpm"], rows["ddim"]
    per_step = ddpm["median_s"]["ours"] / ddpm["steps"]
    full = per_step * 500
    r.text(f"A UNet call on {s['timing_images']} sprites takes {1000 * per_step:.0f} ms, so DDPM's 500 steps take "
           f"about {full:.0f} s and DDIM's {ddim['steps']} steps {ddim['median_s']['ours']:.1f} s: "
           f"{full / ddim['median_s']['ours']:.1f} times faster, the ratio of the step counts, since the UNet "
           "is nearly all of the cost (the pipelines' own work is under 1% of a step, docs/speed.md).")

def fid(hw: Homework) -> None:
    r, s = hw.r, hw.s
    r.subheading("7. FID: DDPM against DDIM")
    out = hw.work / "fid"
    cmd = hw.run("python", "-m", "bench.fid_vs_steps", "--pipeline", rel(hw.pipeline), "--num-images",
                   str(s["fid_images"]), "--batch-size", str(s["fid_batch_size"]), "--ddim-steps",
                   *map(str, s["fid_ddim_steps"]), *hw.ddpm_steps("--ddpm-steps"), "--out", rel(out),
                   "--overwrite")
    fid = json.loads((out / "results.json").read_text())
    r.table(fid["table_markdown"], f"sprite-FID and sprite-KID (the sprite network's features, not Inception's: "
            f"its weights cannot be downloaded here), precision, recall and the class-mix gap of "
            f"{s['fid_images']} samples per sampler against held-out real sprites; the floor row compares real "
            "with real.", cmd)
    rows = {row["name"]: row for row in fid["rows"]}
    ddpm = next(v for k, v in rows.items() if k.startswith("DDPM"))
    ddim = [v for k, v in rows.items() if k.startswith("DDIM")]
    best = min(ddim, key=lambda v: v["vs_half_b"]["sprite_fid"])

    def fid_of(row: dict) -> float:
        return row["vs_half_b"]["sprite_fid"]

    r.text(f"On {s['fid_images']} samples DDPM reaches sprite-FID {fid_of(ddpm):.3f} (the real-vs-real floor at "
           f"this N is {fid['floor']['sprite_fid']:.3f}); the best DDIM setting here, {best['name']}, "
           f"{fid_of(best):.3f}. FID is biased upward at small N, so compare rows, not these numbers with the "
           "N = 1,000 tables below.")
    committed_tables(hw)

def committed_tables(hw: Homework) -> None:
    """The N = 1,000 tables of the prior and the fast samplers, read from the committed results."""
    r = hw.r
    for folder, caption, command in (
            ("priors", "The prior at T (docs/ddpm_vs_ddim.md): DDPM and DDIM from N(0, I) and from Gaussians "
             "fitted to q(x_T), 1,000 samples each.", "python -m bench.sampler_frontier --config "
             "configs/bench/priors.yaml"),
            ("sampling", "Fast samplers (docs/sampling.md): sprite-FID against UNet evaluations, 1,000 samples "
             "each, ours and diffusers' stock schedulers on the same model and z.", "python -m "
             "bench.sampler_frontier --config configs/bench/frontier.yaml")):
        result = ROOT / "docs" / "figures" / folder / "results.json"
        if not result.is_file():
            continue
        info = json.loads(result.read_text())
        if info["pipeline"].get("unet_sha256_16") != pipeline_hash(hw.pipeline):
            continue  # measured on another model: not this report's
        r.table((result.parent / "table.md").read_text(), f"{caption} Read from the committed "
                f"docs/figures/{folder}/results.json (measured {info['date']}; hours of CPU, not rerun here).",
                command)
        r.figure(result.parent / "frontier.png", "sprite-FID against UNet evaluations for the settings of the "
                 "table above (log axes).", command)
