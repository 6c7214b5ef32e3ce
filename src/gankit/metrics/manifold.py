"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Notation: real (reference) features X_1..X_M, generated features Y_1..Y_N,
NND_k(X_i) the distance from X_i to its k-th nearest other real point and
B(X_i, r) the ball of radius r around it.

    precision = 1/N sum_j 1[Y_j in some B(X_i, NND_3(X_i))]        (fidelity)
    recall    = 1/M sum_i 1[X_i in some B(Y_j, NND_3(Y_j))]         (diversity; balls on the generated set)
    density   = 1/(kN) sum_j sum_i 1[Y_j in B(X_i, NND_5(X_i))]     (k = 5; about 1 for equal distributions)
    coverage  = 1/M sum_i 1[some Y_j in B(X_i, NND_5(X_i))]

Balls are closed for precision/recall (as in the paper's code and
torch-fidelity) and open for density/coverage (as in the authors' prdc), so
identical sets give exactly (1, 1) for both pairs. Distances are float64 and
compared as squares, with a relative margin of 1e-9 so that ties resolve the
same way whatever the rounding. torch-fidelity has precision/recall but
neither the per-sample indicators the bootstrap needs nor density/coverage, so
both pairs are computed here from one shared pass over the distance matrix.
"""
from __future__ import annotations

import torch

from .bootstrap import mean_ci
from .registry import MetricInputs, register

K_PR = 3
K_DC = 5
CHUNK = 2000
_TIE = 1e-9


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(Na, Nb) float64 squared Euclidean distances between rows of a (Na, D) and b (Nb, D)."""
    a, b = a.double(), b.double()
    d2 = torch.addmm((b * b).sum(1), a, b.T, alpha=-2.0).add_((a * a).sum(1, keepdim=True))
    return d2.clamp_min_(0.0)


def knn_radii(features: torch.Tensor, k_max: int = K_DC, chunk: int = CHUNK) -> torch.Tensor:
    """(N, k_max) float64: column k-1 is the distance from each row to its k-th nearest other row.

    features: (N, D) with N > k_max. The point itself (distance 0) is the first neighbour found and is dropped.
    """
    n = features.shape[0]
    if n <= k_max:
        raise ValueError(f"k-NN radii with k={k_max} need more than {k_max} points, got {n}")
    out = [squared_distances(block, features).topk(k_max + 1, dim=1, largest=False).values[:, 1:]
           for block in features.split(chunk)]
    return torch.cat(out).sqrt()


def manifold_indicators(fake: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor,
                        k_pr: int = K_PR, k_dc: int = K_DC, chunk: int = CHUNK) -> dict:
    """Per-sample indicators behind precision, recall, density and coverage.

    fake: (N, D) generated features; ref: (M, D) reference features; ref_radii: (M, >= max(k_pr, k_dc)) from
    `knn_radii`. Returns float64 tensors 'precision' (N,), 'recall' (M,), 'density' (N,), 'coverage' (M,),
    whose means are the four metrics.
    """
    r_pr = ref_radii[:, k_pr - 1].square() * (1 + _TIE)
    r_dc = ref_radii[:, k_dc - 1].square() * (1 - _TIE)
    r_fake = knn_radii(fake, k_pr, chunk)[:, k_pr - 1].square() * (1 + _TIE)
    precision, density = [], []
    recall = torch.zeros(ref.shape[0], dtype=torch.bool)
    nearest = torch.full((ref.shape[0],), float("inf"), dtype=torch.float64)
    for start in range(0, fake.shape[0], chunk):
        d2 = squared_distances(fake[start:start + chunk], ref)  # (c, M)
        precision.append((d2 <= r_pr).any(1))
        density.append((d2 < r_dc).sum(1))
        recall |= (d2 <= r_fake[start:start + chunk, None]).any(0)
        nearest = torch.minimum(nearest, d2.min(0).values)
    return {"precision": torch.cat(precision).double(), "recall": recall.double(),
            "density": torch.cat(density).double() / k_dc, "coverage": (nearest < r_dc).double()}


def _summary(ind: dict, names: tuple, n_boot: int, seed: int) -> dict:
    out = {}
    for stream, name in enumerate(names):
        out[name] = ind[name].mean().item()
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = mean_ci(ind[name], n_boot, seed, stream)
    return out


def precision_recall(fake: torch.Tensor, ref: torch.Tensor, k: int = K_PR, n_boot: int = 100, seed: int = 0) -> dict:
    """Precision and recall of features (N, D) against (M, D), each with a 95% percentile bootstrap interval
    over its per-sample indicators (the k-NN manifolds held fixed)."""
    return _summary(manifold_indicators(fake, ref, knn_radii(ref, k), k, k), ("precision", "recall"), n_boot, seed)


def density_coverage(fake: torch.Tensor, ref: torch.Tensor, k: int = K_DC, n_boot: int = 100, seed: int = 0) -> dict:
    """Density and coverage of features (N, D) against (M, D), with intervals as in `precision_recall`."""
    return _summary(manifold_indicators(fake, ref, knn_radii(ref, k), min(k, K_PR), k), ("density", "coverage"),
                    n_boot, seed)


RADII_KEY = f"knn-radii-k{max(K_PR, K_DC)}"


def _ref_radii(s: MetricInputs) -> torch.Tensor:
    return knn_radii(s.ref.features, max(K_PR, K_DC))


def _indicators(s: MetricInputs) -> dict:
    radii = s.once(RADII_KEY, lambda: _ref_radii(s))
    return s.once("manifold", lambda: manifold_indicators(s.fake.features, s.ref.features, radii))


@register("pr", keys=("precision", "recall"), better=("higher", "higher"), title="precision / recall (k=3)",
          reference={RADII_KEY: _ref_radii})
def _pr(s: MetricInputs) -> dict:
    return _summary(_indicators(s), ("precision", "recall"), s.n_boot, s.seed)


@register("dc", keys=("density", "coverage"), better=("one", "higher"), title="density / coverage (k=5)",
          reference={RADII_KEY: _ref_radii})
def _dc(s: MetricInputs) -> dict:
    return _summary(_indicators(s), ("density", "coverage"), s.n_boot, s.seed + 1)
