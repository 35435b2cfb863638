"""The experiments behind ``python -m score_toy``: train the score models, run every sampler, measure, draw.

``run(cfg, student_id, out)`` writes fig1..fig6 (PNG; no number or caption drawn in), ``metrics.json``,
``figures.json`` (file, label and caption of each figure; captions refer to each other as ``@fig:label``),
``captions.md`` (the figures numbered, references resolved) and the Markdown tables ``table_*.md`` into ``out``
and returns the metrics. The score models train on the training split of the
course notebook's data set for the student (:func:`score_toy.mixture.course_samples`); held-out numbers use its
test split, and ``metrics.json`` names the set behind every number (``evaluation_sets``). Every other random draw
comes from a generator seeded from ``cfg["seed"]`` and the stage, so a run is deterministic on CPU.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from score_toy.atomic import write_text_atomic
from score_toy.losses import DSMLoss, NCSMLoss, SlicedScoreMatchingLoss
from score_toy.metrics import energy_distance, estimate_weights, mean_log_likelihood, relative_score_error
from score_toy.mixture import GaussianMixture2D, course_samples
from score_toy.models import NoiseConditionalScoreMLP, ScoreMLP
from score_toy.plots import draw_density, draw_samples, draw_score_field, draw_trajectories, panels, save_figure
from score_toy.samplers import annealed_langevin_dynamics, deterministic_ascent, langevin_dynamics
from score_toy.sigmas import geometric_sigmas
from score_toy.tables import captions_markdown, markdown_tables
from score_toy.train import fit


class OutputDirError(ValueError):
    """The output folder holds a different run (or other files) and would be overwritten."""


# ---------------------------------------------------------------------------------------------------------- files
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
    write_text_atomic(marker, json.dumps(run_info, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------------- helpers
def _generator(cfg: dict[str, Any], stage: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 * cfg["seed"] + stage)


def _uniform_box(n: int, box: list[float], generator: torch.Generator) -> Tensor:
    lo, hi = float(box[0]), float(box[1])
    return lo + (hi - lo) * torch.rand(n, 2, generator=generator)


def _weights(w: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in w) + ")"


def _point(p: list[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in p) + ")"


def _mixture_formula(se: dict[str, Any]) -> str:
    """``0.8 N((5, 5), I) + 0.2 N((-5, -5), I)`` from the song_ermon settings (C_k when not the identity)."""
    eye = [[1.0, 0.0], [0.0, 1.0]]
    return " + ".join(f"{float(w):g} N({_point(m)}, {'I' if [[float(v) for v in r] for r in c] == eye else f'C_{k}'})"
                      for k, (w, m, c) in enumerate(zip(se["weights"], se["means"], se["covariances"],
                                                        strict=True), start=1))


def exact_score_fn(mixture: GaussianMixture2D) -> Callable[[Tensor, Any], Tensor]:
    """The exact score of p (sigma None) or of p_sigma as a score model: sigma may be a number or one value per
    point (as NCSMLoss passes it)."""

    def score(x: Tensor, sigma: float | Tensor | None) -> Tensor:
        if sigma is None or not isinstance(sigma, Tensor) or sigma.numel() == 1:
            return mixture.score_fn(x, None if sigma is None else float(sigma))
        out = torch.empty_like(x)
        for value in torch.unique(sigma):
            at = sigma == value
            out[at] = mixture.score_fn(x[at], float(value))
        return out

    return score


def _train(model: torch.nn.Module, loss, data: Tensor, test: Tensor, section: dict[str, Any],
           generator: torch.Generator, eval_seed: int, mixture: GaussianMixture2D) -> dict[str, Any]:
    """Fit ``model`` on ``data``; then its loss on the whole training and test splits, and the loss of the exact
    score of the true mixture on the same points with the same noise (the floor the model is measured against)."""
    start = time.perf_counter()
    history = fit(model, loss, data, steps=section["steps"], batch_size=section["batch_size"], lr=float(section["lr"]),
                  generator=generator)
    seconds = time.perf_counter() - start
    tail = history[-max(1, len(history) // 10):]
    return {"steps": section["steps"], "final_loss": sum(tail) / len(tail),
            "train_loss": evaluate_loss(model, loss, data, torch.Generator().manual_seed(eval_seed)),
            "test_loss": evaluate_loss(model, loss, test, torch.Generator().manual_seed(eval_seed)),
            "exact_train_loss": evaluate_loss(exact_score_fn(mixture), loss, data,
                                              torch.Generator().manual_seed(eval_seed)),
            "exact_test_loss": evaluate_loss(exact_score_fn(mixture), loss, test,
                                             torch.Generator().manual_seed(eval_seed)),
            "seconds": seconds}


def evaluate_loss(model: Callable[[Tensor, Any], Tensor], loss, x: Tensor, generator: torch.Generator) -> float:
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
        "n": int(x.shape[0]),
        "n_nonfinite": int((~finite).sum()),
    }


# ------------------------------------------------------------------------------------------------------ setup
@dataclass
class Experiment:
    """What every stage of a run shares: the settings, the student's mixture and course data, the output."""

    cfg: dict[str, Any]
    student_id: int | str
    out: Path
    log: Callable[[str], None]
    mixture: GaussianMixture2D
    data: Tensor  # the training split of the course data set
    test: Tensor  # its held-out test split
    figures: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.true_weights = self.mixture.weights.tolist()
        self.data_var = float(self.data.var(0).mean())
        plot = self.cfg["plot"]
        self.extent = (float(plot["extent"][0]), float(plot["extent"][1]))
        self.arrows, self.density_grid = plot["arrows"], plot["density_grid"]
        self.sampling_sigma = float(self.cfg["sampling"]["sigma"])

    def generator(self, stage: int) -> torch.Generator:
        """The generator of one stage of the run (seeded from the config's seed and ``stage``)."""
        return _generator(self.cfg, stage)

    def input_scale(self, sigma: float) -> float:
        """The input scale of a model at noise level ``sigma``: the std of the noisy training data, or 1."""
        return math.sqrt(self.data_var + sigma**2) if self.cfg["input_scaling"] else 1.0

    def save(self, fig, name: str, label: str, caption: str) -> None:
        """Write the next figure and record it with its ``label`` (what captions and documents refer to it by, as
        ``@fig:label``) and its caption. The picture holds neither: documents number and caption it."""
        number = len(self.figures) + 1
        file = f"fig{number}_{name}.png"
        save_figure(fig, self.out / file, dpi=self.cfg["plot"]["dpi"])
        self.figures.append({"number": number, "label": label, "file": file, "caption": caption})
        self.log(f"  wrote {file}")


