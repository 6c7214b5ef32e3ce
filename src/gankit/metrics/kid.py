"""KID: the unbiased estimate of the squared MMD with a cubic polynomial kernel.

Notation (Binkowski et al. 2018): k(x, y) = (x.y / D + 1)^3 on features of
dimension D; on each of ``subsets`` random subsets of size m from both sets,

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m(m-1)) + sum_{i != j} k(y_i, y_j) / (m(m-1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2,

which is unbiased (its expectation is the population MMD^2, 0 for equal
distributions), so it can be negative. KID is the mean over subsets; its spread
is reported as the subset standard deviation. The estimator is torch-fidelity's,
fed float64 features so that values near 0 are not rounding noise.
"""
from __future__ import annotations

import torch

from .registry import MetricInputs, register

SUBSETS = 100
SUBSET_SIZE = 1000


def kid(feat_fake: torch.Tensor, feat_ref: torch.Tensor, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE,
        seed: int = 0) -> dict:
    """{'kid', 'kid_std', 'kid_subset_size'} of features (N, D) against (M, D); ``subset_size`` is capped at
    min(N, M) so small sets still work (the cap is reported)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    m = int(min(subset_size, len(feat_fake), len(feat_ref)))
    if m < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {len(feat_fake)} and {len(feat_ref)}")
    out = kid_features_to_metric(
        feat_fake.detach().cpu().double(), feat_ref.detach().cpu().double(), kid_subsets=int(subsets),
        kid_subset_size=m, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1, rng_seed=int(seed), verbose=False)
    return {"kid": float(out["kernel_inception_distance_mean"]), "kid_std": float(out["kernel_inception_distance_std"]),
            "kid_subset_size": float(m)}


@register("kid", keys=("kid",), better=("lower",), title="KID (unbiased MMD^2)")
def _kid(s: MetricInputs) -> dict:
    return kid(s.fake.features, s.ref.features, seed=s.seed)
