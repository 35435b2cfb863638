"""The run's Markdown tables (``table_*.md``, quoted by docs/score_toy.md and the report) and the references between
its figures (``@fig:label`` in captions, resolved to "Figure N" where a document numbers them)."""

from __future__ import annotations

import re
from typing import Any

# The tables a run writes: file name -> label (what documents refer to them by, ``@tab:label``).
TABLES = {"table_mixture.md": "toy-mixture", "table_models.md": "toy-score-models",
          "table_samplers.md": "toy-sampler-metrics", "table_song_ermon.md": "toy-song-ermon-weights"}
FIGURE_REF = re.compile(r"@fig:([\w-]+)")


def resolve_figure_refs(text: str, figures: list[dict[str, Any]]) -> str:
    """``text`` with each ``@fig:label`` replaced by "Figure N", N the figure's number in ``figures``."""
    numbers = {f["label"]: f["number"] for f in figures}

    def sub(m: re.Match) -> str:
        if m.group(1) not in numbers:
            raise ValueError(f"{m.group(0)} refers to no figure of the run (labels: {', '.join(numbers)})")
        return f"Figure {numbers[m.group(1)]}"

    return FIGURE_REF.sub(sub, text)


def captions_markdown(figures: list[dict[str, Any]]) -> str:
    """captions.md: every figure under its own number, with its caption's references resolved."""
    return "".join(f"## Figure {f['number']}\n\n![Figure {f['number']}]({f['file']})\n\n"
                   f"{resolve_figure_refs(f['caption'], figures)}\n\n" for f in figures)


def _sci(v: float) -> str:
    """2.8e-3, not 2.8e-03."""
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _point(p: list[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in p) + ")"


def _table(header: list[str], rows: list[list[str]], right: int) -> str:
    """A Markdown table; the columns from index ``right`` on are right-aligned (numbers)."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows]) + "\n"


def _loss_name(row: dict[str, Any]) -> str:
    loss = row["loss"]
    if loss.startswith("ncsm"):
        return f"NCSM{loss[4:]}, λ(σ) = σ²"
    name = {"dsm": "DSM", "ssm": "SSM", "ssm_vr": "SSM-VR"}.get(loss, loss)
    return f"{name} ({row['projections']})" if "projections" in row else name


def _errors(err: float | dict[str, float]) -> str:
    if isinstance(err, dict):
        return ", ".join(f"{_sci(v)} (σ = {k})" for k, v in err.items())
    return _sci(err)


def mixture_table(metrics: dict[str, Any]) -> str:
    m = metrics["mixture"]
    rows = []
    for k, (w, mu, c) in enumerate(zip(m["weights"], m["means"], m["covariances"], strict=True), start=1):
        iso = c[0][1] == 0 and c[1][0] == 0 and c[0][0] == c[1][1]
        rows.append([str(k), f"{w:.4f}", _point(mu), f"{c[0][0]:.4f} I" if iso else str(c)])
    return _table(["component k", "weight w_k", "mean μ_k", "covariance C_k"], rows, 1)


def models_table(metrics: dict[str, Any]) -> str:
    rows = []
    for r in metrics["models"]:
        sigma = f"{r['sigma'][0]:g} to {r['sigma'][1]:g}" if isinstance(r["sigma"], list) else f"{r['sigma']:g}"
        to_p = r.get("relative_error_to_score_of_p")
        rows.append([f"{r['model']} ({r['size']})", _loss_name(r), sigma, f"{r['steps']:,}", f"{r['seconds']:.1f}",
                     f"{r['train_loss']:.4g} ({r['exact_train_loss']:.4g})",
                     f"{r['test_loss']:.4g} ({r['exact_test_loss']:.4g})", _errors(r["relative_score_error"]),
                     _errors(r["relative_score_error_test"]), "n/a" if to_p is None else _sci(to_p)])
    return _table(["model", "loss", "σ", "steps", "time (s)", "train loss (exact score)", "test loss (exact score)",
                   "relative score error, fresh draws of p_σ", "on the test split + noise",
                   "against grad log p"], rows, 3)


def samplers_table(metrics: dict[str, Any]) -> str:
    true = " / ".join(f"{w:.3f}" for w in metrics["mixture"]["weights"])
    s = f"{metrics['sampling_sigma']:g}"
    rows = [[r["sampler"], r["score"], " / ".join(f"{w:.3f}" for w in r["weights"]), f"{r['weight_tv']:.3f}",
             f"{r['energy_distance_p']:.3f}", f"{r['energy_distance_p_sigma']:.3f}",
             f"{r['energy_distance_test']:.3f}", f"{r['mean_log_p']:.2f}"] for r in metrics["samplers"]]
    return _table(["sampler", "score", f"weights (true {true})", "TV", "ED to p", f"ED to p_{s}", "ED to test split",
                   "mean log p"], rows, 2)


def song_ermon_table(metrics: dict[str, Any]) -> str:
    se = metrics["song_ermon"]
    names = {"iid": "i.i.d. draws", "langevin": "Langevin dynamics", "annealed": "annealed Langevin"}
    rows = [["true mixture", *(f"{w:.3f}" for w in se["true_weights"]), "n/a"]]
    rows += [[name, *(f"{w:.3f}" for w in se["weights"][key]), f"{se['standard_errors'][key][0]:.3f}"]
             for key, name in names.items()]
    means = se.get("means") or [None] * len(se["true_weights"])
    head = [f"weight of {_point(m)}" if m else f"weight {k}" for k, m in enumerate(means, start=1)]
    return _table([f"n = {se['n_samples']:,}, exact scores", *head, "± s.e."], rows, 1)


def markdown_tables(metrics: dict[str, Any]) -> dict[str, str]:
    """``{file name: Markdown table}`` for every table of :data:`TABLES`."""
    return {"table_mixture.md": mixture_table(metrics), "table_models.md": models_table(metrics),
            "table_samplers.md": samplers_table(metrics), "table_song_ermon.md": song_ermon_table(metrics)}
