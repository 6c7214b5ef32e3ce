"""Memorisation: are generated images closer to the training set than new real images are?

Notation: d(y) = min_x |f(y) - f(x)| over training images x, in extractor
features f; T the held-out test split; c(y) the domain classifier's class for
y and m_c = median of d(t) over test images t of class c. Some classes are
denser than others (ones sit much closer together than eights), so each
distance is compared with unseen real images of its own class:

    r(y) = d(y) / m_c(y),    memorisation ratio = median_{y in Y} r(y) / median_{t in T} r(t).

About 1 means samples sit as far from the training images as unseen real
images of the same class do; well below 1 means samples are (near-)copies of
training images; above 1 means samples lie off the data. ``close_fraction`` is
the share of samples with r below the 5% quantile of the test images' r (0.05
expected without memorisation). Without logits every image counts as one class.
torch-fidelity and torchmetrics have no such metric, so it is written here.
"""
from __future__ import annotations

from typing import Optional

import torch

from .bootstrap import percentile_ci, resample_indices
from .registry import MetricInputs, register

CHUNK = 1000
CLOSE_QUANTILE = 0.05


def nn_distances(query: torch.Tensor, base: torch.Tensor, exclude: Optional[torch.Tensor] = None,
                 chunk: int = CHUNK) -> torch.Tensor:
    """(N,) float64 distance from each query row (N, D) to its nearest row of base (M, D).

    exclude: optional (N,) int64 row of ``base`` to skip for each query (-1 for none), so a training image
    is not its own nearest neighbour.
    """
    base = base.float()
    base_sq = (base * base).sum(1)
    out = []
    for start in range(0, query.shape[0], chunk):
        q = query[start:start + chunk].float()
        partial = torch.addmm(base_sq, q, base.T, alpha=-2.0)  # |b|^2 - 2 q.b; |q|^2 is added after the min
        if exclude is not None:
            ex = exclude[start:start + chunk]
            rows = torch.nonzero(ex >= 0).squeeze(1)
            partial[rows, ex[rows]] = float("inf")
        d2 = partial.min(1).values + (q * q).sum(1)
        out.append(d2.clamp_min(0.0).double().sqrt())
    return torch.cat(out)


def class_scaled(d_fake: torch.Tensor, d_test: torch.Tensor, fake_class: Optional[torch.Tensor] = None,
                 test_class: Optional[torch.Tensor] = None) -> tuple:
    """(r_fake (N,), r_test (M,)): distances divided by the test median of their class (one class if None)."""
    if fake_class is None or test_class is None:
        m = d_test.median()
        return d_fake / m, d_test / m
    k = int(max(fake_class.max(), test_class.max())) + 1
    medians = torch.full((k,), d_test.median().item(), dtype=torch.float64)  # for classes absent from T
    for c in test_class.unique().tolist():
        medians[c] = d_test[test_class == c].median()
    return d_fake / medians[fake_class], d_test / medians[test_class]


def memorisation_from_distances(d_fake: torch.Tensor, d_test: torch.Tensor, fake_class: Optional[torch.Tensor] = None,
                                test_class: Optional[torch.Tensor] = None, n_boot: int = 100, seed: int = 0) -> dict:
    """Memorisation ratio from nearest-training distances (N,) of samples and (M,) of test images, with a 95%
    percentile bootstrap interval (both sets resampled, class medians fixed) and the close-copy fraction."""
    r_fake, r_test = class_scaled(d_fake, d_test, fake_class, test_class)
    ratio = (r_fake.median() / r_test.median()).item()
    close = (r_fake < torch.quantile(r_test, CLOSE_QUANTILE)).double().mean().item()
    out = {"memorisation": ratio, "memorisation_ci_low": ratio, "memorisation_ci_high": ratio,
           "close_fraction": close, "nn_train_median": d_fake.median().item(),
           "nn_train_median_test": d_test.median().item()}
    if n_boot >= 2:
        i, j = resample_indices(len(r_fake), n_boot, seed, 0), resample_indices(len(r_test), n_boot, seed, 1)
        boots = r_fake[i].median(1).values / r_test[j].median(1).values
        out["memorisation_ci_low"], out["memorisation_ci_high"] = percentile_ci(boots)
    return out


def memorisation(fake: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
                 fake_train_index: Optional[torch.Tensor] = None, fake_class: Optional[torch.Tensor] = None,
                 test_class: Optional[torch.Tensor] = None, n_boot: int = 100, seed: int = 0) -> dict:
    """Memorisation ratio of features fake (N, D) given train (T, D) and held-out test (M, D) features;
    optional classes (N,), (M,) for the per-class scale."""
    return memorisation_from_distances(nn_distances(fake, train, fake_train_index), nn_distances(test, train),
                                       fake_class, test_class, n_boot, seed)


TEST_NN_KEY = "nn-to-train"


def _test_to_train(s: MetricInputs) -> torch.Tensor:
    if s.train is None:
        raise ValueError("memo needs the training split's features")
    return nn_distances(s.ref.features, s.train.features)


def _classes(s: MetricInputs) -> tuple:
    if s.fake.logits is None or s.ref.logits is None:
        return None, None
    return s.fake.logits.argmax(1), s.ref.logits.argmax(1)


@register("memo", keys=("memorisation",), better=("one",), needs=("features", "train", "logits"),
          title="memorisation (NN-distance ratio)", reference={TEST_NN_KEY: _test_to_train})
def _memo(s: MetricInputs) -> dict:
    d_test = _test_to_train(s) if s.train is None else s.once(TEST_NN_KEY, lambda: _test_to_train(s))
    d_fake = nn_distances(s.fake.features, s.train.features, s.fake_train_index)
    return memorisation_from_distances(d_fake, d_test, *_classes(s), s.n_boot, s.seed)
