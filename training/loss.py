"""The training loss: epsilon-prediction MSE (Ho et al. 2020, eq. 14), optionally min-SNR-gamma weighted."""

from __future__ import annotations

import torch

from pipelines.schedule import perturb_input

LOSS_WEIGHTINGS = ("none", "min_snr")


class DiffusionLoss:
    """E ||eps - eps_theta(x_t, t [, y])||^2 with a per-timestep weight w_t.

    ``weighting="none"`` is L_simple (w_t = 1). ``"min_snr"`` is min-SNR-gamma (Hang et al. 2023, eq. 7 for an
    epsilon-predicting network): w_t = min(SNR_t, gamma) / SNR_t with SNR_t = alpha_bar_t / (1 - alpha_bar_t),
    which down-weights the low-noise steps that the plain loss over-weights.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, weighting: str = "none", gamma: float = 5.0):
        if weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")
        self.alphas_cumprod = alphas_cumprod
        snr = alphas_cumprod.double() / (1 - alphas_cumprod.double())
        self.weights = (snr.clamp(max=gamma) / snr).float() if weighting == "min_snr" else None

    def __call__(self, unet, x0, t, noise, labels=None) -> torch.Tensor:
        xt = perturb_input(x0, t, noise, self.alphas_cumprod)
        eps = unet(xt, t, class_labels=labels).sample
        per_sample = (eps - noise).pow(2).flatten(1).mean(1)
        if self.weights is not None:
            per_sample = per_sample * self.weights.to(per_sample)[t]
        return per_sample.mean()
