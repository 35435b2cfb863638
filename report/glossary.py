"""The report's glossary: each term it uses that the course does not define, once, in an appendix."""

from __future__ import annotations

from report.homework import Homework

TERMS = (
    ("NFE", "number of function evaluations: UNet calls per sample, the cost of a sampler (DDPM: 500; DDIM: its "
            "step count; Heun: two per step but the last)."),
    ("sprite-FID", "the Frechet distance between Gaussians fitted to the features of generated and of real "
                   "sprites, in the feature space of a small network trained here to classify sprites "
                   "(evaluation/features.py), since Inception's weights cannot be downloaded on this machine. Lower "
                   "is better; its values are not comparable with published (Inception) FIDs."),
    ("KID", "kernel inception distance: an unbiased estimate of the squared MMD between the same features with a "
            "cubic polynomial kernel; unlike FID it does not drift with the sample count N, and can be below 0."),
    ("precision, recall", "k-nearest-neighbour precision and recall (Kynkaanniemi et al. 2019): the share of "
                          "generated sprites inside the real data's feature manifold (fidelity), and the share of "
                          "real sprites inside the generated one (coverage)."),
    ("class mix off by", "the largest difference, in percentage points, between a class's share of the samples "
                         "(by the sprite network's predicted label) and its share of the data: 0 when the five "
                         "classes come out in the data's proportions."),
    ("reference sprites", "the 1,788 sprites split in two halves that keep mirror pairs together; samples are "
                          "scored against one half, and the other half against it gives what a perfect model "
                          "would reach at that N. The model trained on both halves."),
    ("prior (at T)", "the distribution x_T is drawn from. standard: N(0, I), as in the course; moments: the "
                     "Gaussian with the mean and covariance of the noised data at T (pipelines/prior.py)."),
    ("near-copies", "the share of samples closer in pixels to a training sprite than 95% of real sprites "
                           "are to their nearest other sprite (q0.05 of the real nearest-neighbour distances): 5% "
                           "for real data; above that, samples copy."),
    ("eta", "DDIM's noise level: 0 is deterministic, 1 adds DDPM's posterior noise at every step."),
)


def glossary(hw: Homework) -> None:
    hw.r.appendix("glossary", "glossary")
    hw.r.markdown("\n".join(f"- **{term}**: {meaning}" for term, meaning in TERMS))
