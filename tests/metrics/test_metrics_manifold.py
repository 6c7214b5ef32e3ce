"""Precision/recall and density/coverage: exact on identical and disjoint sets, torch-fidelity as an oracle."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_fidelity.metric_prc import prc_features_to_metric

from gankit.metrics.manifold import density_coverage, knn_radii, manifold_indicators, precision_recall


def gaussian(n: int, d: int = 8, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_identical_sets_give_exactly_one_one():
    x = gaussian(400)
    pr, dc = precision_recall(x, x.clone()), density_coverage(x, x.clone())
    assert (pr["precision"], pr["recall"]) == (1.0, 1.0)
    assert (dc["density"], dc["coverage"]) == (1.0, 1.0)


def test_disjoint_sets_give_zero_zero():
    real, fake = gaussian(300, seed=1), gaussian(300, shift=50.0, seed=2)
    pr, dc = precision_recall(fake, real), density_coverage(fake, real)
    assert (pr["precision"], pr["recall"], dc["density"], dc["coverage"]) == (0.0, 0.0, 0.0, 0.0)


def test_same_distribution_scores_high_and_intervals_bracket():
    real, fake = gaussian(1000, d=4, seed=3), gaussian(1000, d=4, seed=4)
    pr, dc = precision_recall(fake, real, n_boot=50), density_coverage(fake, real, n_boot=50)
    assert 0.85 < pr["precision"] < 1.0 and 0.85 < pr["recall"] < 1.0
    assert 0.85 < dc["density"] < 1.15 and 0.9 < dc["coverage"] < 1.0
    for name, out in (("precision", pr), ("recall", pr), ("density", dc), ("coverage", dc)):
        assert out[f"{name}_ci_low"] <= out[name] <= out[f"{name}_ci_high"]


def test_half_collapsed_generator_keeps_precision_and_loses_recall():
    real = torch.cat([gaussian(500, d=2, seed=5), gaussian(500, d=2, shift=20.0, seed=6)])
    fake = gaussian(1000, d=2, seed=7)  # only the first of the two real modes
    pr, dc = precision_recall(fake, real), density_coverage(fake, real)
    assert pr["precision"] > 0.9 and 0.4 < pr["recall"] < 0.52
    assert 0.4 < dc["coverage"] < 0.52


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_agree_with_torch_fidelity(seed):
    real, fake = gaussian(700, d=6, seed=10 + seed), gaussian(600, d=6, shift=0.4, seed=20 + seed) * 1.2
    ours = precision_recall(fake, real)
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False,
                                    verbose=False)
    # torch-fidelity averages in float32: equal counts agree to 1e-6, one sample apart would differ by > 1e-3
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)
    assert 0.2 < ours["precision"] < 0.99 and 0.2 < ours["recall"] < 0.99  # not trivially 0 or 1


def test_density_and_coverage_on_a_hand_computed_line():
    # real points 0, 1, 2, 3, 10 on a line; k = 1: radii 1, 1, 1, 1, 7 (open balls)
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fake = torch.tensor([[0.5], [2.9], [6.0], [20.0]])
    ind = manifold_indicators(fake, real, knn_radii(real, 1), k_pr=1, k_dc=1)
    # 0.5 lies in the balls of 0 and 1; 2.9 in those of 2 and 3; 6.0 only in that of 10; 20.0 in none
    assert ind["density"].tolist() == [2.0, 2.0, 1.0, 0.0]
    assert ind["coverage"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert ind["precision"].tolist() == [1.0, 1.0, 1.0, 0.0]


@settings(max_examples=20, deadline=None)
@given(n=st.integers(8, 40), d=st.integers(1, 5), k=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_knn_radii_match_brute_force_sorting(n, d, k, seed):
    x = gaussian(n, d=d, seed=seed).double()
    brute = torch.cdist(x, x).sort(dim=1).values[:, 1:k + 1]
    assert torch.allclose(knn_radii(x, k, chunk=7), brute, rtol=1e-9, atol=1e-9)
