"""Labels for conditional training: the fake batches' labels.

Fake labels are drawn from the training noise generator, right after each batch's
z, so a conditional run is reproducible and resumes exactly like an unconditional
one. Unconditional runs get no sampler and draw nothing extra.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import GankitError
from ..nets.conditional import n_classes_of


def class_frequencies(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Fraction of each class among labels ``y`` (N,): (K,) float64 summing to 1."""
    counts = torch.bincount(y.cpu(), minlength=n_classes).double()
    return counts / counts.sum()


def make_label_sampler(mode: str, G: torch.nn.Module, y_data: torch.Tensor) -> Optional[Callable]:
    """``fn(n, device, generator) -> y (n,)`` for a conditional G, None for an unconditional one.

    mode ``uniform`` draws every class equally often; ``data`` draws classes as often as
    they occur in ``y_data`` (the training labels). Data labels outside [0, K) are refused.
    """
    k = n_classes_of(G)
    if k == 0:
        return None
    if len(y_data) and (int(y_data.min()) < 0 or int(y_data.max()) >= k):
        raise GankitError(f"the data has labels {int(y_data.min())}..{int(y_data.max())}, outside the model's "
                          f"{k} classes; set model.n_classes to cover them")
    probs = torch.full((k,), 1.0 / k, dtype=torch.float64) if mode == "uniform" else class_frequencies(y_data, k)
    cache: dict = {}

    def sample(n: int, device, generator: torch.Generator) -> torch.Tensor:
        if device not in cache:
            cache[device] = probs.to(device=device, dtype=torch.float32)
        return torch.multinomial(cache[device], n, replacement=True, generator=generator)

    return sample
