"""Q2 of the homework: score-based models, theory and implementation on the student's mixture.

The theory is docs/theory.md, items 6 to 9; its links to score_toy's figures and tables (``score_toy.md#toy-...``)
become references to this report's own (``@fig:`` / ``@tab:``). The implementation is one run of
``python -m score_toy`` for the student, item by item: a heading, the formulas, its figures and tables, and a
paragraph of analysis. Every measured number in the prose is written through ``r.num`` from that run's
``metrics.json`` (or report.figures' ``why_noise.json``), so report/numbers.py can tell it from a typed one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from report.document import Report
from report.homework import ROOT, Homework, rel
from score_toy.tables import TABLES

TOY_CONFIG = ROOT / "configs" / "score_toy.yaml"
THEORY_QUESTIONS = ((6, "Q2.1"), (7, "Q2.2"), (8, "Q2.3"), (9, "Q2.4 and Q2.5"))
TOY_LINK = re.compile(r"\[([^\]]+)\]\(score_toy\.md#(toy-[\w-]+)\)")


def placeholder_student() -> int:
    """The placeholder student number of configs/score_toy.yaml (the default of ``--student_id``)."""
    return int(yaml.safe_load(TOY_CONFIG.read_text())["student_id"])


def student_note(student_id: int) -> str:
    """What the report's header adds after the student number: nothing for a student's own number, and for the
    placeholder, that it is one and how to pass your own."""
    if int(student_id) != placeholder_student():
        return ""
    return (" (the placeholder of configs/score_toy.yaml, not a student's: Q2's mixture is yours only with "
            "`python -m report --student_id YOUR_NUMBER`)")


@dataclass
class ToyRun:
    """One ``python -m score_toy`` run: its folder, the command, its metrics and its figures."""

    folder: Path
    command: str
    metrics: dict
    figures: list[dict]


def load_toy_run(folder: Path, command: str) -> ToyRun:
    return ToyRun(folder, command, json.loads((folder / "metrics.json").read_text()),
                  json.loads((folder / "figures.json").read_text()))


def score_toy_run(hw: Homework) -> ToyRun:
    """Run ``python -m score_toy`` for the student once per report (the theory quotes it, the implementation
    shows it)."""
    run = getattr(hw, "_score_toy_run", None)
    if run is None:
        folder = hw.work / "score_toy"
        cmd = hw.run("python", "-m", "score_toy", "--student_id", str(hw.args.student_id), "--out", rel(folder),
                     "--force", *(["--quick"] if hw.args.quick else []))
        run = load_toy_run(folder, cmd)
        hw._score_toy_run = run
    return run


# ------------------------------------------------------------------------------------------------------ theory
def theory(hw: Homework) -> None:
    toy = score_toy_run(hw)
    hw.r.heading("Q2. Score-based models: theory")
    add_theory(hw.r, hw.theory, toy, hw.docs)
    why_noise(hw)


def add_theory(r: Report, items: dict[int, tuple[str, str]], toy: ToyRun, docs_link: str) -> None:
    """docs/theory.md's items 6 to 9 (``items``, from report.markup.theory_items), each followed by what this run
    measured of the claims it makes."""
    r.text("The derivations are docs/theory.md, items 6 to 9. Where they point at a measurement, the paragraph "
           "under the item gives this run's numbers (the student's mixture, in the implementation part).")
    register_schedule_sigmas(r)
    measured = theory_measurements(r, toy.metrics)
    for n, question in THEORY_QUESTIONS:
        title, body = items[n]
        r.subheading(f"{question}: {title}")
        r.markdown(toy_links_to_refs(body), docs_link, source_dir=ROOT / "docs")
        if n in measured:
            r.text(measured[n])


def toy_links_to_refs(markdown: str) -> str:
    """docs/theory.md's links to score_toy's figures and tables (``[text](score_toy.md#toy-label)``) as references
    to the report's own, ``text (@fig:toy-label)`` (``@tab:`` for the tables of :data:`TABLES`)."""

    def sub(m: re.Match) -> str:
        kind = "tab" if m.group(2) in TABLES.values() else "fig"
        return f"{m.group(1)} (@{kind}:{m.group(2)})"

    return TOY_LINK.sub(sub, markdown)


def register_schedule_sigmas(r: Report) -> None:
    """Item 8 states the course schedule's noise levels sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) at t = 1 and
    t = T: computed here from configs/sprites_ddpm.yaml, not typed."""
    cfg = yaml.safe_load((ROOT / "configs" / "sprites_ddpm.yaml").read_text())
    beta = np.linspace(float(cfg["beta_start"]), float(cfg["beta_end"]), int(cfg["num_train_timesteps"]))
    alpha_bar = np.cumprod(1 - beta)
    sigma = np.sqrt((1 - alpha_bar) / alpha_bar)
    r.num(float(sigma[0]), ".4f")
    r.num(float(sigma[-1]), ".1f")


def theory_measurements(r: Report, m: dict) -> dict[int, str]:
    """The paragraphs under theory items 7 and 9: what this run measured of the claims they make."""
    t = Toy(r, m)
    dsm, ssm = t.dsm(t.sigma), t.ssm()
    out = {}
    if ssm is not None:
        out[7] = (f"Measured in this run (@tab:toy-score-models): at sigma = {t.g(t.sigma)} and {ssm['steps']} steps "
                  f"each, SSM-VR trained in {r.num(ssm['seconds'], '.1f')} s against DSM's "
                  f"{r.num(dsm['seconds'], '.1f')} s ({r.num(ssm['seconds'] / dsm['seconds'], '.1f')} times as "
                  f"long), with a relative score error of {t.err(ssm['relative_score_error'])} against DSM's "
                  f"{t.err(dsm['relative_score_error'])}.")
    lan, asc = t.heavy("Langevin", t.exact_p), t.heavy("deterministic ascent", t.exact_p)
    se = m["song_ermon"]
    out[9] = (f"Measured in this run (@tab:toy-sampler-metrics): from {t.n} uniform starts, Langevin dynamics with "
              f"the exact score of p leaves {t.w(lan)} of the points in the heavy mode, against its weight "
              f"{t.w(t.w_heavy)}; deterministic ascent sends {t.w(asc)} of the same starts there, the share of "
              f"its basin. Annealed Langevin gives the heavy mode {t.w(t.heavy('annealed Langevin', t.exact_ps))} "
              f"with exact scores and {t.w(t.heavy('annealed Langevin', t.learned_nc))} with the learned "
              f"noise-conditional model. In Song and Ermon's mixture (@fig:toy-song-ermon), Langevin gives its "
              f"heavy mode {t.w(se['weights']['langevin'][0])} and annealed Langevin "
              f"{t.w(se['weights']['annealed'][0])}, against {t.g(se['true_weights'][0])}.")
    return out


def why_noise_command(hw: Homework) -> tuple[str, ...]:
    return ("python", "-m", "report.figures", "why-noise", "--student_id", str(hw.args.student_id), "--steps",
            str(hw.s["why_noise_steps"]), "--out", rel(hw.work))


def why_noise(hw: Homework) -> None:
    r = hw.r
    cmd = hw.run(*why_noise_command(hw))
    why = hw.json("why_noise.json")
    (small_key, small), (large_key, large) = sorted(why.items(), key=lambda kv: float(kv[0].split("_")[1]))
    s_small, s_large = (r.num(float(k.split("_")[1]), "g") for k in (small_key, large_key))
    r.subheading("Why perturb the data with noise")
    fig = r.figure(hw.work / "why_noise.png", f"Denoising score matching on the student's training data at sigma = "
                   f"{s_small} (nearly clean data) and sigma = {s_large}: the relative error of the learned score "
                   "against the exact score of p_sigma over the plane (left, middle; white lines: log p = -3, -5, "
                   "-8) and against log p(x) (right).", cmd, label="why-noise")
    r.text("Why perturb the data with noise at all. (1) The manifold hypothesis: real data sit near a "
           "low-dimensional set where the score of the clean density is undefined or infinite, and score "
           "matching's objective, an expectation under p, says nothing about the score off that set. (2) In "
           "low-density regions few training points fall, so even a well-defined score is learned badly there, "
           "and a sampler that starts there follows a wrong field. (3) Denoising score matching turns the "
           "intractable objective (the score of p, or the trace of its Jacobian) into regressing onto "
           f"-eps / sigma^2 for a known perturbation, tractable for any sigma. Measured here ({fig}): at sigma = "
           f"{s_small} the median relative error of the learned score is "
           f"{r.num(small['median_relative_error_dense'], '.2f')} where p is highest and "
           f"{r.num(small['median_relative_error_sparse'], '.2f')} in the less likely half of the plane; at "
           f"sigma = {s_large} it is {r.num(large['median_relative_error_dense'], '.2f')} and "
           f"{r.num(large['median_relative_error_sparse'], '.2f')}: the noise spreads the data over the whole region "
           "a sampler visits, so the score is learned where it is needed.")


# ----------------------------------------------------------------------------------------------- implementation
ANALYTIC_SCORE = r"""
$$
p(x) = \sum_{k=1}^{2} w_k\,\mathcal N(x;\mu_k, C_k), \qquad
\nabla_x \log p(x) = -\sum_{k=1}^{2} r_k(x)\, C_k^{-1}(x - \mu_k), \qquad
r_k(x) = \frac{w_k\,\mathcal N(x;\mu_k, C_k)}{\sum_j w_j\,\mathcal N(x;\mu_j, C_j)} .
$$

Each component pulls $x$ toward its mean with strength $C_k^{-1}$, and the responsibilities $r_k$ decide which
pull counts. `GaussianMixture2D.score` computes $r_k$ as a softmax of $\log w_k + \log\mathcal N(x;\mu_k, C_k)$,
so the score stays finite far from the modes, where both densities underflow (checked against autograd of
$\log p$ in `tests/test_score_toy_mixture.py`).
"""

DSM_LOSS = r"""
$$
\ell_{\mathrm{DSM}}(\theta;\sigma) = \tfrac12\,\mathbb E_{x\sim p}\,\mathbb E_{\epsilon\sim\mathcal N(0,\sigma^2 I)}
\big\lVert s_\theta(x+\epsilon) + \epsilon/\sigma^2\big\rVert^2
= \tfrac12\,\mathbb E_{\tilde x\sim p_\sigma}\big\lVert s_\theta(\tilde x) - \nabla\log p_\sigma(\tilde x)\big\rVert^2
+ \tfrac12\Big(\frac{d}{\sigma^2} - \mathbb E_{p_\sigma}\lVert\nabla\log p_\sigma\rVert^2\Big)
$$

with $p_\sigma = p \ast \mathcal N(0, \sigma^2 I)$, for this mixture the same mixture with covariances
$C_k + \sigma^2 I$, and $d = 2$. The cross term vanishes because
$\mathbb E[-\epsilon/\sigma^2 \mid \tilde x] = \nabla\log p_\sigma(\tilde x)$. So the minimiser is
$\nabla\log p_\sigma$, not $\nabla\log p$, and the last term is a floor the loss never goes below. The table's
"exact score" column is that floor measured: the loss of $\nabla\log p_\sigma$ itself on the same points with the
same noise.
"""

SAMPLERS = r"""
$$
\text{deterministic ascent: } x \leftarrow x + \epsilon\, s(x), \qquad
\text{Langevin dynamics: } x \leftarrow x + \tfrac{\epsilon}{2}\, s(x) + \sqrt{\epsilon}\, z, \quad
z \sim \mathcal N(0, I).
$$
"""

NCSM_LOSS = r"""
$$
\ell_{\mathrm{NCSM}}(\theta) = \mathbb E_{\sigma}\Big[\lambda(\sigma)\,\tfrac12\,\mathbb E_{x, z}
\big\lVert s_\theta(x + \sigma z, \sigma) + z/\sigma\big\rVert^2\Big]
= \tfrac12\,\mathbb E_{\sigma, x, z}\big\lVert \sigma\, s_\theta(x + \sigma z, \sigma) + z\big\rVert^2,
\qquad \lambda(\sigma) = \sigma^2,
$$

with $\sigma$ drawn uniformly from the geometric levels $\sigma_1 > \dots > \sigma_L$. Annealed Langevin dynamics
(Song and Ermon 2019, Algorithm 1) then runs, for $i = 1, \dots, L$, a fixed number of steps
$x \leftarrow x + \tfrac{\alpha_i}{2}\, s_\theta(x, \sigma_i) + \sqrt{\alpha_i}\, z$ with
$\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2$.
"""

SSM_LOSS = r"""
$$
J(\theta) = \mathbb E_{\tilde x}\,\mathbb E_{v\sim\mathcal N(0, I)}
\Big[v^\top \nabla_{\tilde x} s_\theta(\tilde x)\, v + \tfrac12\lVert s_\theta(\tilde x)\rVert^2\Big],
\qquad \tilde x = x + \sigma z,
$$

sliced score matching with variance reduction (SSM-VR): the trace of the Jacobian replaced by one random
projection, a single vector-Jacobian product. Its minimum, at the exact score, is
$-\tfrac12\,\mathbb E_{p_\sigma}\lVert\nabla\log p_\sigma\rVert^2$.
"""


def implementation(hw: Homework) -> None:
    toy = score_toy_run(hw)
    hw.r.heading("Q2. Score-based models: implementation")
    add_implementation(hw.r, toy)


def add_implementation(r: Report, toy: ToyRun) -> None:
    """Q2's implementation items from one score_toy run: per item a heading, formulas, figures, tables and an
    analysis paragraph written from the run's metrics."""
    t = Toy(r, toy.metrics)
    figures = {f["label"]: f for f in toy.figures}
    tables = {label: (toy.folder / name).read_text() for name, label in TABLES.items()}

    def figure(label: str) -> None:
        r.figure(toy.folder / figures[label]["file"], figures[label]["caption"], toy.command, label=label)

    def table(label: str, caption: str) -> None:
        r.table(tables[label], caption, toy.command, label=label)

    d = toy.metrics["data"]
    r.text(f"One run of `python -m score_toy` for student {toy.metrics['student_id']} "
           f"({r.num(toy.metrics['wall_time_seconds'], '.0f')} s): the course notebook's data set for that number, "
           f"{d['n_train']} training and {d['n_test']} held-out test points; every score model trains on the "
           "training split. The numbers below are that run's (its metrics.json).")

    r.subheading("Q2 implementation 1: the student's mixture and its analytic score")
    r.markdown(ANALYTIC_SCORE)
    table("toy-mixture", f"The mixture of student {toy.metrics['student_id']}, by the course notebook's rule "
          "(score_toy.GaussianMixture2D.from_student_id).")
    figure("toy-analytic-score")
    r.text(t.analytic_score())

    r.subheading("Q2 implementation 2: denoising score matching at a fixed sigma")
    r.markdown(DSM_LOSS)
    figure("toy-learned-fields")
    table("toy-score-models", "Every score model of the run: training time, the loss on the training and on the "
          "held-out test split beside the loss of the exact score on the same points and noise (in brackets), "
          "and the relative score error E|s_theta - grad log p_sigma|^2 / E|grad log p_sigma|^2 on fresh draws of "
          "p_sigma, on the test split plus noise, and against the score of p itself.")
    r.text(t.dsm_analysis())

    r.subheading("Q2 implementation 3: sampling by deterministic ascent and Langevin dynamics")
    r.markdown(SAMPLERS)
    figure("toy-trajectories")
    figure("toy-samples")
    table("toy-sampler-metrics", "Every sampler from the same uniform starts, with i.i.d. draws and the training "
          "split as references: the mode weights found (by largest responsibility under p), their total variation "
          "distance TV to the true weights, the energy distance ED to fresh i.i.d. draws of p and of p_sigma and to "
          "the test split (0 for equal laws; the unbiased estimate can be slightly negative), and the mean true "
          "log-density of the points.")
    r.text(t.sampling_analysis())

    r.subheading("Q2 implementation 4: the noise-conditional model and annealed Langevin dynamics")
    r.markdown(NCSM_LOSS)
    figure("toy-noise-conditional")
    r.text(t.annealed_analysis())

    r.subheading("Q2 implementation 5: Song and Ermon's experiment, reproduced")
    figure("toy-song-ermon")
    table("toy-song-ermon-weights", "Song and Ermon's mixture with exact scores: the weight of each mode found by "
          "each sampler, with one binomial standard error.")
    r.text(t.song_ermon_analysis())

    if t.ssm() is not None:
        r.subheading("Q2 implementation 6: sliced score matching, compared with DSM")
        r.markdown(SSM_LOSS)
        r.text(t.ssm_analysis())


class Toy:
    """The analysis of one score_toy run: looks its numbers up and writes them through ``r.num``."""

    def __init__(self, r: Report, m: dict):
        self.r, self.m = r, m
        w = m["mixture"]["weights"]
        self.heavy_k = max(range(len(w)), key=lambda k: w[k])
        self.light_k = min(range(len(w)), key=lambda k: w[k])
        self.w_heavy, self.w_light = w[self.heavy_k], w[self.light_k]
        self.sigma = float(m["sampling_sigma"])
        s = f"{self.sigma:g}"
        self.exact_p, self.exact_p_sigma, self.learned = "exact score of p", f"exact score of p_{s}", \
            f"learned s_theta, sigma={s}"
        self.exact_ps, self.learned_nc = "exact scores of p_sigma", "learned s_theta(x, sigma)"
        self.iid_p, self.iid_p_sigma = ("i.i.d. draws", "p itself"), ("i.i.d. draws", f"p_{s} itself")
        self.rows = {(row["sampler"], row["score"]): row for row in m["samplers"]}
        self.n = self.rows["Langevin", self.exact_p]["n"]
        self.se = math.sqrt(self.w_heavy * (1 - self.w_heavy) / self.n)  # binomial s.e. of a weight at n points

    # formatting (every number through r.num)
    def w(self, v: float) -> str:
        return self.r.num(v, ".3f")

    def g(self, v: float) -> str:
        return self.r.num(float(v), "g")

    def err(self, v: float) -> str:
        return self.r.num(v, ".2g")

    def point(self, p: list[float]) -> str:
        return "(" + ", ".join(self.g(v) for v in p) + ")"

    # lookups
    def row(self, sampler: str, score: str) -> dict:
        return self.rows[sampler, score]

    def heavy(self, sampler: str, score: str) -> float:
        return self.rows[sampler, score]["weights"][self.heavy_k]

    def dsm(self, sigma: float) -> dict:
        return next(x for x in self.m["models"] if x["loss"] == "dsm" and x["sigma"] == sigma)

    def dsm_models(self) -> list[dict]:
        return sorted((x for x in self.m["models"] if x["loss"] == "dsm"), key=lambda x: x["sigma"])

    def ssm(self) -> dict | None:
        return next((x for x in self.m["models"] if x["loss"].startswith("ssm")), None)

    def nc(self) -> dict:
        return next(x for x in self.m["models"] if x["model"] == "NoiseConditionalScoreMLP")

    def mode_distance(self) -> float:
        means = self.m["mixture"]["means"]
        return float(np.linalg.norm(np.array(means[self.heavy_k]) - np.array(means[self.light_k])))

    def gap_energy(self, row: dict) -> float:
        """The energy distance two point masses at the modes would have for this row's weight gap: 2 D dw^2."""
        return 2 * self.mode_distance() * (row["weights"][self.heavy_k] - self.w_heavy) ** 2

    def within(self, a: float, b: float, se: float, of: str) -> str:
        """How far weight ``a`` is from ``b`` (named ``of``) in binomial standard errors ``se``."""
        k = round(abs(a - b) / se, 1)  # as printed
        if k <= 2:
            return f"within two standard errors of {of}"
        return f"{self.r.num(k, '.1f')} standard errors from {of}"

    # ------------------------------------------------------------------------------------------------ items
    def analytic_score(self) -> str:
        from score_toy import GaussianMixture2D

        mix = self.m["mixture"]
        means, cov = mix["means"], mix["covariances"]
        p = GaussianMixture2D(mix["weights"], means, cov)
        mu_l, mu_h = np.array(means[self.light_k]), np.array(means[self.heavy_k])
        lo, hi = 0.0, 1.0  # bisection on the segment from the light mode to the heavy one: r_heavy = 1/2
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            x = torch_point(mu_l + mid * (mu_h - mu_l))
            if float(p.responsibilities(x)[0, self.heavy_k]) < 0.5:
                lo = mid
            else:
                hi = mid
        dist = float(np.linalg.norm(mu_h - mu_l))
        shift = (0.5 - lo) * dist  # > 0: the boundary lies toward the light mode
        var = [c[0][0] for c in cov]
        ratio = self.w_heavy / self.w_light
        balance = ("so the two basins split the plane almost in half" if abs(shift) < 0.05 * dist else
                   "so the heavy mode's basin is the larger one")
        return (f"Student {self.m['student_id']}'s mixture (@tab:toy-mixture) puts weight {self.w(self.w_heavy)} on "
                f"the mode at {self.point(means[self.heavy_k])} and {self.w(self.w_light)} on the mode at "
                f"{self.point(means[self.light_k])}, {self.r.num(ratio, '.1f')} times less, with variances "
                f"{self.r.num(var[self.heavy_k], '.3f')} and {self.r.num(var[self.light_k], '.3f')}. Its score "
                "(@fig:toy-analytic-score) vanishes at the two modes and everywhere else points to the mode of the "
                "basin x lies in, with a length that grows like |x - mu_k| / v_k away from it. The weights enter "
                "only through the responsibilities, which are 0 or 1 except in a band around the boundary between "
                f"the basins: on the segment between the modes ({self.r.num(dist, '.1f')} apart) the boundary "
                f"r_1 = r_2 lies {self.r.num(abs(shift), '.2f')} from the midpoint toward the "
                f"{'light' if shift >= 0 else 'heavy'} mode, {balance}, although one mode holds "
                f"{self.r.num(ratio, '.1f')} times the mass of the other. What the analytic score gets right is "
                "everything local, exactly: where the modes are, their shapes, the direction to the nearer one. What "
                "it does not carry, away from that boundary, is how much mass each mode has; the samplers below "
                "measure what that costs.")

    def dsm_analysis(self) -> str:
        rows = self.dsm_models()
        sig = "sigma = " + and_list([self.g(x["sigma"]) for x in rows])
        fresh = ", ".join(self.err(x["relative_score_error"]) for x in rows)
        test = ", ".join(self.err(x["relative_score_error_test"]) for x in rows)
        to_p = ", ".join(self.err(x["relative_error_to_score_of_p"]) for x in rows)
        e = [x["relative_score_error"] for x in rows]
        e_p = [x["relative_error_to_score_of_p"] for x in rows]
        monotone = e == sorted(e, reverse=True) and e_p == sorted(e_p)
        trend = ("Larger sigma is easier to learn and further from p: the error against the score of p_sigma "
                 "falls with sigma while the error against the score of p grows, the trade-off the "
                 "noise-conditional model of implementation item 4 is built to escape. " if monotone else "")
        overfit = max(x["relative_score_error_test"] / x["relative_score_error"] for x in rows)
        held_out = (f" (at most {self.r.num(overfit, '.1f')} times the error on fresh draws: no sign of overfitting "
                    "the training points)" if overfit < 2 else "")
        first = self.dsm(self.sigma)
        gap = first["train_loss"] - first["exact_train_loss"]
        gap_text = (f"exceeds it by {self.r.num(gap, '.2g')}" if gap > 0 else
                    f"is {self.r.num(-gap, '.2g')} below it, a fluctuation of one noise draw per point")
        return (f"Each model learns the score of its own perturbed density (@fig:toy-learned-fields, "
                f"@tab:toy-score-models). For {sig}, the relative score error against grad log p_sigma is {fresh} "
                f"on fresh draws of p_sigma and {test} on the held-out test split plus noise{held_out}. That "
                f"target is what DSM gets right. What it does not get right, by construction, is the score "
                f"of p itself: against grad log p, on draws of p, the same models are off by {to_p}. {trend}"
                f"The loss is no measure of fit on its own: at sigma = {self.g(self.sigma)} the model's loss on the "
                f"training split is {self.r.num(first['train_loss'], '.4g')}, and the exact score's on the same "
                f"points and noise, the floor, is {self.r.num(first['exact_train_loss'], '.4g')}; the model "
                f"{gap_text}. Only the difference from the floor, not the loss itself, reflects the model's error.")

    def sampling_analysis(self) -> str:
        asc, lan = self.row("deterministic ascent", self.exact_p), self.row("Langevin", self.exact_p)
        lan_ps, lan_l = self.row("Langevin", self.exact_p_sigma), self.row("Langevin", self.learned)
        asc_l = self.row("deterministic ascent", self.learned)
        iid, iid_ps = self.row(*self.iid_p), self.row(*self.iid_p_sigma)
        h = self.heavy_k
        ascent_best = max(self.m["samplers"], key=lambda x: x["mean_log_p"])["sampler"] == "deterministic ascent"
        close = abs(lan["weights"][h] - asc["weights"][h]) <= 2 * self.se
        keeps = ("no point crosses the low-density gap, so Langevin keeps the share of starts each basin received, "
                 "not the mode's weight" if close else "Langevin's share differs from the basin's, so some points "
                 "did cross the gap between the modes")
        s = self.g(self.sigma)
        most = (": the wrong weights are most of the distance" if min(
            self.gap_energy(x) / x["energy_distance_p"] for x in (asc, lan)) > 0.5 else "")
        model_gap = abs(lan_l["weights"][h] - lan_ps["weights"][h])
        sampler_gap = abs(lan_ps["weights"][h] - self.w_heavy)
        return (f"Both updates climb the same score, so each start ends in the basin it starts in "
                f"(@fig:toy-trajectories). Of the {self.n} uniform starts (@fig:toy-samples, "
                f"@tab:toy-sampler-metrics), deterministic ascent with the exact score of p sends "
                f"{self.w(asc['weights'][h])} to the heavy mode and Langevin dynamics leaves "
                f"{self.w(lan['weights'][h])} there (one binomial standard error is {self.r.num(self.se, '.3f')} at "
                f"this n), against its weight {self.w(self.w_heavy)}: {keeps}. With the learned "
                f"sigma = {s} model the shares are {self.w(asc_l['weights'][h])} (ascent) and "
                f"{self.w(lan_l['weights'][h])} (Langevin). Inside a basin the two differ. Ascent is an optimiser "
                f"and collapses every start onto a mode: its points' mean log p is "
                f"{self.r.num(asc['mean_log_p'], '.2f')}, {'the highest of all rows' if ascent_best else 'high'}, "
                f"against {self.r.num(iid['mean_log_p'], '.2f')} for i.i.d. draws of p (likelihood alone would rank "
                f"this non-sampler first). Langevin's noise sqrt(eps) z keeps the points spread around each mode "
                f"(mean log p {self.r.num(lan['mean_log_p'], '.2f')}). Their energy distances to p are "
                f"{self.r.num(asc['energy_distance_p'], '.3f')} (ascent) and "
                f"{self.r.num(lan['energy_distance_p'], '.3f')} (Langevin), against "
                f"{self.r.num(iid['energy_distance_p'], '.3f')} for i.i.d. draws of p; for two modes D = "
                f"{self.r.num(self.mode_distance(), '.1f')} apart, a weight gap dw alone adds 2 D dw^2 to it (two "
                f"point masses), {self.r.num(self.gap_energy(asc), '.3f')} for ascent's gap and "
                f"{self.r.num(self.gap_energy(lan), '.3f')} for Langevin's{most}. Model error against sampler "
                "error: with the learned model "
                f"and with the exact score of p_{s}, Langevin's heavy shares are {self.w(lan_l['weights'][h])} and "
                f"{self.w(lan_ps['weights'][h])}, and its energy distances to p_{s} "
                f"{self.r.num(lan_l['energy_distance_p_sigma'], '.3f')} and "
                f"{self.r.num(lan_ps['energy_distance_p_sigma'], '.3f')} (i.i.d. draws of p_{s}: "
                f"{self.r.num(iid_ps['energy_distance_p_sigma'], '.3f')}); the model changes the weight by "
                f"{self.r.num(model_gap, '.3f')}, the sampler misses it by {self.r.num(sampler_gap, '.3f')} even with "
                f"the exact score, so {'the sampler' if sampler_gap > model_gap else 'the model'}'s error dominates "
                "here.")

    def annealed_analysis(self) -> str:
        nc = self.nc()
        h = self.heavy_k
        errs = nc["relative_score_error"]
        nc_text = ", ".join(f"{self.err(v)} at sigma = {self.g(float(k))}" for k, v in errs.items())
        single = {x["sigma"]: x["relative_score_error"] for x in self.dsm_models()}
        shared = [k for k in errs if float(k) in single]
        better = [k for k in shared if errs[k] < single[float(k)]]
        compare = ", ".join(f"{self.err(single[float(k)])} at sigma = {self.g(float(k))}" for k in shared)
        which = ("closer at every shared sigma" if len(better) == len(shared) else "further at every shared sigma"
                 if not better else f"closer at sigma = {', '.join(self.g(float(k)) for k in better)} only")
        a_ex, a_le = self.row("annealed Langevin", self.exact_ps), self.row("annealed Langevin", self.learned_nc)
        lan_l, lan = self.row("Langevin", self.learned), self.row("Langevin", self.exact_p)
        iid, iid_ps = self.row(*self.iid_p), self.row(*self.iid_p_sigma)
        levels = self.m["annealed_sigmas"]
        s_last = self.g(levels[-1])
        off = round(abs(a_ex["weights"][h] - self.w_heavy) / self.se, 1) > 2  # as within() prints it
        rest = (" The gap that remains with exact scores is more than two binomial standard errors, so more than "
                "sampling error; this run does not say whether more steps per level would close it." if off else "")
        like_ps = (a_ex["energy_distance_p_sigma"] < a_ex["energy_distance_p"] and
                   abs(a_ex["mean_log_p"] - iid_ps["mean_log_p"]) < abs(a_ex["mean_log_p"] - iid["mean_log_p"]))
        follows = f": the samples look like p_{s_last}'s" if like_ps else ""
        return (f"One network s_theta(x, sigma) covers every level (@fig:toy-noise-conditional): its relative "
                f"score error is {nc_text}; the single-level models of @fig:toy-learned-fields reach {compare}, so "
                f"the shared network is {which}. Annealed Langevin dynamics starts at sigma = {self.g(levels[0])}, "
                "where p_sigma is one broad bump whose score is learned everywhere and points mix freely, and lets "
                "them settle into the modes as sigma falls. The heavy mode gets "
                f"{self.w(a_ex['weights'][h])} of the points with the exact scores and {self.w(a_le['weights'][h])} "
                f"with the learned model, against its weight {self.w(self.w_heavy)} "
                f"({self.within(a_ex['weights'][h], self.w_heavy, self.se, 'it')} with exact scores, "
                f"{self.within(a_le['weights'][h], self.w_heavy, self.se, 'it')} with the learned model), where plain "
                f"Langevin from the same starts gave {self.w(lan['weights'][h])} (exact score of p) and "
                f"{self.w(lan_l['weights'][h])} (learned); the total variation distance of the weights goes from "
                f"{self.r.num(lan_l['weight_tv'], '.3f')} to {self.r.num(a_le['weight_tv'], '.3f')}.{rest} What "
                f"annealing cannot fix is its last level: it stops at sigma = {s_last}, so at best its samples "
                f"follow p_{s_last}, not p. Their energy distance is "
                f"{self.r.num(a_ex['energy_distance_p_sigma'], '.3f')} to p_{s_last} and "
                f"{self.r.num(a_ex['energy_distance_p'], '.3f')} to p (exact scores), and their mean log p is "
                f"{self.r.num(a_ex['mean_log_p'], '.2f')}, against {self.r.num(iid_ps['mean_log_p'], '.2f')} for "
                f"i.i.d. draws of p_{s_last} and {self.r.num(iid['mean_log_p'], '.2f')} for draws of p{follows}. A "
                "smaller last sigma, or a final denoising step x + sigma_L^2 s_theta(x, sigma_L) (Tweedie's "
                "formula), would move them toward p.")

    def song_ermon_analysis(self) -> str:
        se = self.m["song_ermon"]
        true = se["true_weights"][0]
        lan, ann, iid = (se["weights"][k][0] for k in ("langevin", "annealed", "iid"))
        s_lan, s_ann, s_iid = (se["standard_errors"][k][0] for k in ("langevin", "annealed", "iid"))
        mode = self.point(se["means"][0])
        return (f"Song and Ermon's mixture puts {self.g(true)} on the mode at {mode}, with unit variances, and the "
                "square of uniform starts is symmetric about the boundary between the two basins, so about half of "
                f"the starts fall in each (@fig:toy-song-ermon, @tab:toy-song-ermon-weights). Langevin dynamics "
                f"with the exact score gives the mode at {mode} {self.w(lan)} +- {self.w(s_lan)}, "
                f"{self.within(lan, 0.5, s_lan, 'one half')} and {self.within(lan, true, s_lan, 'its weight')}. "
                f"Annealed Langevin from the same starts gives {self.w(ann)} +- {self.w(s_ann)}, "
                f"{self.within(ann, true, s_ann, self.g(true))}; i.i.d. draws give {self.w(iid)} +- "
                f"{self.w(s_iid)}. This is the published result, reproduced: the exact score does not tell plain "
                "Langevin dynamics the weights of modes separated by a region of near-zero density; annealing does.")

    def ssm_analysis(self) -> str:
        ssm, dsm = self.ssm(), self.dsm(self.ssm()["sigma"])
        s = self.g(ssm["sigma"])
        ratio = ssm["seconds"] / dsm["seconds"]
        cost = ("the cost of the second backpropagation through the vector-Jacobian product" if ratio > 1 else
                "at this budget the timings do not show the cost of its second backpropagation")
        lower = ssm["relative_score_error"] < dsm["relative_score_error"]
        return (f"score_toy trains one more model with SSM-VR at sigma = {s}, on the same data, network and number "
                f"of steps ({ssm['steps']}) as DSM's (@tab:toy-score-models). It took "
                f"{self.r.num(ssm['seconds'], '.1f')} s against DSM's {self.r.num(dsm['seconds'], '.1f')} s, "
                f"{self.r.num(ratio, '.1f')} times as long: {cost}. Its relative score error is "
                f"{self.err(ssm['relative_score_error'])} "
                f"against DSM's {self.err(dsm['relative_score_error'])} on fresh draws of p_{s}, and "
                f"{self.err(ssm['relative_score_error_test'])} against "
                f"{self.err(dsm['relative_score_error_test'])} on the test split; SSM-VR is "
                f"{'the more accurate' if lower else 'the less accurate'} of the two in this run, but with one "
                "training run of each that does not rank the losses. Its loss is negative: "
                f"{self.r.num(ssm['train_loss'], '.4g')} on the training split, against "
                f"{self.r.num(ssm['exact_train_loss'], '.4g')} for the exact score on the same points and "
                f"projections, which estimates the minimum -1/2 E|grad log p_{s}|^2 (on one draw of noise and "
                "projections a trained model can land on either side of it). What SSM buys is that it needs "
                "no noise at all: with sigma = None it learns the score of the clean data, which DSM cannot; what it "
                "costs is the time per step.")


def and_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def torch_point(x: np.ndarray):
    """One 2D point as a float64 tensor of shape (1, 2)."""
    import torch

    return torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(1, 2)
