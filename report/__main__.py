"""``python -m report``: the whole homework answer from one command (Markdown, HTML and, with --pdf, PDF).

In the assignment's order: Q1 (diffusion) theory, then each implementation item with its figure or table and a
paragraph of analysis filled in from the numbers of this run; Q2 (score-based models) the same, on the
student's own mixture. The theory is docs/theory.md itself (one source). Every part runs as the command a user
would type, and the report shows that command under its figure or table. Numbers that need hours of CPU (the
N = 1,000 tables of the fast samplers and of the prior) are read from the committed results, and say so.

    python -m report [--pipeline pretrained/sprites_ddpm] [--student-id N] [--out outputs/report] [--quick]
        [--retrain] [--pdf]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from report.document import Report, environment
from report.markup import theory_items

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINE = ROOT / "pretrained" / "sprites_ddpm"
THEORY = ROOT / "docs" / "theory.md"


def load_settings(quick: bool) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "report.yaml").read_text())
    return {**cfg["full"], **(cfg["quick"] if quick else {})}


class Runner:
    """Runs each part as a command line from the project root, logs it, and keeps the command for the report."""

    def __init__(self, log: Path):
        self.log = log

    def __call__(self, *args: str) -> str:
        cmd = [sys.executable if args[0] == "python" else args[0], *args[1:]]
        shown = shlex.join(["python", *args[1:]] if args[0] == "python" else list(args))
        print(f"[report] $ {shown}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        with self.log.open("a") as f:
            f.write(f"$ {shown}\n{proc.stdout}{proc.stderr}\n[{time.perf_counter() - start:.1f} s, exit "
                    f"{proc.returncode}]\n\n")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise SystemExit(f"error: `{shown}` failed: {tail[0]} (full log: {self.log})")
        return shown


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class Homework:
    """The report's parts, in the assignment's order; each runs its commands and adds its items."""

    def __init__(self, args: argparse.Namespace, settings: dict, work: Path):
        self.args, self.s, self.work = args, settings, work
        self.run = Runner(work / "commands.log")
        self.r = Report("Homework 3: diffusion and score-based models, answered with spritediff")
        self.docs = os.path.relpath(ROOT / "docs", args.out.resolve()) + "/"
        self.theory = theory_items(THEORY)
        self.pipeline = args.pipeline

    def ddpm_steps(self, flag: str) -> list[str]:
        """The option that shortens DDPM in quick mode (nothing in a full report: all T steps)."""
        return [flag, str(self.s["ddpm_steps"])] if self.s.get("ddpm_steps") else []

    def json(self, name: str) -> dict:
        return json.loads((self.work / name).read_text())

    def theory_answer(self, n: int, question: str) -> None:
        title, body = self.theory[n]
        self.r.subheading(f"{question}: {title}")
        self.r.markdown(body, self.docs, source_dir=ROOT / "docs")

    # ------------------------------------------------------------------------------------------------- Q1

    def q1_theory(self) -> None:
        self.r.heading("Q1. Diffusion models: theory")
        self.r.text("The answers below are docs/theory.md, items 1 to 5, each linked to the test that checks it "
                    "with the package's own code.")
        for n, q in zip((1, 2, 3, 4, 5), ("Q1.1", "Q1.2", "Q1.3", "Q1.4", "Q1.5"), strict=True):
            self.theory_answer(n, q)

    def q1_schedule(self) -> None:
        r = self.r
        r.heading("Q1. Diffusion models: implementation")
        r.subheading("1. The linear noise schedule")
        cmd = self.run("python", "-m", "report.figures", "schedule", "--out", rel(self.work))
        sch = self.json("schedule.json")
        r.figure(self.work / "schedule.png", "The course's schedule: beta_t linear from 1e-4 to 0.02 over T = 500 "
                 "(left); alpha_t = 1 - beta_t, alpha_bar_t = prod alpha_s and sqrt(alpha_bar_t), the share of the "
                 "image left in x_t (right).", cmd)
        r.text(f"beta runs from {sch['beta_1']:.4g} to {sch['beta_T']:.4g} over T = {sch['T']} steps "
               "(pipelines/schedule.py: diffusers' DDPMScheduler with beta_schedule='linear'). At t = T the "
               f"product alpha_bar_T is {sch['alpha_bar_T']:.4f}, so x_T still holds sqrt(alpha_bar_T) = "
               f"{sch['sqrt_alpha_bar_T']:.3f} of the image: the chain does not quite reach pure noise, which "
               "is why the prior at T matters (section 7 and theory item 10).")

    def q1_forward(self) -> None:
        r = self.r
        r.subheading("2. The forward process in one step: perturb_input")
        cmd = self.run("python", "-m", "report.figures", "forward", "--out", rel(self.work))
        fw = self.json("forward.json")
        rows = ", ".join(f"t = {t}: {c:.2f}" for t, c in zip(fw["timesteps"], fw["correlation_with_x0"],
                                                                strict=True))
        r.figure(self.work / "forward.png", "perturb_input(x_0, t, eps) = sqrt(alpha_bar_t) x_0 + sqrt(1 - "
                 "alpha_bar_t) eps on 8 sprites, one row per t, the same eps in every row.", cmd)
        r.text("x_t is drawn in one shot from q(x_t | x_0) (theory item 1; tests/test_noise.py checks it against t "
               f"single steps). The correlation of x_t with x_0 falls with t: {rows}. It follows sqrt(alpha_bar_t) "
               "divided by the standard deviation of x_t, and at t = T the sprites are no longer visible, though "
               "their mean colour is still in x_T.")

    def q1_training(self) -> None:
        r = self.r
        r.subheading("3. Training")
        card = self.pipeline / "training"
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

    def q1_sampling(self) -> None:
        r, s, p = self.r, self.s, rel(self.pipeline)
        r.subheading("4. Sampling with DDPM (Algorithm 2)")
        n = s["grid_images"]
        cmd = self.run("python", "-m", "training.sample", "--pipeline", p, "--preset", "quality", "--prior",
                       "standard", "--num_images", str(n), *self.ddpm_steps("--nfe"), "--out",
                       rel(self.work / "ddpm_grid.png"))
        r.figure(self.work / "ddpm_grid.png", f"{n} sprites from the DDPM pipeline (Ho et al. 2020, Algorithm 2, all "
                 "500 steps, sigma_t^2 = beta_t, x_T from N(0, I) as in the course), seed 0.", cmd)
        cmd = self.run("python", "-m", "report.figures", "no-noise", "--pipeline", p, "--n",
                       str(s["no_noise_images"]), *self.ddpm_steps("--ddpm-steps"), "--out", rel(self.work))
        nn = self.json("no_noise.json")
        with_z, without = nn["noise_scale_1"], nn["noise_scale_0"]
        r.figure(self.work / "no_noise.png", "The same 20 starts with Algorithm 2 as written (top) and with the "
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
        cmd = self.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                       str(s["ddim_steps"]), "--num_images", str(n), "--out", rel(self.work / "ddim_grid.png"))
        r.figure(self.work / "ddim_grid.png", f"{n} sprites from the DDIM pipeline (Song et al. 2021, eq. 12, eta = "
                 f"0, {s['ddim_steps']} steps, trailing spacing), seed 0: the same z as the DDPM grid.", cmd)
        cmd = self.run("python", "-m", "training.sample", "--pipeline", p, "--sampler", "ddim", "--nfe",
                       str(s["ddim_steps"]), "--prior", "moments", "--num_images", str(n), "--out",
                       rel(self.work / "ddim_moments_grid.png"))
        r.figure(self.work / "ddim_moments_grid.png", "The same DDIM sampler and z, with x_T drawn from the data's "
                 "Gaussian at T (prior='moments', pipelines/prior.py) instead of N(0, I).", cmd)
        r.text("DDIM with eta = 0 is deterministic: one x_T gives one sprite, and it needs the right x_T "
               "distribution. The course's schedule leaves 8% of the image in x_T; starting from N(0, I) misses that "
               "mean and covariance, and the deterministic sampler carries the error into every sample (colour "
               "casts, blotches); starting from the data's moment-matched Gaussian at T fixes most of it (the "
               "numbers are in section 7).")

    def q1_timing(self) -> None:
        r, s = self.r, self.s
        r.subheading("6. Sampling time")
        cmd = self.run("python", "-m", "bench.sampling_time", "--pipeline", rel(self.pipeline), "--num_images",
                       str(s["timing_images"]), "--repeats", str(s["timing_repeats"]), "--ddpm_steps",
                       str(s["timing_ddpm_steps"]), "--json", rel(self.work / "timing.json"))
        timing = self.json("timing.json")
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

    def q1_fid(self) -> None:
        r, s = self.r, self.s
        r.subheading("7. FID: DDPM against DDIM")
        out = self.work / "fid"
        cmd = self.run("python", "-m", "bench.fid_vs_steps", "--pipeline", rel(self.pipeline), "--num-images",
                       str(s["fid_images"]), "--batch-size", str(s["fid_batch_size"]), "--ddim-steps",
                       *map(str, s["fid_ddim_steps"]), *self.ddpm_steps("--ddpm-steps"), "--out", rel(out),
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
        self.committed_tables()

    def committed_tables(self) -> None:
        """The N = 1,000 tables of the prior and the fast samplers, read from the committed results."""
        r = self.r
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
            if info["pipeline"].get("unet_sha256_16") != pipeline_hash(self.pipeline):
                continue  # measured on another model: not this report's
            r.table((result.parent / "table.md").read_text(), f"{caption} Read from the committed "
                    f"docs/figures/{folder}/results.json (measured {info['date']}; hours of CPU, not rerun here).",
                    command)
            r.figure(result.parent / "frontier.png", "sprite-FID against UNet evaluations for the settings of the "
                     "table above (log axes).", command)

    # ------------------------------------------------------------------------------------------------- Q2

    def q2_theory(self) -> None:
        r = self.r
        r.heading("Q2. Score-based models: theory")
        r.text("docs/theory.md, items 6 to 9.")
        for n, q in zip((6, 7, 8, 9), ("Q2.1", "Q2.2", "Q2.3", "Q2.4 and Q2.5"), strict=True):
            self.theory_answer(n, q)
        cmd = self.run("python", "-m", "report.figures", "why-noise", "--student-id", str(self.args.student_id),
                       "--steps", str(self.s["why_noise_steps"]), "--out", rel(self.work))
        why = self.json("why_noise.json")
        small, large = why["sigma_0.1"], why["sigma_3"]
        r.figure(self.work / "why_noise.png", "Denoising score matching on the student's training data at sigma = "
                 "0.1 (nearly clean data) and sigma = 3: the relative error of the learned score against the exact "
                 "score of p_sigma over the plane (left, middle; white lines: log p = -3, -5, -8) and against log "
                 "p(x) (right).", cmd)
        r.text("Why perturb the data with noise at all. (1) The manifold hypothesis: real data sit near a "
               "low-dimensional set where the score of the clean density is undefined or infinite, and score "
               "matching's objective, an expectation under p, says nothing about the score off that set. (2) In "
               "low-density regions few training points fall, so even a well-defined score is learned badly there, "
               "and a sampler that starts there follows a wrong field. (3) Denoising score matching turns the "
               "intractable objective (the score of p, or the trace of its Jacobian) into regressing onto "
               "-eps / sigma^2 for a known perturbation, tractable for any sigma. Measured here: at sigma = 0.1 the "
               f"median relative error of the learned score is {small['median_relative_error_dense']:.2f} where p is "
               f"highest and {small['median_relative_error_sparse']:.2f} in the less likely half of the plane; at "
               f"sigma = 3 it is {large['median_relative_error_dense']:.2f} and "
               f"{large['median_relative_error_sparse']:.2f}: the noise spreads the data over the whole region a "
               "sampler visits, so the score is learned where it is needed.")

    def q2_implementation(self) -> None:
        r = self.r
        r.heading("Q2. Score-based models: implementation")
        toy = self.work / "score_toy"
        cmd = self.run("python", "-m", "score_toy", "--student-id", str(self.args.student_id), "--out", rel(toy),
                       "--force", *(["--quick"] if self.args.quick else []))
        metrics = json.loads((toy / "metrics.json").read_text())
        figures = json.loads((toy / "figures.json").read_text())
        analysis = score_toy_analysis(metrics)
        for fig in figures:
            r.figure(toy / fig["file"], fig["caption"], cmd)
            if fig["number"] in analysis:
                r.text(analysis[fig["number"]])

    # ------------------------------------------------------------------------------------------------- end

    def environment(self, start: float) -> None:
        self.r.heading("Environment")
        self.r.table(environment(), "Where these numbers were measured.")
        self.r.text(f"The report took {time.perf_counter() - start:.0f} s. Every command's output is in "
                    f"`{rel(self.work / 'commands.log')}`.")


def pipeline_hash(folder: Path) -> str | None:
    from evaluation.sampling import pipeline_info

    return pipeline_info(folder)["unet_sha256_16"]


def score_toy_analysis(m: dict) -> dict[int, str]:
    """A paragraph per score_toy figure, from its metrics."""
    w = m["mixture"]["weights"]
    heavy = max(range(len(w)), key=lambda k: w[k])
    rows = {(row["sampler"], row["score"].split(",")[0].split("(")[0].strip()): row for row in m["samplers"]}
    models = m["models"]

    def mode_weight(sampler: str, score: str) -> str:
        row = rows.get((sampler, score))
        return f"{row['weights'][heavy]:.2f}" if row else "n/a"

    def mean_log_p(sampler: str, score: str) -> str:
        row = rows.get((sampler, score))
        return f"{row['mean_log_p']:.2f}" if row else "n/a"

    fixed = [x for x in models if x.get("loss") == "dsm" and x.get("sigma") is not None]
    errs = ", ".join(f"sigma = {x['sigma']:g}: {x['relative_score_error_test']:.2g}" for x in fixed
                     if "relative_score_error_test" in x)
    se = m["song_ermon"]
    return {
        1: f"The mixture of student {m['student_id']} (the course's rule): weights {w[0]:.3f} / {w[1]:.3f}, means "
           f"{m['mixture']['means'][0]} and {m['mixture']['means'][1]}. The analytic score is the responsibility-"
           "weighted pull -C_k^{-1}(x - mu_k) of each component: it points to the nearer mode and is blind to the "
           "weights away from the boundary between the basins.",
        2: f"Denoising score matching learns the score of the perturbed density p_sigma; on the held-out test "
           f"split plus noise the relative error is {errs}. Larger sigma gives a smoother field that is easier to "
           "learn, and further from the score of p itself.",
        3: "Both samplers climb the score into the basin where they start and stay in it, so the start decides the "
           "mode: in the runs of figure 4, whose first starts figure 3 follows, the heavy mode gets "
           f"{mode_weight('deterministic ascent', 'exact score of p')} of the deterministic ascent's points and "
           f"{mode_weight('Langevin', 'exact score of p')} of Langevin dynamics' with the exact score (true weight "
           f"{w[heavy]:.2f}). They differ at the end: ascent stops on a peak (mean log p of its points "
           f"{mean_log_p('deterministic ascent', 'exact score of p')}), while the noise sqrt(eps) z keeps Langevin "
           f"dynamics moving around the mode (its mean log p: {mean_log_p('Langevin', 'exact score of p')}). The "
           f"learned score at sigma = {m['sampling_sigma']:g} draws the same picture: "
           f"{mode_weight('deterministic ascent', 'learned s_theta')} and {mode_weight('Langevin', 'learned s_theta')}"
           " in the heavy mode.",
        4: "Deterministic ascent collapses every start onto a mode; Langevin dynamics samples around the modes, "
           "but keeps the share of starts each basin received: the heavy mode gets "
           f"{mode_weight('Langevin', 'learned s_theta')} of the samples with the learned score (true weight "
           f"{w[heavy]:.2f}).",
        5: f"The noise-conditional model with annealed Langevin dynamics over sigma from 20 to 1 moves the mass "
           f"across the gap while sigma is large: the heavy mode gets "
           f"{mode_weight('annealed Langevin', 'learned s_theta')} (true {w[heavy]:.2f}).",
        6: "Song and Ermon's experiment with exact scores: Langevin gives the heavy mode "
           f"{se['weights']['langevin'][0]:.3f}, annealed Langevin {se['weights']['annealed'][0]:.3f} (true "
           f"{se['true_weights'][0]:.1f}, i.i.d. draws {se['weights']['iid'][0]:.3f}).",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m report", description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", type=Path, default=DEFAULT_PIPELINE, help="the sprites pipeline folder to report on")
    p.add_argument("--student-id", type=int, default=None,
                   help="your student number: Q2's mixture (default: the placeholder of configs/score_toy.yaml)")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "report")
    p.add_argument("--quick", action="store_true", help="tiny sample counts: a check of the machinery, not numbers")
    p.add_argument("--retrain", action="store_true",
                   help="train configs/sprites_ddpm.yaml from scratch first (about 2 hours on 2 CPU cores)")
    p.add_argument("--pdf", action="store_true", help="also print report.pdf with headless Chromium")
    args = p.parse_args(argv)
    from training.data import default_data_path, holds_sprites, no_default_data_error

    if not holds_sprites(default_data_path()):  # the FID parts need the sprites: stop now, not minutes later
        print(f"error: {no_default_data_error()}", file=sys.stderr)
        return 2
    if args.pdf:
        from report.browser import find_chromium

        if find_chromium() is None:
            print("error: --pdf needs Chromium (apt-get install chromium)", file=sys.stderr)
            return 2
    if args.student_id is None:
        args.student_id = int(yaml.safe_load((ROOT / "configs" / "score_toy.yaml").read_text())["student_id"])
    s = load_settings(args.quick)
    work = args.out.with_name(args.out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    hw = Homework(args, s, work)
    if args.retrain:
        train_dir = work / "retrain"
        hw.run("accelerate", "launch", "--quiet", "--config_file", "accelerate_config.yaml", "training/train.py",
               "--config", "configs/sprites_ddpm.yaml", "--output_dir", rel(train_dir), "--resume", "latest")
        hw.pipeline = train_dir / "pipeline"
    if not (hw.pipeline / "model_index.json").is_file():
        print(f"error: {hw.pipeline} is not a pipeline folder (no model_index.json); pass --pipeline or --retrain",
              file=sys.stderr)
        return 2
    hw.r.text(f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} from `{rel(hw.pipeline)}`, student number "
              f"{args.student_id}{' (quick mode: tiny sample counts, numbers not meaningful)' if args.quick else ''}."
              " Every figure and table is followed by the command that made it.")
    for part in (hw.q1_theory, hw.q1_schedule, hw.q1_forward, hw.q1_training, hw.q1_sampling, hw.q1_timing,
                 hw.q1_fid, hw.q2_theory, hw.q2_implementation):
        part()
    hw.environment(start)
    md, page = hw.r.write(args.out)
    if args.pdf:
        from report.browser import print_pdf

        print_pdf(page, args.out / "report.pdf", work / "chromium-profile")
    print(f"wrote {rel(md)}, {rel(page)}{' and report.pdf' if args.pdf else ''} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
