"""Q2 of the homework: score-based models, theory and implementation on the student's mixture."""

from __future__ import annotations

import json

from report.homework import Homework, rel


def theory(hw: Homework) -> None:
    r = hw.r
    r.heading("Q2. Score-based models: theory")
    r.text("docs/theory.md, items 6 to 9.")
    for n, q in zip((6, 7, 8, 9), ("Q2.1", "Q2.2", "Q2.3", "Q2.4 and Q2.5"), strict=True):
        hw.theory_answer(n, q)
    cmd = hw.run("python", "-m", "report.figures", "why-noise", "--student-id", str(hw.args.student_id),
                   "--steps", str(hw.s["why_noise_steps"]), "--out", rel(hw.work))
    why = hw.json("why_noise.json")
    small, large = why["sigma_0.1"], why["sigma_3"]
    r.figure(hw.work / "why_noise.png", "Denoising score matching on the student's training data at sigma = "
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

def implementation(hw: Homework) -> None:
    r = hw.r
    r.heading("Q2. Score-based models: implementation")
    toy = hw.work / "score_toy"
    cmd = hw.run("python", "-m", "score_toy", "--student-id", str(hw.args.student_id), "--out", rel(toy),
                   "--force", *(["--quick"] if hw.args.quick else []))
    metrics = json.loads((toy / "metrics.json").read_text())
    figures = json.loads((toy / "figures.json").read_text())
    analysis = score_toy_analysis(metrics)
    for fig in figures:
        r.figure(toy / fig["file"], fig["caption"], cmd)
        if fig["number"] in analysis:
            r.text(analysis[fig["number"]])


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