@dataclass
class SamplerRuns:
    """The fixed-sigma and annealed samplers' results: their rows of metrics.json and their points."""

    starts: Tensor  # the uniform starting points every sampler shares
    ref_p: Tensor  # fresh i.i.d. draws of p
    ref_p_sigma: Tensor  # fresh i.i.d. draws of p_sigma at the sampling sigma
    sources: list[tuple[str, Any, float | None]]  # (label, score function, its sigma)
    rows: list[dict[str, Any]]
    results: dict[tuple[str, str], tuple[Tensor, Tensor]] = field(default_factory=dict)  # (samples, trajectories)


def setup(cfg: dict[str, Any], student_id: int | str, out: Path, log: Callable[[str], None]) -> Experiment:
    """The output folder, the torch threads, the student's mixture and the course data set's two splits."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg["num_threads"])
    mixture = GaussianMixture2D.from_student_id(student_id)
    train_np, test_np = course_samples(student_id, cfg["n_samples"], cfg["train_split"])
    exp = Experiment(cfg, student_id, out, log, mixture, torch.from_numpy(train_np).float(),
                     torch.from_numpy(test_np).float())
    log(f"student {student_id}: weights {_weights(exp.true_weights)}, means "
        f"{mixture.means.round(decimals=2).tolist()}; the course data set: {exp.data.shape[0]} training and "
        f"{exp.test.shape[0]} test points")
    return exp


# ------------------------------------------------------------------------------------------ fixed-sigma models
def figure_analytic_score(exp: Experiment) -> None:
    """Figure 1: the analytic score of p over its density."""
    fig, ax = panels(1, 1, size=6.5)
    draw_density(ax[0, 0], exp.mixture, exp.extent, exp.density_grid)
    draw_score_field(ax[0, 0], exp.mixture.score_fn, None, exp.extent, exp.arrows)
    ax[0, 0].set_title(f"p(x) and its score, weights {_weights(exp.true_weights)}", fontsize=9)
    exp.save(fig, "analytic_score", "toy-analytic-score", f"The analytic score grad log p(x) of student "
             f"{exp.student_id}'s two-component mixture (arrows, length growing like the square root of |score|) over "
             "the density p (blue contours); the panel title gives the mixture's weights.")


def train_fixed_sigma_model(exp: Experiment, sigma: float, loss: str, stage: int,
                            init_stage: int) -> tuple[ScoreMLP, dict[str, Any]]:
    """A ScoreMLP trained with ``loss`` at noise level ``sigma`` and its row of metrics.json. ``init_stage`` seeds
    its initial weights; ``stage`` its training (generator 10 + stage), its losses (130 + stage) and its score
    errors (60 + stage on fresh draws of p_sigma, 110 + stage on the test split, 160 + stage on fresh draws of p
    against the score of p itself)."""
    fixed, seed = exp.cfg["fixed_sigma"], exp.cfg["seed"]
    torch.manual_seed(1000 * seed + init_stage)
    model = ScoreMLP(fixed["hidden"], fixed["depth"], sigma=sigma, input_scale=exp.input_scale(sigma))
    info = _train(model, fixed_sigma_loss(loss, sigma, exp.cfg["ssm"]), exp.data, exp.test, fixed,
                  exp.generator(10 + stage), 1000 * seed + 130 + stage, exp.mixture)
    err = relative_score_error(model, exp.mixture, sigma, exp.cfg["n_eval"], exp.generator(60 + stage))
    err_test = relative_score_error(model, exp.mixture, sigma, generator=exp.generator(110 + stage), points=exp.test)
    err_p = relative_score_error(lambda x, _: model(x, sigma), exp.mixture, None, exp.cfg["n_eval"],
                                 exp.generator(160 + stage))
    exp.log(f"  trained ScoreMLP ({loss}) at sigma={sigma:g}: relative score error {err:.2e}")
    ssm = exp.cfg["ssm"]
    projections = {"projections": f"{ssm['n_projections']} {ssm['projection']} projection"
                                  f"{'s' if ssm['n_projections'] > 1 else ''}"} if loss.startswith("ssm") else {}
    return model, {"model": "ScoreMLP", "size": f"{fixed['hidden']} x {fixed['depth']}", "loss": loss,
                   **projections, "sigma": sigma, **info, "relative_score_error": err,
                   "relative_score_error_test": err_test, "relative_error_to_score_of_p": err_p}


SSM_COMPARISON_STAGE, SSM_COMPARISON_INIT = 5, 150  # the seeds of the SSM-VR comparison model


def train_fixed_sigma_models(exp: Experiment) -> tuple[dict[float, ScoreMLP], list[dict[str, Any]]]:
    """One ScoreMLP per ``fixed_sigma.sigmas`` (and the SSM-VR comparison model at the sampling sigma, which
    only adds a row): ``({sigma: model}, rows of metrics.json)``."""
    fixed = exp.cfg["fixed_sigma"]
    models: dict[float, ScoreMLP] = {}
    rows: list[dict[str, Any]] = []
    for i, sigma in enumerate(float(s) for s in fixed["sigmas"]):
        models[sigma], row = train_fixed_sigma_model(exp, sigma, fixed["loss"], i, 100 + i)
        rows.append(row)
    if exp.cfg["ssm"]["comparison"]:
        rows.append(train_fixed_sigma_model(exp, exp.sampling_sigma, "ssm_vr", SSM_COMPARISON_STAGE,
                                            SSM_COMPARISON_INIT)[1])
    return models, rows


def figure_learned_fields(exp: Experiment, models: dict[float, ScoreMLP], rows: list[dict[str, Any]]) -> None:
    """Figure 2: each learned field above the analytic field of p_sigma."""
    fixed = exp.cfg["fixed_sigma"]
    sigmas = list(models)
    fig, ax = panels(2, len(sigmas), size=3.4)
    for j, sigma in enumerate(sigmas):
        target = exp.mixture.perturbed(sigma)
        for r in range(2):
            draw_density(ax[r, j], target, exp.extent, exp.density_grid)
        sc = draw_score_field(ax[1, j], exp.mixture.score_fn, sigma, exp.extent, exp.arrows)
        draw_score_field(ax[0, j], models[sigma], sigma, exp.extent, exp.arrows, scale=sc)
        err = next(r["relative_score_error"] for r in rows if r["sigma"] == sigma and r["loss"] == fixed["loss"])
        ax[0, j].set_title(f"learned s_theta(x), sigma={sigma:g}\nrelative error {err:.1e}", fontsize=9)
        ax[1, j].set_title(f"analytic grad log p_sigma, sigma={sigma:g}\nmax |score| on grid {sc:.2g}", fontsize=9)
    exp.save(fig, "learned_score_fields", "toy-learned-fields", f"Top: score models s_theta(x) trained with "
             f"{fixed['loss'].upper()} at one noise level each ({fixed['steps']} steps on the {exp.data.shape[0]} "
             "training points of the course data set), over the density p_sigma; the panel titles give the relative "
             "score error against grad log p_sigma. Bottom: the analytic score of the matching perturbed density "
             "p_sigma = p * N(0, sigma^2 I); the two panels of a column share the arrow scale.")


# --------------------------------------------------------------------------------------------------- samplers
def run_fixed_sigma_samplers(exp: Experiment, model: ScoreMLP) -> SamplerRuns:
    """Deterministic ascent and Langevin dynamics with the exact score of p, of p_sigma and the learned ``model``
    (at the sampling sigma), all from the same starts; with the i.i.d. and course-data reference rows first."""
    sampling, mixture, sigma = exp.cfg["sampling"], exp.mixture, exp.sampling_sigma
    n, k = sampling["n_samples"], sampling["n_trajectories"]
    runs = SamplerRuns(starts=_uniform_box(n, sampling["start_box"], exp.generator(20)),
                       ref_p=mixture.sample(n, exp.generator(40)),
                       ref_p_sigma=mixture.perturbed(sigma).sample(n, exp.generator(41)),
                       sources=[("exact score of p", mixture.score_fn, None),
                                (f"exact score of p_{sigma:g}", mixture.score_fn, sigma),
                                (f"learned s_theta, sigma={sigma:g}", model, sigma)],
                       rows=[])

    def metrics(x: Tensor) -> dict[str, Any]:
        return sample_metrics(mixture, x, runs.ref_p, runs.ref_p_sigma, exp.test)

    runs.rows += [{"sampler": "i.i.d. draws", "score": "p itself", **metrics(mixture.sample(n, exp.generator(42)))},
                  {"sampler": "i.i.d. draws", "score": f"p_{sigma:g} itself",
                   **metrics(mixture.perturbed(sigma).sample(n, exp.generator(43)))},
                  {"sampler": "course data", "score": "training split", **metrics(exp.data)}]
    for name, sampler, settings in (("deterministic ascent", deterministic_ascent, sampling["ascent"]),
                                    ("Langevin", langevin_dynamics, sampling["langevin"])):
        for label, fn, score_sigma in runs.sources:
            extra = {} if sampler is deterministic_ascent else {"generator": exp.generator(30)}
            t = time.perf_counter()
            x, path = sampler(fn, runs.starts, step_size=float(settings["step_size"]), n_steps=settings["n_steps"],
                              sigma=score_sigma, return_trajectory=True, **extra)
            runs.results[name, label] = (x, path[:, :k])
            runs.rows.append({"sampler": name, "score": label, **metrics(x), "seconds": time.perf_counter() - t})
    exp.log("  ran deterministic ascent and Langevin dynamics")
    return runs


def figure_trajectories(exp: Experiment, runs: SamplerRuns) -> None:
    """Figure 3: ascent and Langevin trajectories with the exact and the learned score."""
    sampling, sigma = exp.cfg["sampling"], exp.sampling_sigma
    fig, ax = panels(2, 2, size=4.0)
    for r, name in enumerate(("deterministic ascent", "Langevin")):
        for c, label in enumerate((runs.sources[0][0], runs.sources[2][0])):
            draw_density(ax[r, c], exp.mixture, exp.extent, exp.density_grid)
            draw_trajectories(ax[r, c], runs.results[name, label][1], exp.extent)
            ax[r, c].set_title(f"{name}, {label}", fontsize=9)
    ascent, langevin = sampling["ascent"], sampling["langevin"]
    exp.save(fig, "trajectories", "toy-trajectories", f"Trajectories of the first {sampling['n_trajectories']} "
             "starting points of @fig:toy-samples (circles; stars are the end points) over p. Top: deterministic "
             f"ascent x <- x + eps s(x) (eps = {ascent['step_size']}, {ascent['n_steps']} steps). Bottom: Langevin "
             f"dynamics x <- x + eps/2 s(x) + sqrt(eps) z (eps = {langevin['step_size']}, {langevin['n_steps']} "
             f"steps). Left: exact score of p; right: the learned model at sigma = {sigma:g}.")


def figure_samples(exp: Experiment, runs: SamplerRuns) -> None:
    """Figure 4: the points of every fixed-sigma method beside i.i.d. samples of p and p_sigma."""
    sampling, mixture, sigma = exp.cfg["sampling"], exp.mixture, exp.sampling_sigma
    n = sampling["n_samples"]
    fig, ax = panels(2, 4, size=3.2)
    iid = [(mixture.sample(n, exp.generator(42)), "i.i.d. samples of p"),
           (mixture.perturbed(sigma).sample(n, exp.generator(43)), f"i.i.d. samples of p_{sigma:g}")]
    for r, name in enumerate(("deterministic ascent", "Langevin")):
        draw_density(ax[r, 0], mixture, exp.extent, exp.density_grid)
        draw_samples(ax[r, 0], iid[r][0], exp.extent)
        ax[r, 0].set_title(iid[r][1] + f"\nweights {_weights(estimate_weights(mixture, iid[r][0]).tolist())}",
                           fontsize=9)
        for c, (label, _, _) in enumerate(runs.sources, start=1):
            x = runs.results[name, label][0]
            draw_density(ax[r, c], mixture, exp.extent, exp.density_grid)
            draw_samples(ax[r, c], x, exp.extent)
            ax[r, c].set_title(f"{name}, {label}\nweights {_weights(estimate_weights(mixture, x).tolist())}",
                               fontsize=8)
    fig.suptitle(f"true weights {_weights(exp.true_weights)}", fontsize=10)
    exp.save(fig, "samples", "toy-samples", f"{n} points from each method (orange) over p (contours), all from the "
             f"same uniform starts on {sampling['start_box']}^2. Top row: i.i.d. samples of p, then deterministic "
             "ascent; bottom row: i.i.d. samples of p_{s}, then Langevin dynamics; each with the exact score of p, "
             "the exact score of p_{s} and the learned model at sigma = {s}. Panel titles give the mode weights "
             "found, the figure title the true ones.".replace("{s}", f"{sigma:g}"))


# ----------------------------------------------------------------------------------- noise-conditional model
def train_noise_conditional(exp: Experiment) -> tuple[NoiseConditionalScoreMLP, dict[str, float], dict[str, Any]]:
    """The noise-conditional model trained with NCSM: ``(model, relative score error per field sigma, row)``."""
    nc, seed, mixture = exp.cfg["noise_conditional"], exp.cfg["seed"], exp.mixture
    torch.manual_seed(1000 * seed + 200)
    model = NoiseConditionalScoreMLP(nc["hidden"], nc["depth"],
                                     data_std=math.sqrt(exp.data_var) if exp.cfg["input_scaling"] else None)
    loss = NCSMLoss(nc["sigma_min"], nc["sigma_max"], nc["sampling"], nc["n_levels"])
    info = _train(model, loss, exp.data, exp.test, nc, exp.generator(50), 1000 * seed + 140, mixture)
    errors = {f"{float(s):g}": relative_score_error(model, mixture, float(s), exp.cfg["n_eval"], exp.generator(70 + i))
              for i, s in enumerate(nc["field_sigmas"])}
    errors_test = {f"{float(s):g}": relative_score_error(model, mixture, float(s), points=exp.test,
                                                         generator=exp.generator(120 + i))
                   for i, s in enumerate(nc["field_sigmas"])}
    row = {"model": "NoiseConditionalScoreMLP", "size": f"{nc['hidden']} x {nc['depth']}",
           "loss": f"ncsm ({nc['sampling']})",
           "sigma": [float(nc["sigma_min"]), float(nc["sigma_max"])], **info,
           "relative_score_error": errors, "relative_score_error_test": errors_test}
    exp.log(f"  trained NoiseConditionalScoreMLP: relative score errors {errors}")
    return model, errors, row


def run_annealed_langevin(exp: Experiment, model: NoiseConditionalScoreMLP, runs: SamplerRuns) -> Tensor:
    """Annealed Langevin dynamics with the exact scores of p_sigma and with ``model``, from the shared starts;
    returns the noise levels."""
    nc, annealed = exp.cfg["noise_conditional"], exp.cfg["sampling"]["annealed"]
    k = exp.cfg["sampling"]["n_trajectories"]
    levels = geometric_sigmas(float(nc["sigma_max"]), float(nc["sigma_min"]), nc["n_levels"])
    for label, fn in (("exact scores of p_sigma", exp.mixture.score_fn), ("learned s_theta(x, sigma)", model)):
        t = time.perf_counter()
        x, path = annealed_langevin_dynamics(fn, runs.starts, sigmas=levels, step_size=float(annealed["step_size"]),
                                             n_steps_each=annealed["n_steps_each"], generator=exp.generator(31),
                                             return_trajectory=True)
        runs.results["annealed Langevin", label] = (x, path[:: max(1, annealed["n_steps_each"]), :k])  # ends of levels
        runs.rows.append({"sampler": "annealed Langevin", "score": label,
                          **sample_metrics(exp.mixture, x, runs.ref_p, runs.ref_p_sigma, exp.test),
                          "seconds": time.perf_counter() - t})
    exp.log("  ran annealed Langevin dynamics")
    return levels


def figure_noise_conditional(exp: Experiment, model: NoiseConditionalScoreMLP, errors: dict[str, float],
                             runs: SamplerRuns) -> None:
    """Figure 5: the noise-conditional model's fields, and annealed against plain Langevin dynamics."""
    nc, annealed, mixture = exp.cfg["noise_conditional"], exp.cfg["sampling"]["annealed"], exp.mixture
    sigma, k = exp.sampling_sigma, exp.cfg["sampling"]["n_trajectories"]
    field_sigmas = [float(s) for s in nc["field_sigmas"]]
    cols = max(4, len(field_sigmas))
    fig, ax = panels(3, cols, size=3.2)
    for j, field_sigma in enumerate(field_sigmas):
        target = mixture.perturbed(field_sigma)
        for r in range(2):
            draw_density(ax[r, j], target, exp.extent, exp.density_grid)
        sc = draw_score_field(ax[1, j], mixture.score_fn, field_sigma, exp.extent, exp.arrows)
        draw_score_field(ax[0, j], model, field_sigma, exp.extent, exp.arrows, scale=sc)
        ax[0, j].set_title(f"learned s_theta(x, {field_sigma:g})\nrelative error {errors[f'{field_sigma:g}']:.1e}",
                           fontsize=9)
        ax[1, j].set_title(f"analytic grad log p_sigma, sigma={field_sigma:g}", fontsize=9)
    for j in range(len(field_sigmas), cols):
        ax[0, j].axis("off")
        ax[1, j].axis("off")
    bottom = [(runs.results["annealed Langevin", "exact scores of p_sigma"][0], "annealed Langevin, exact scores"),
              (runs.results["annealed Langevin", "learned s_theta(x, sigma)"][0], "annealed Langevin, learned"),
              (runs.results["Langevin", runs.sources[2][0]][0], f"Langevin, learned sigma={sigma:g}")]
    for j, (x, title) in enumerate(bottom):
        draw_density(ax[2, j], mixture, exp.extent, exp.density_grid)
        draw_samples(ax[2, j], x, exp.extent)
        ax[2, j].set_title(f"{title}\nweights {_weights(estimate_weights(mixture, x).tolist())}", fontsize=9)
    draw_density(ax[2, 3], mixture, exp.extent, exp.density_grid)
    draw_trajectories(ax[2, 3], runs.results["annealed Langevin", "learned s_theta(x, sigma)"][1], exp.extent)
    ax[2, 3].set_title("annealed Langevin, learned:\nposition at the end of each level", fontsize=9)
    for j in range(4, cols):
        ax[2, j].axis("off")
    fig.suptitle(f"true weights {_weights(exp.true_weights)}", fontsize=10)
    exp.save(fig, "noise_conditional", "toy-noise-conditional", "One noise-conditional model s_theta(x, sigma) = "
             f"f(x, log sigma) / sigma trained with lambda(sigma) = sigma^2 over sigma in [{nc['sigma_min']:g}, "
             f"{nc['sigma_max']:g}] ({nc['sampling']}, {nc['steps']} steps). Row 1: its fields (titles: relative "
             "score error); row 2: the analytic fields of p_sigma (same arrow scale per column); compare with the "
             "single-level models of @fig:toy-learned-fields. Row 3: annealed Langevin dynamics "
             f"({nc['n_levels']} geometric levels from {nc['sigma_max']:g} to {nc['sigma_min']:g}, "
             f"{annealed['n_steps_each']} steps each, eps = {annealed['step_size']}) with exact and learned scores, "
             f"and plain Langevin with the sigma = {sigma:g} model of @fig:toy-samples, all from the same starts "
             f"(titles: weights found; figure title: the true ones); the last panel follows {k} points from level "
             "to level.")


