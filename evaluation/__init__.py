"""Evaluation of sprite samples: FID/KID from features, feature extractors, PNG export for pytorch-fid.

``fid_from_features`` and ``kid_from_features`` work on any two feature arrays. The default offline metric is
*sprite-FID*: the Frechet distance in the feature space of a small network trained by this project on the
sprites (:mod:`evaluation.features`). It is not comparable with Inception FID; see docs/evaluation.md.

Modules: :mod:`evaluation.metrics` (the distances), :mod:`evaluation.features` (sprite network, sprite-FID/KID),
:mod:`evaluation.train_classifier` (trains the sprite network), :mod:`evaluation.scoring` (sprite-FID/KID of
feature sets, the real floor, class predictions and class match), :mod:`evaluation.quality` (every number of a
sample set in one call), :mod:`evaluation.inception` (FID Inception-v3, local weights only),
:mod:`evaluation.dinov2` (DINOv2 through transformers, local weights only), :mod:`evaluation.feature_spaces` (the
sprite, Inception and DINOv2 spaces of ``python -m evaluation.score``), :mod:`evaluation.export` (PNG folders for
pytorch-fid), :mod:`evaluation.splits` (mirror-pair splits); for the
benchmarks: :mod:`evaluation.sampling` (seeded, timed sampling), :mod:`evaluation.neighbours` (memorisation),
:mod:`evaluation.plots` (figures) and :mod:`evaluation.output` (output folders).
"""

from evaluation.features import extract_sprite_features, load_sprite_feature_net, sprite_fid, sprite_kid
from evaluation.metrics import feature_stats, fid_from_features, frechet_distance, kid_from_features

__all__ = [
    "extract_sprite_features",
    "feature_stats",
    "fid_from_features",
    "frechet_distance",
    "kid_from_features",
    "load_sprite_feature_net",
    "sprite_fid",
    "sprite_kid",
]
