"""Bootstrap confidence intervals, seeded, shared by every metric that reports one.

A metric draws ``n_boot`` resamples (with replacement) of its sample indices,
recomputes its value on each and turns the spread into a 95% interval. Which
interval (percentile or normal) a metric uses is stated in its docstring.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Z95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval


def resample_indices(n: int, n_boot: int, seed: int, stream: int = 0) -> torch.Tensor:
    """(n_boot, n) int64 indices drawn with replacement; ``stream`` separates the sets of one metric."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + 7919 * int(stream) + 17)
    return torch.randint(0, n, (n_boot, n), generator=g)


def percentile_ci(values: torch.Tensor, level: float = 0.95) -> tuple:
    """(low, high) empirical quantiles of the bootstrap values (n_boot,); NaN without a bootstrap."""
    if values.numel() < 2:
        return math.nan, math.nan
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(values.double(), q).tolist()
    return lo, hi


def normal_ci(point: float, values: torch.Tensor) -> tuple:
    """(low, high) = point -/+ 1.96 bootstrap standard deviations; centred on ``point`` even when the
    bootstrap distribution is shifted (as FID's is: resampled sets repeat images)."""
    sd = values.double().std(unbiased=True).item() if values.numel() > 1 else 0.0
    return point - Z95 * sd, point + Z95 * sd


def mean_ci(per_sample: torch.Tensor, n_boot: int, seed: int, stream: int = 0) -> tuple:
    """Percentile interval of the mean of per-sample values (N,)."""
    if n_boot < 2:
        m = per_sample.double().mean().item()
        return m, m
    idx = resample_indices(per_sample.shape[0], n_boot, seed, stream)
    return percentile_ci(per_sample.double()[idx].mean(1))


def bootstrap_values(stat: Callable, sizes: tuple, n_boot: int, seed: int) -> torch.Tensor:
    """(n_boot,) values of ``stat(idx_1, idx_2, ...)``, one index resample per set of size ``sizes[i]``."""
    draws = [resample_indices(n, n_boot, seed, stream) for stream, n in enumerate(sizes)]
    return torch.tensor([float(stat(*(d[b] for d in draws))) for b in range(n_boot)], dtype=torch.float64)
