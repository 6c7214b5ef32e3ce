"""FID: the Fréchet distance between Gaussians fitted to two feature sets.

Notation (Heusel et al. 2017): features of generated images have mean mu_g and
covariance S_g, the reference images mu_r and S_r;

    FID = |mu_g - mu_r|^2 + tr(S_g) + tr(S_r) - 2 tr((S_g S_r)^(1/2)).

The statistics and the distance come from torch-fidelity (float64 throughout);
gankit adds the bootstrap interval. "FID" here means the Fréchet distance on
whichever extractor the provenance names: values from different extractors are
different quantities.
"""
from __future__ import annotations

import numpy as np
import torch

from .bootstrap import bootstrap_values, normal_ci
from .registry import MetricInputs, register


def feature_statistics(features: torch.Tensor) -> dict:
    """{'mu': (D,), 'sigma': (D, D)} float64 numpy arrays of features (N, D), N >= 2."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got {tuple(features.shape)}")
    from torch_fidelity.metric_fid import fid_features_to_statistics

    stats = fid_features_to_statistics(features.detach().cpu().double())
    stats["sigma"] = np.atleast_2d(stats["sigma"])  # np.cov returns a scalar for D = 1
    return stats


def frechet_distance(stats_1: dict, stats_2: dict) -> float:
    """Fréchet distance between N(mu_1, sigma_1) and N(mu_2, sigma_2) (dicts from `feature_statistics`)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)["frechet_inception_distance"])


def fid(feat_fake: torch.Tensor, feat_ref: torch.Tensor, n_boot: int = 100, seed: int = 0) -> dict:
    """FID of features (N, D) against (M, D), with a 95% normal bootstrap interval.

    Both sets are resampled with replacement ``n_boot`` times; the interval is
    fid -/+ 1.96 bootstrap standard deviations (the bootstrap mean itself is
    biased upwards, because a resampled set repeats images).
    """
    value = frechet_distance(feature_statistics(feat_fake), feature_statistics(feat_ref))
    out = {"fid": value, "fid_ci_low": value, "fid_ci_high": value}
    if n_boot >= 2:
        fake64, ref64 = feat_fake.double(), feat_ref.double()
        boots = bootstrap_values(lambda i, j: frechet_distance(feature_statistics(fake64[i]),
                                                               feature_statistics(ref64[j])),
                                 (len(fake64), len(ref64)), n_boot, seed)
        out["fid_ci_low"], out["fid_ci_high"] = normal_ci(value, boots)
    return out


@register("fid", keys=("fid",), better=("lower",), title="FID (Fréchet distance)")
def _fid(s: MetricInputs) -> dict:
    return fid(s.fake.features, s.ref.features, s.n_boot, s.seed)