# ------------------------------------------------------------------------------------------- Song and Ermon
def figure_song_ermon(exp: Experiment) -> dict[str, Any]:
    """Figure 6: Song & Ermon (2019)'s mode-weight experiment with exact scores; returns its numbers."""
    song = song_ermon(exp.cfg, exp.generator(80))
    se_mix = song.pop("mixture")
    se = exp.cfg["song_ermon"]
    se_ext = (float(se["extent"][0]), float(se["extent"][1]))
    fig, ax = panels(1, 4, size=3.3)
    for j, (key, title) in enumerate((("iid", "i.i.d. samples"), ("langevin", "Langevin, exact score"),
                                      ("annealed", "annealed Langevin, exact scores"))):
        draw_density(ax[0, j], se_mix, se_ext, exp.density_grid)
        draw_samples(ax[0, j], song["samples"][key], se_ext)
        ax[0, j].set_title(f"{title}\nweights {_weights(song['weights'][key])}", fontsize=9)
    labels = ["true", "i.i.d.", "Langevin", "annealed"]
    vals = [song["true_weights"][0]] + [song["weights"][key][0] for key in ("iid", "langevin", "annealed")]
    errs = [0.0] + [song["standard_errors"][key][0] for key in ("iid", "langevin", "annealed")]
    ax[0, 3].bar(labels, vals, yerr=errs, color=["gray", "tab:blue", "tab:red", "tab:green"], capsize=3)
    ax[0, 3].axhline(song["true_weights"][0], color="gray", lw=0.8, ls="--")
    ax[0, 3].set_ylim(0, 1)
    ax[0, 3].set(xlabel="sampler", ylabel="weight found")
    ax[0, 3].tick_params(labelsize=8)
    ax[0, 3].set_title(f"weight of the mode at {_point(se['means'][0])}", fontsize=9)
    exp.save(fig, "song_ermon", "toy-song-ermon", f"Song & Ermon (2019), Fig. 3, reproduced with exact scores: p = "
             f"{_mixture_formula(se)}, {se['n_samples']} starts uniform on {se['start_box']}^2. From left: i.i.d. "
             f"draws of p; Langevin dynamics (eps = {se['langevin']['step_size']}, {se['langevin']['n_steps']} "
             f"steps); annealed Langevin ({se['annealed']['n_levels']} levels from {se['annealed']['sigma_max']:g} to "
             f"{se['annealed']['sigma_min']:g}, eps = {se['annealed']['step_size']}, {se['annealed']['n_steps_each']} "
             "steps each) from the same starts; panel titles give the weights found. Bars: weight of the mode at "
             f"{_point(se['means'][0])}, +- one binomial standard error; dashed line: its true weight "
             f"{se['weights'][0]:g}.")
    del song["samples"]
    return song


