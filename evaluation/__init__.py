"""Evaluation of sprite samples: FID/KID from features, feature extractors, PNG export for pytorch-fid.

``fid_from_features`` and ``kid_from_features`` work on any two feature arrays. The default offline metric is
*sprite-FID*: the Frechet distance in the feature space of a small network trained by this project on the
sprites (:mod:`evaluation.features`). It is not comparable with Inception FID; see docs/evaluation.md.
"""

from evaluation.metrics import feature_stats, fid_from_features, frechet_distance, kid_from_features

__all__ = ["feature_stats", "fid_from_features", "frechet_distance", "kid_from_features"]
