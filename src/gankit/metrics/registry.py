"""The metric registry: every metric registers itself by name with a decorator.

A registered metric is a function of one `MetricInputs` (feature and logit
tensors of the generated set, the reference split and, for memorisation, the
training split) returning a flat dict of floats. Evaluation resolves names once
through `get_metrics` and never branches on them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from ..errors import GankitError, did_you_mean


@dataclass
class FeatureSet:
    """One image set seen through an extractor: features (N, D) and domain-classifier logits (N, K) or None."""

    features: torch.Tensor
    logits: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.features.shape[0]


@dataclass
class MetricInputs:
    """Everything a metric may read. ``fake_train_index`` (N,) marks rows of ``fake`` that are training
    images (the real-vs-real floor), so nearest-neighbour searches in ``train`` skip the image itself."""

    fake: FeatureSet
    ref: FeatureSet
    train: Optional[FeatureSet] = None
    seed: int = 0
    n_boot: int = 100
    fake_train_index: Optional[torch.Tensor] = None
    precomputed: dict = field(default_factory=dict)  # reference-only quantities, e.g. from the disk cache
    _memo: dict = field(default_factory=dict, repr=False)

    def once(self, key: str, compute: Callable):
        """``compute()`` the first time ``key`` is asked for in this evaluation; the stored value after that."""
        if key in self.precomputed:
            return self.precomputed[key]
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn(MetricInputs) -> dict``; ``keys`` are its headline values."""

    name: str
    fn: Callable[[MetricInputs], dict]
    keys: tuple
    better: tuple  # per headline key: "lower", "higher" or "one" (closest to 1 is best); for tables
    needs: frozenset  # subset of {"features", "logits", "train"}
    title: str
    reference: tuple = ()  # (key, fn(MetricInputs) -> tensor) of reference-only values, cacheable on disk


METRICS: dict = {}


def register(name: str, keys: tuple, better: tuple, needs=("features",), title: str = "", reference=None):
    """Decorator: add ``fn`` to the registry under ``name``.

    ``reference`` maps keys to functions of `MetricInputs` that read only the reference and training
    sets; evaluation caches their values on disk and hands them over as ``MetricInputs.precomputed``.
    """
    def wrap(fn):
        METRICS[name] = Metric(name, fn, tuple(keys), tuple(better), frozenset(needs), title or name,
                               tuple((reference or {}).items()))
        return fn
    return wrap


def get_metrics(names) -> list:
    """The registered metrics named in ``names`` (in that order); a `GankitError` for an unknown name."""
    out = []
    for name in names:
        if name not in METRICS:
            raise GankitError(f"unknown metric {name!r}{did_you_mean(name, METRICS)}; "
                              f"choose from {', '.join(METRICS)}")
        out.append(METRICS[name])
    return out