# ------------------------------------------------------------------------------------------------------- run
def write_outputs(exp: Experiment, metrics: dict[str, Any]) -> None:
    """metrics.json, figures.json, captions.md and the Markdown tables."""
    write_text_atomic(exp.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(exp.out / "figures.json", json.dumps(exp.figures, indent=2) + "\n")
    write_text_atomic(exp.out / "captions.md", captions_markdown(exp.figures))
    for name, table in markdown_tables(metrics).items():
        write_text_atomic(exp.out / name, table)


def run(cfg: dict[str, Any], student_id: int | str, out: str | Path,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every experiment of the config for one student's mixture; write figures and metrics into ``out``."""
    t_start = time.perf_counter()
    exp = setup(cfg, student_id, Path(out), log)
    figure_analytic_score(exp)
    models, model_rows = train_fixed_sigma_models(exp)
    figure_learned_fields(exp, models, model_rows)
    runs = run_fixed_sigma_samplers(exp, models[exp.sampling_sigma])
    figure_trajectories(exp, runs)
    figure_samples(exp, runs)
    nc_model, nc_errors, nc_row = train_noise_conditional(exp)
    model_rows.append(nc_row)
    levels = run_annealed_langevin(exp, nc_model, runs)
    figure_noise_conditional(exp, nc_model, nc_errors, runs)
    song = figure_song_ermon(exp)
    metrics = {
        "student_id": str(student_id),
        "mixture": {"weights": exp.true_weights, "means": exp.mixture.means.tolist(),
                    "covariances": exp.mixture.covariances.tolist()},
        "data": {"source": "the course notebook's data set, score_toy.mixture.course_samples(student_id, n_samples, "
                           "train_split)", "n_samples": cfg["n_samples"], "train_split": cfg["train_split"],
                 "n_train": exp.data.shape[0], "n_test": exp.test.shape[0]},
        "evaluation_sets": evaluation_sets(cfg["sampling"]["n_samples"], cfg["n_eval"], exp.sampling_sigma),
        "sampling_sigma": exp.sampling_sigma,
        "annealed_sigmas": levels.tolist(),
        "models": model_rows,
        "samplers": runs.rows,
        "song_ermon": song,
        "figures": exp.figures,
        "torch_version": torch.__version__,
        "wall_time_seconds": time.perf_counter() - t_start,
    }
    write_outputs(exp, metrics)
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
        "means": mix.means.tolist(),
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
