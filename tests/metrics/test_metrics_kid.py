"""KID is the unbiased MMD^2 estimate: right on average at a small subset size, where the biased one is not."""
import math

import pytest
import torch

from gankit.metrics.kid import kid


def poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


def u_statistic(x: torch.Tensor, y: torch.Tensor) -> float:
    """Oracle: the unbiased MMD^2 on the full sets, written from the formula."""
    m, n = len(x), len(y)
    kxx, kyy = poly_kernel(x, x), poly_kernel(y, y)
    return ((kxx.sum() - kxx.diag().sum()) / (m * (m - 1)) + (kyy.sum() - kyy.diag().sum()) / (n * (n - 1))
            - 2 * poly_kernel(x, y).mean()).item()


def biased_mean(x: torch.Tensor, y: torch.Tensor, m: int, subsets: int, seed: int) -> float:
    """The V-statistic (diagonals kept) averaged over random subsets of size m: biased upwards by O(1/m)."""
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        a, b = x[torch.randperm(len(x), generator=g)[:m]], y[torch.randperm(len(y), generator=g)[:m]]
        vals.append((poly_kernel(a, a).mean() + poly_kernel(b, b).mean() - 2 * poly_kernel(a, b).mean()).item())
    return sum(vals) / len(vals)


def sets(shift: float, n: int = 3000, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, torch.randn(n, d, generator=g, dtype=torch.float64) + shift


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_kid_is_unbiased_where_the_biased_estimate_is_not(shift):
    x, y = sets(shift)
    truth = u_statistic(x, y)  # population MMD^2 up to O(1/sqrt(3000)) noise; 0 in expectation when shift = 0
    subsets, m = 400, 20
    out = kid(x, y, subsets=subsets, subset_size=m, seed=1)
    se = out["kid_std"] / math.sqrt(subsets)
    assert abs(out["kid"] - truth) < 4 * se
    assert biased_mean(x, y, m, subsets, seed=2) - truth > 10 * se


def test_kid_of_equal_distributions_can_be_negative_and_is_reproducible():
    x, y = sets(0.0, n=200, seed=3)
    one, two = kid(x, y, subsets=50, subset_size=50, seed=7), kid(x, y, subsets=50, subset_size=50, seed=7)
    assert one == two
    assert abs(one["kid"]) < 3 * one["kid_std"] / math.sqrt(50) + 1e-3


def test_subset_size_is_capped_at_the_smaller_set():
    x, y = sets(1.0, n=40, seed=4)
    out = kid(x, y[:30], subsets=10, subset_size=1000)
    assert out["kid_subset_size"] == 30.0 and out["kid"] > 0
