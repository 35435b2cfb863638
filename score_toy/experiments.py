"""The experiments behind ``python -m score_toy``: train the score models, run every sampler, measure, draw.

``run(cfg, student_id, out)`` writes fig1..fig6 (PNG, numbered and captioned), ``metrics.json``, ``figures.json``
and ``captions.md`` into ``out`` and returns the metrics. The score models train on the training split of the
course notebook's data set for the student (:func:`score_toy.mixture.course_samples`); held-out numbers use its
test split, and ``metrics.json`` names the set behind every number (``evaluation_sets``). Every other random draw
comes from a generator seeded from ``cfg["seed"]`` and the stage, so a run is deterministic on CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from score_toy.losses import DSMLoss, NCSMLoss, SlicedScoreMatchingLoss
from score_toy.metrics import energy_distance, estimate_weights, mean_log_likelihood, relative_score_error
from score_toy.mixture import GaussianMixture2D, course_samples
from score_toy.models import NoiseConditionalScoreMLP, ScoreMLP
from score_toy.plots import draw_density, draw_samples, draw_score_field, draw_trajectories, panels, save_figure
from score_toy.samplers import annealed_langevin_dynamics, deterministic_ascent, langevin_dynamics
from score_toy.sigmas import geometric_sigmas
from score_toy.train import fit


class OutputDirError(ValueError):
    """The output folder holds a different run (or other files) and would be overwritten."""


# ---------------------------------------------------------------------------------------------------------- files
def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def claim_output_dir(out: Path, run_info: dict[str, Any], force: bool = False) -> None:
    """Create ``out`` and record ``run_info`` in ``out/run.json``.

    A folder that already holds a run with other settings, or files but no ``run.json``, is refused unless ``force``;
    re-running the same settings into the same folder is allowed (the run is deterministic).
    """
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "run.json"
    if not force:
        if marker.is_file():
            try:
                previous = json.loads(marker.read_text())
            except json.JSONDecodeError:
                previous = None
            if previous != json.loads(json.dumps(run_info)):
                raise OutputDirError(f"{out} holds a different run (see {marker}); choose another --out or pass "
                                     "--force to overwrite it")
        elif any(out.iterdir()):
            raise OutputDirError(f"{out} is not empty and holds no score_toy run.json; choose another --out or "
                                 "pass --force")
    write_atomic(marker, json.dumps(run_info, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------------- helpers
def _generator(cfg: dict[str, Any], stage: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 * cfg["seed"] + stage)


def _uniform_box(n: int, box: list[float], generator: torch.Generator) -> Tensor:
    lo, hi = float(box[0]), float(box[1])
    return lo + (hi - lo) * torch.rand(n, 2, generator=generator)


def _fmt_sigma(sigma: float | None) -> str:
    return "0" if sigma is None else f"{sigma:g}"


def _weights(w: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in w) + ")"


def _train(model: torch.nn.Module, loss, data: Tensor, test: Tensor, section: dict[str, Any],
           generator: torch.Generator, eval_seed: int) -> dict[str, Any]:
    """Fit ``model`` on ``data``; then its loss on the whole training and test splits, with the same noise seed."""
    start = time.perf_counter()
    history = fit(model, loss, data, steps=section["steps"], batch_size=section["batch_size"], lr=float(section["lr"]),
                  generator=generator)
    seconds = time.perf_counter() - start
    tail = history[-max(1, len(history) // 10):]
    return {"steps": section["steps"], "final_loss": sum(tail) / len(tail),
            "train_loss": evaluate_loss(model, loss, data, torch.Generator().manual_seed(eval_seed)),
            "test_loss": evaluate_loss(model, loss, test, torch.Generator().manual_seed(eval_seed)),
            "seconds": seconds}


def evaluate_loss(model: torch.nn.Module, loss, x: Tensor, generator: torch.Generator) -> float:
    """``loss`` of the trained ``model`` on all of ``x`` at once (no update); its noise comes from ``generator``."""
    return float(loss(model, x, generator).detach())


def fixed_sigma_loss(name: str, sigma: float, ssm: dict[str, Any]) -> DSMLoss | SlicedScoreMatchingLoss:
    """The loss named by ``fixed_sigma.loss`` (dsm, ssm or ssm_vr) at noise level ``sigma``."""
    if name == "dsm":
        return DSMLoss(sigma)
    if name in ("ssm", "ssm_vr"):
        return SlicedScoreMatchingLoss(n_projections=ssm["n_projections"], variance_reduction=name == "ssm_vr",
                                       projection=ssm["projection"], sigma=sigma)
    raise ValueError(f"unknown loss {name!r}; use dsm, ssm or ssm_vr")


def sample_metrics(mixture: GaussianMixture2D, x: Tensor, ref_p: Tensor, ref_ps: Tensor,
                   test: Tensor) -> dict[str, Any]:
    """Weights by responsibility, energy distances to i.i.d. samples of p and of p_sigma and to the held-out test
    split, mean log p."""
    finite = torch.isfinite(x).all(-1)
    xf = x[finite]
    w = estimate_weights(mixture, x)
    ok = xf.shape[0] >= 2
    return {
        "weights": w.tolist(),
        "weight_tv": float(0.5 * (w - mixture.weights).abs().sum()),
        "energy_distance_p": energy_distance(xf, ref_p) if ok else math.nan,
        "energy_distance_p_sigma": energy_distance(xf, ref_ps) if ok else math.nan,
        "energy_distance_test": energy_distance(xf, test) if ok else math.nan,
        "mean_log_p": mean_log_likelihood(mixture, xf) if ok else math.nan,
        "n_nonfinite": int((~finite).sum()),
    }


# ------------------------------------------------------------------------------------------------------- run
def run(cfg: dict[str, Any], student_id: int | str, out: str | Path,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every experiment of the config for one student's mixture; write figures and metrics into ``out``."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg["num_threads"])
    ext = (float(cfg["plot"]["extent"][0]), float(cfg["plot"]["extent"][1]))
    arrows, dgrid, dpi = cfg["plot"]["arrows"], cfg["plot"]["density_grid"], cfg["plot"]["dpi"]
    figures: list[dict[str, Any]] = []

    def save(fig, name: str, caption: str) -> None:
        number = len(figures) + 1
        file = f"fig{number}_{name}.png"
        save_figure(fig, out / file, number, caption, dpi=dpi)
        figures.append({"number": number, "file": file, "caption": caption})
        log(f"  wrote {file}")

    mixture = GaussianMixture2D.from_student_id(student_id)
    true_w = mixture.weights.tolist()
    train_np, test_np = course_samples(student_id, cfg["n_samples"], cfg["train_split"])
    data, test = torch.from_numpy(train_np).float(), torch.from_numpy(test_np).float()
    n_train, n_test = data.shape[0], test.shape[0]
    data_var = float(data.var(0).mean())
    log(f"student {student_id}: weights {_weights(true_w)}, means {mixture.means.round(decimals=2).tolist()}; "
        f"the course data set: {n_train} training and {n_test} test points")

    # Figure 1: the analytic score of p.
    fig, ax = panels(1, 1, size=6.5)
    draw_density(ax[0, 0], mixture, ext, dgrid)
    draw_score_field(ax[0, 0], mixture.score_fn, None, ext, arrows)
    ax[0, 0].set_title(f"p(x) and its score, weights {_weights(true_w)}", fontsize=9)
    save(fig, "analytic_score", f"The analytic score grad log p(x) of student {student_id}'s two-component mixture "
         "(arrows, length growing like the square root of |score|) over the density p (blue contours). "
         "Arrows point to the nearer mode and vanish at the modes.")

    # Fixed-sigma models (DSM by default), one per sigma.
    fs, ssm = cfg["fixed_sigma"], cfg["ssm"]
    models: dict[float, ScoreMLP] = {}
    model_rows: list[dict[str, Any]] = []

    def scale(sigma: float) -> float:
        return math.sqrt(data_var + sigma**2) if cfg["input_scaling"] else 1.0

    for i, sigma in enumerate(float(s) for s in fs["sigmas"]):
        torch.manual_seed(1000 * cfg["seed"] + 100 + i)
        model = ScoreMLP(fs["hidden"], fs["depth"], sigma=sigma, input_scale=scale(sigma))
        info = _train(model, fixed_sigma_loss(fs["loss"], sigma, ssm), data, test, fs, _generator(cfg, 10 + i),
                      1000 * cfg["seed"] + 130 + i)
        err = relative_score_error(model, mixture, sigma, cfg["n_eval"], _generator(cfg, 60 + i))
        err_test = relative_score_error(model, mixture, sigma, generator=_generator(cfg, 110 + i), points=test)
        models[sigma] = model
        model_rows.append({"model": "ScoreMLP", "loss": fs["loss"], "sigma": sigma, **info,
                           "relative_score_error": err, "relative_score_error_test": err_test})
        log(f"  trained ScoreMLP ({fs['loss']}) at sigma={sigma:g}: relative score error {err:.2e}")
    sig_s = float(cfg["sampling"]["sigma"])
    if ssm["comparison"]:
        torch.manual_seed(1000 * cfg["seed"] + 150)
        model = ScoreMLP(fs["hidden"], fs["depth"], sigma=sig_s, input_scale=scale(sig_s))
        info = _train(model, fixed_sigma_loss("ssm_vr", sig_s, ssm), data, test, fs, _generator(cfg, 15),
                      1000 * cfg["seed"] + 135)
        err = relative_score_error(model, mixture, sig_s, cfg["n_eval"], _generator(cfg, 65))
        err_test = relative_score_error(model, mixture, sig_s, generator=_generator(cfg, 115), points=test)
        model_rows.append({"model": "ScoreMLP", "loss": "ssm_vr", "sigma": sig_s, **info,
                           "relative_score_error": err, "relative_score_error_test": err_test})
        log(f"  trained ScoreMLP (ssm_vr) at sigma={sig_s:g}: relative score error {err:.2e}")

    # Figure 2: learned fields beside the analytic fields of p_sigma.
    sigmas = list(models)
    fig, ax = panels(2, len(sigmas), size=3.4)
    for j, sigma in enumerate(sigmas):
        target = mixture.perturbed(sigma)
        for r in range(2):
            draw_density(ax[r, j], target, ext, dgrid)
        sc = draw_score_field(ax[1, j], mixture.score_fn, sigma, ext, arrows)
        draw_score_field(ax[0, j], models[sigma], sigma, ext, arrows, scale=sc)
        err = next(r["relative_score_error"] for r in model_rows if r["sigma"] == sigma and r["loss"] == fs["loss"])
        ax[0, j].set_title(f"learned s_theta(x), sigma={sigma:g}\nrelative error {err:.1e}", fontsize=9)
        ax[1, j].set_title(f"analytic grad log p_sigma, sigma={sigma:g}\nmax |score| on grid {sc:.2g}", fontsize=9)
    save(fig, "learned_score_fields", f"Top: score models s_theta(x) trained with {fs['loss'].upper()} at one noise "
         f"level each ({fs['steps']} steps on the {n_train} training points of the course data set). Bottom: the "
         "analytic score of the matching perturbed density p_sigma = p * N(0, sigma^2 I) (contours); the two panels "
         "of a column share the arrow scale. Larger sigma gives a smoother, weaker field that is easier to learn.")

    # Samplers with fixed-sigma scores: exact p, exact p_sigma and the learned model.
    smp = cfg["sampling"]
    n, k = smp["n_samples"], smp["n_trajectories"]
    starts = _uniform_box(n, smp["start_box"], _generator(cfg, 20))
    ref_p = mixture.sample(n, _generator(cfg, 40))
    ref_ps = mixture.perturbed(sig_s).sample(n, _generator(cfg, 41))
    sources = [("exact score of p", mixture.score_fn, None),
               (f"exact score of p_{sig_s:g}", mixture.score_fn, sig_s),
               (f"learned s_theta, sigma={sig_s:g}", models[sig_s], sig_s)]
    rows: list[dict[str, Any]] = [
        {"sampler": "i.i.d. draws", "score": "p itself", **sample_metrics(
            mixture, mixture.sample(n, _generator(cfg, 42)), ref_p, ref_ps, test)},
        {"sampler": "i.i.d. draws", "score": f"p_{sig_s:g} itself", **sample_metrics(
            mixture, mixture.perturbed(sig_s).sample(n, _generator(cfg, 43)), ref_p, ref_ps, test)},
        {"sampler": "course data", "score": "training split", **sample_metrics(mixture, data, ref_p, ref_ps, test)},
    ]
    results: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}
    for name, sampler, settings in (("deterministic ascent", deterministic_ascent, smp["ascent"]),
                                    ("Langevin", langevin_dynamics, smp["langevin"])):
        for label, fn, sigma in sources:
            extra = {} if sampler is deterministic_ascent else {"generator": _generator(cfg, 30)}
            t = time.perf_counter()
            x, path = sampler(fn, starts, step_size=float(settings["step_size"]), n_steps=settings["n_steps"],
                              sigma=sigma, return_trajectory=True, **extra)
            results[name, label] = (x, path[:, :k])
            rows.append({"sampler": name, "score": label, **sample_metrics(mixture, x, ref_p, ref_ps, test),
                         "seconds": time.perf_counter() - t})
    log("  ran deterministic ascent and Langevin dynamics")

    # Figure 3: trajectories.
    fig, ax = panels(2, 2, size=4.0)
    for r, name in enumerate(("deterministic ascent", "Langevin")):
        for c, label in enumerate((sources[0][0], sources[2][0])):
            draw_density(ax[r, c], mixture, ext, dgrid)
            draw_trajectories(ax[r, c], results[name, label][1], ext)
            ax[r, c].set_title(f"{name}, {label}", fontsize=9)
    asc, lan = smp["ascent"], smp["langevin"]
    save(fig, "trajectories", f"Trajectories from {k} starting points (circles; stars are the end points) over p. "
         f"Top: deterministic ascent x <- x + eps s(x) (eps = {asc['step_size']}, {asc['n_steps']} steps) climbs "
         f"to the nearest mode. Bottom: Langevin dynamics x <- x + eps/2 s(x) + sqrt(eps) z (eps = "
         f"{lan['step_size']}, {lan['n_steps']} steps) reaches a mode and then wanders around it. Left: exact "
         f"score of p; right: the learned model at sigma = {sig_s:g}.")

    # Figure 4: samples of every fixed-sigma method.
    fig, ax = panels(2, 4, size=3.2)
    iid = [(mixture.sample(n, _generator(cfg, 42)), "i.i.d. samples of p"),
           (mixture.perturbed(sig_s).sample(n, _generator(cfg, 43)), f"i.i.d. samples of p_{sig_s:g}")]
    for r, name in enumerate(("deterministic ascent", "Langevin")):
        draw_density(ax[r, 0], mixture, ext, dgrid)
        draw_samples(ax[r, 0], iid[r][0], ext)
        ax[r, 0].set_title(iid[r][1] + f"\nweights {_weights(estimate_weights(mixture, iid[r][0]).tolist())}",
                           fontsize=9)
        for c, (label, _, _) in enumerate(sources, start=1):
            x = results[name, label][0]
            draw_density(ax[r, c], mixture, ext, dgrid)
            draw_samples(ax[r, c], x, ext)
            ax[r, c].set_title(f"{name}, {label}\nweights {_weights(estimate_weights(mixture, x).tolist())}",
                               fontsize=8)
    save(fig, "samples", f"{n} points from each method (orange) over p (contours), all from the same uniform starts "
         f"on {smp['start_box']}^2; titles give the mode weights found (true {_weights(true_w)}). Deterministic "
         "ascent collapses every point onto a mode. Langevin dynamics spreads them like p (exact score of p) or "
         f"like the wider p_{sig_s:g} (exact or learned score at sigma = {sig_s:g}), but its weights are the "
         "shares of the starts in the two basins of attraction, because no point crosses between modes.")

    # Noise-conditional model and annealed Langevin dynamics.
    nc = cfg["noise_conditional"]
    torch.manual_seed(1000 * cfg["seed"] + 200)
    nc_model = NoiseConditionalScoreMLP(nc["hidden"], nc["depth"],
                                        data_std=math.sqrt(data_var) if cfg["input_scaling"] else None)
    nc_loss = NCSMLoss(nc["sigma_min"], nc["sigma_max"], nc["sampling"], nc["n_levels"])
    info = _train(nc_model, nc_loss, data, test, nc, _generator(cfg, 50), 1000 * cfg["seed"] + 140)
    nc_err = {f"{float(s):g}": relative_score_error(nc_model, mixture, float(s), cfg["n_eval"], _generator(cfg, 70 + i))
              for i, s in enumerate(nc["field_sigmas"])}
    nc_err_test = {f"{float(s):g}": relative_score_error(nc_model, mixture, float(s), points=test,
                                                        generator=_generator(cfg, 120 + i))
                   for i, s in enumerate(nc["field_sigmas"])}
    model_rows.append({"model": "NoiseConditionalScoreMLP", "loss": f"ncsm ({nc['sampling']})",
                       "sigma": [float(nc["sigma_min"]), float(nc["sigma_max"])], **info,
                       "relative_score_error": nc_err, "relative_score_error_test": nc_err_test})
    log(f"  trained NoiseConditionalScoreMLP: relative score errors {nc_err}")
    levels = geometric_sigmas(float(nc["sigma_max"]), float(nc["sigma_min"]), nc["n_levels"])
    ann = smp["annealed"]
    for label, fn in (("exact scores of p_sigma", mixture.score_fn), ("learned s_theta(x, sigma)", nc_model)):
        t = time.perf_counter()
        x, path = annealed_langevin_dynamics(fn, starts, sigmas=levels, step_size=float(ann["step_size"]),
                                             n_steps_each=ann["n_steps_each"], generator=_generator(cfg, 31),
                                             return_trajectory=True)
        results["annealed Langevin", label] = (x, path[:: max(1, ann["n_steps_each"]), :k])  # ends of levels
        rows.append({"sampler": "annealed Langevin", "score": label,
                     **sample_metrics(mixture, x, ref_p, ref_ps, test), "seconds": time.perf_counter() - t})
    log("  ran annealed Langevin dynamics")

    # Figure 5: the noise-conditional model.
    field_sigmas = [float(s) for s in nc["field_sigmas"]]
    cols = max(4, len(field_sigmas))
    fig, ax = panels(3, cols, size=3.2)
    for j, sigma in enumerate(field_sigmas):
        target = mixture.perturbed(sigma)
        for r in range(2):
            draw_density(ax[r, j], target, ext, dgrid)
        sc = draw_score_field(ax[1, j], mixture.score_fn, sigma, ext, arrows)
        draw_score_field(ax[0, j], nc_model, sigma, ext, arrows, scale=sc)
        ax[0, j].set_title(f"learned s_theta(x, {sigma:g})\nrelative error {nc_err[f'{sigma:g}']:.1e}", fontsize=9)
        ax[1, j].set_title(f"analytic grad log p_sigma, sigma={sigma:g}", fontsize=9)
    for j in range(len(field_sigmas), cols):
        ax[0, j].axis("off")
        ax[1, j].axis("off")
    bottom = [(results["annealed Langevin", "exact scores of p_sigma"][0], "annealed Langevin, exact scores"),
              (results["annealed Langevin", "learned s_theta(x, sigma)"][0], "annealed Langevin, learned"),
              (results["Langevin", sources[2][0]][0], f"Langevin, learned sigma={sig_s:g} (fig. 4)")]
    for j, (x, title) in enumerate(bottom):
        draw_density(ax[2, j], mixture, ext, dgrid)
        draw_samples(ax[2, j], x, ext)
        ax[2, j].set_title(f"{title}\nweights {_weights(estimate_weights(mixture, x).tolist())}", fontsize=9)
    draw_density(ax[2, 3], mixture, ext, dgrid)
    draw_trajectories(ax[2, 3], results["annealed Langevin", "learned s_theta(x, sigma)"][1], ext)
    ax[2, 3].set_title("annealed Langevin, learned:\nposition at the end of each level", fontsize=9)
    for j in range(4, cols):
        ax[2, j].axis("off")
    save(fig, "noise_conditional", f"One noise-conditional model s_theta(x, sigma) = f(x, log sigma) / sigma trained "
         f"with lambda(sigma) = sigma^2 over sigma in [{nc['sigma_min']:g}, {nc['sigma_max']:g}] ({nc['sampling']}, "
         f"{nc['steps']} steps). Row 1: its fields; row 2: the analytic fields of p_sigma (same arrow scale per "
         f"column); compare with figure 2. Row 3: annealed Langevin dynamics ({nc['n_levels']} geometric levels "
         f"from {nc['sigma_max']:g} to {nc['sigma_min']:g}, {ann['n_steps_each']} steps each, eps = "
         f"{ann['step_size']}) with exact and learned scores, and plain Langevin with the sigma = {sig_s:g} model "
         f"from figure 4, all from the same starts (true weights {_weights(true_w)}); the last panel follows {k} "
         "points from level to level.")

    # Figure 6: Song & Ermon (2019), exact scores.
    song = song_ermon(cfg, _generator(cfg, 80))
    se_mix = song.pop("mixture")
    se = cfg["song_ermon"]
    se_ext = (float(se["extent"][0]), float(se["extent"][1]))
    fig, ax = panels(1, 4, size=3.3)
    for j, (key, title) in enumerate((("iid", "i.i.d. samples"), ("langevin", "Langevin, exact score"),
                                      ("annealed", "annealed Langevin, exact scores"))):
        draw_density(ax[0, j], se_mix, se_ext, dgrid)
        draw_samples(ax[0, j], song["samples"][key], se_ext)
        ax[0, j].set_title(f"{title}\nweights {_weights(song['weights'][key])}", fontsize=9)
    labels = ["true", "i.i.d.", "Langevin", "annealed"]
    vals = [song["true_weights"][0]] + [song["weights"][key][0] for key in ("iid", "langevin", "annealed")]
    errs = [0.0] + [song["standard_errors"][key][0] for key in ("iid", "langevin", "annealed")]
    ax[0, 3].bar(labels, vals, yerr=errs, color=["gray", "tab:blue", "tab:red", "tab:green"], capsize=3)
    ax[0, 3].axhline(song["true_weights"][0], color="gray", lw=0.8, ls="--")
    ax[0, 3].set_ylim(0, 1)
    ax[0, 3].set_title("weight of the mode at (5, 5)", fontsize=9)
    ax[0, 3].tick_params(labelsize=8)
    save(fig, "song_ermon", f"Song & Ermon (2019), Fig. 3, reproduced with exact scores: p = 0.8 N((5,5), I) + "
         f"0.2 N((-5,-5), I), {se['n_samples']} starts uniform on {se['start_box']}^2. Langevin dynamics "
         f"(eps = {se['langevin']['step_size']}, {se['langevin']['n_steps']} steps) keeps the even split of the "
         f"starts; annealed Langevin ({se['annealed']['n_levels']} levels from {se['annealed']['sigma_max']:g} to "
         f"{se['annealed']['sigma_min']:g}, eps = {se['annealed']['step_size']}, {se['annealed']['n_steps_each']} "
         "steps each) recovers 0.8 / 0.2. Bars: weight of the (5, 5) mode, +- one binomial standard error.")
    del song["samples"]

    metrics = {
        "student_id": str(student_id),
        "mixture": {"weights": true_w, "means": mixture.means.tolist(), "covariances": mixture.covariances.tolist()},
        "data": {"source": "the course notebook's data set, score_toy.mixture.course_samples(student_id, n_samples, "
                           "train_split)", "n_samples": cfg["n_samples"], "train_split": cfg["train_split"],
                 "n_train": n_train, "n_test": n_test},
        "evaluation_sets": evaluation_sets(n, cfg["n_eval"], sig_s),
        "sampling_sigma": sig_s,
        "annealed_sigmas": levels.tolist(),
        "models": model_rows,
        "samplers": rows,
        "song_ermon": song,
        "figures": figures,
        "torch_version": torch.__version__,
        "wall_time_seconds": time.perf_counter() - t_start,
    }
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_atomic(out / "figures.json", json.dumps(figures, indent=2) + "\n")
    write_atomic(out / "captions.md", "".join(f"## Figure {f['number']}\n\n![Figure {f['number']}]({f['file']})\n\n"
                                              f"{f['caption']}\n\n" for f in figures))
    return metrics


def evaluation_sets(n: int, n_eval: int, sigma: float) -> dict[str, str]:
    """Which points every number of ``metrics.json`` is computed on."""
    return {
        "models.final_loss": "the training split: mean training loss over the last 10% of the steps",
        "models.train_loss": "the whole training split, after training, with the same noise seed as test_loss",
        "models.test_loss": "the held-out test split of the course data set, after training",
        "models.relative_score_error": f"{n_eval} fresh draws of p_sigma from the true mixture",
        "models.relative_score_error_test": "the test split plus N(0, sigma^2 I) noise (one draw per point)",
        "samplers.weights, weight_tv, mean_log_p": "the sampler's own points, scored by the true mixture",
        "samplers.energy_distance_p": f"{n} fresh i.i.d. draws of the true p",
        "samplers.energy_distance_p_sigma": f"{n} fresh i.i.d. draws of the true p_{sigma:g}",
        "samplers.energy_distance_test": "the held-out test split of the course data set",
        "samplers row course data / training split": "the training split itself, as a reference: its energy "
                                                     "distance to the test split is that of two data samples",
        "song_ermon": "Song & Ermon's fixed mixture, with fresh draws (no course data)",
    }


def song_ermon(cfg: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
    """Langevin vs annealed Langevin with exact scores on 0.8 N((5,5), I) + 0.2 N((-5,-5), I)."""
    se = cfg["song_ermon"]
    mix = GaussianMixture2D(se["weights"], se["means"], se["covariances"])
    n = se["n_samples"]
    starts = _uniform_box(n, se["start_box"], generator)
    iid = mix.sample(n, generator)
    lan = langevin_dynamics(mix.score_fn, starts, step_size=float(se["langevin"]["step_size"]),
                            n_steps=se["langevin"]["n_steps"], generator=generator)
    a = se["annealed"]
    levels = geometric_sigmas(float(a["sigma_max"]), float(a["sigma_min"]), a["n_levels"])
    ann = annealed_langevin_dynamics(mix.score_fn, starts, sigmas=levels, step_size=float(a["step_size"]),
                                     n_steps_each=a["n_steps_each"], generator=generator)
    samples = {"iid": iid, "langevin": lan, "annealed": ann}
    weights = {key: estimate_weights(mix, x).tolist() for key, x in samples.items()}
    return {
        "mixture": mix,
        "samples": samples,
        "true_weights": mix.weights.tolist(),
        "n_samples": n,
        "weights": weights,
        "standard_errors": {key: [math.sqrt(max(v * (1 - v), 0.0) / n) for v in w] for key, w in weights.items()},
    }


def format_tables(metrics: dict[str, Any]) -> str:
    """The metrics as three plain-text tables: score models, samplers, the Song & Ermon weights."""
    d = metrics["data"]
    lines = [f"score models, trained on the {d['n_train']} training points of the course data set; loss on the "
             f"training split and on the {d['n_test']} held-out test points; relative score error "
             "E|s_theta - grad log p_sigma|^2 / E|grad log p_sigma|^2"]

    def errors(err: float | dict[str, float]) -> str:
        return ", ".join(f"sigma={k}: {v:.1e}" for k, v in err.items()) if isinstance(err, dict) else f"{err:.1e}"

    for r in metrics["models"]:
        sig = r["sigma"] if isinstance(r["sigma"], list) else [r["sigma"]]
        lines.append(f"  {r['model']:<25} {r['loss']:<18} sigma {'-'.join(f'{s:g}' for s in sig):<6} "
                     f"{r['steps']:>5} steps {r['seconds']:6.1f} s   loss: train {r['train_loss']:.4g}, test "
                     f"{r['test_loss']:.4g}")
        lines.append(f"    relative score error: {errors(r['relative_score_error'])} (fresh p_sigma); "
                     f"{errors(r['relative_score_error_test'])} (test split + noise)")
    s = metrics["sampling_sigma"]
    head = (f"  {'sampler':<21} {'score':<26} {'weights':<14} {'TV':>5} {'ED to p':>8} {f'ED to p_{s:g}':>9} "
            f"{'ED to test':>10} {'mean log p':>10}")
    lines += ["", f"samplers (true weights {_weights(metrics['mixture']['weights'])}; ED = energy distance to fresh "
              "draws of p or p_sigma, or to the held-out test split)", head]
    for r in metrics["samplers"]:
        lines.append(f"  {r['sampler']:<21} {r['score']:<26} {_weights(r['weights']):<14} {r['weight_tv']:5.3f} "
                     f"{r['energy_distance_p']:8.3f} {r['energy_distance_p_sigma']:9.3f} "
                     f"{r['energy_distance_test']:10.3f} {r['mean_log_p']:10.3f}")
    se = metrics["song_ermon"]
    lines += ["", f"Song & Ermon (2019) mixture, weight of the (5, 5) mode (true {se['true_weights'][0]:.2f}, "
              f"n = {se['n_samples']})"]
    for key, name in (("iid", "i.i.d. samples"), ("langevin", "Langevin"), ("annealed", "annealed Langevin")):
        lines.append(f"  {name:<18} {se['weights'][key][0]:.3f} +- {se['standard_errors'][key][0]:.3f}")
    lines.append(f"\nwall time {metrics['wall_time_seconds']:.1f} s")
    return "\n".join(lines)
