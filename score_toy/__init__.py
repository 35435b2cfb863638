"""score_toy: score-based generative modelling on a 2D Gaussian mixture (see docs/score_toy.md)."""

from score_toy.losses import DSMLoss, NCSMLoss, SlicedScoreMatchingLoss
from score_toy.metrics import energy_distance, estimate_weights, mean_log_likelihood, relative_score_error
from score_toy.mixture import GaussianMixture2D, course_samples
from score_toy.models import LinearScore, NoiseConditionalScoreMLP, ScoreMLP
from score_toy.samplers import annealed_langevin_dynamics, deterministic_ascent, langevin_dynamics
from score_toy.sigmas import draw_sigmas, geometric_sigmas
from score_toy.train import fit

__all__ = [
    "DSMLoss",
    "GaussianMixture2D",
    "LinearScore",
    "NCSMLoss",
    "NoiseConditionalScoreMLP",
    "ScoreMLP",
    "SlicedScoreMatchingLoss",
    "annealed_langevin_dynamics",
    "course_samples",
    "deterministic_ascent",
    "draw_sigmas",
    "energy_distance",
    "estimate_weights",
    "fit",
    "geometric_sigmas",
    "langevin_dynamics",
    "mean_log_likelihood",
    "relative_score_error",
]
