"""FID: zero on itself, the Gaussian closed form, and agreement with an independent scipy implementation."""
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit.metrics.frechet import feature_statistics, fid, frechet_distance


def exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> torch.Tensor:
    """n points whose sample mean and (n-1)-normalised sample covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(z, rowvar=False)))).T  # sample covariance now I
    return torch.from_numpy(mean + z @ np.linalg.cholesky(cov).T)


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Oracle written independently: matrix square root by scipy.linalg.sqrtm (Schur), not eigenvalues."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 32, generator=torch.Generator().manual_seed(0)) * 3 + 1
    out = fid(x, x, n_boot=0)
    assert abs(out["fid"]) < 1e-6


def test_fid_of_rank_deficient_features_with_themselves_is_zero():
    # ReLU features have dead units: zero-variance dimensions must not produce NaN or a positive distance.
    x = torch.randn(400, 64, generator=torch.Generator().manual_seed(1)).relu()
    x[:, :20] = 0
    assert abs(fid(x, x, n_boot=0)["fid"]) < 1e-6


def test_fid_matches_the_gaussian_closed_form():
    d = 6
    mu1, mu2 = np.arange(d, dtype=float), np.arange(d, dtype=float)[::-1] * 0.5
    var1, var2 = np.linspace(0.5, 3.0, d), np.linspace(2.0, 0.25, d)
    a = exact_moments(2000, mu1, np.diag(var1), seed=1)
    b = exact_moments(3000, mu2, np.diag(var2), seed=2)
    # Fréchet distance of N(mu1, diag var1) and N(mu2, diag var2)
    closed = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert fid(a, b, n_boot=0)["fid"] == pytest.approx(closed, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-5, 5), s1=st.floats(0.1, 10), s2=st.floats(0.1, 10), d=st.integers(1, 8))
def test_fid_closed_form_isotropic(shift, s1, s2, d):
    a = exact_moments(50, np.zeros(d), np.eye(d) * s1, seed=3)
    b = exact_moments(60, np.full(d, shift), np.eye(d) * s2, seed=4)
    closed = d * shift ** 2 + d * (np.sqrt(s1) - np.sqrt(s2)) ** 2
    assert fid(a, b, n_boot=0)["fid"] == pytest.approx(closed, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_agrees_with_scipy_sqrtm(seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(16, 16, generator=g, dtype=torch.float64)
    a = torch.randn(800, 16, generator=g, dtype=torch.float64) @ mix
    b = torch.randn(700, 16, generator=g, dtype=torch.float64) @ (mix + 0.3 * torch.eye(16, dtype=torch.float64)) + 0.5
    ours = frechet_distance(feature_statistics(a), feature_statistics(b))
    assert ours == pytest.approx(scipy_frechet(a.numpy(), b.numpy()), rel=1e-6)


def test_bootstrap_interval_is_seeded_and_brackets_the_value():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.5
    one, two = fid(a, b, n_boot=40, seed=3), fid(a, b, n_boot=40, seed=3)
    assert one == two
    assert one["fid_ci_low"] < one["fid"] < one["fid_ci_high"]
    assert 0 < one["fid_ci_high"] - one["fid_ci_low"] < one["fid"]


def test_feature_statistics_rejects_a_single_row():
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(torch.zeros(1, 4))
