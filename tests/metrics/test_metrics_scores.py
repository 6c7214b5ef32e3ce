"""Classifier score and mode coverage on logits with known answers."""
import math

import pytest
import torch

from gankit.metrics.registry import FeatureSet, MetricInputs, METRICS
from gankit.metrics.scores import class_coverage, classifier_score, classifier_score_ci, kl_to_uniform_ci

K = 10


def confident(labels: torch.Tensor, margin: float = 50.0) -> torch.Tensor:
    """Logits (N, K) that put (almost) all probability on ``labels``."""
    return torch.nn.functional.one_hot(labels, K).double() * margin


def test_one_class_sample_set_counts_as_one_class():
    out = class_coverage(confident(torch.full((500,), 3)))
    assert out["classes_present"] == 1
    assert out["kl_to_uniform"] == pytest.approx(math.log(K), rel=1e-12)
    assert out["class_fractions"][3] == 1.0 and out["min_class_fraction"] == 0.0


def test_balanced_confident_set_covers_every_class_with_zero_kl():
    out = class_coverage(confident(torch.arange(1000) % K))
    assert out["classes_present"] == K and out["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def test_threshold_separates_rare_classes():
    labels = torch.cat([torch.arange(900) % 9, torch.full((20,), 9)])  # class 9 at 2.2%
    assert class_coverage(confident(labels))["classes_present"] == 9
    assert class_coverage(confident(labels), threshold=0.02)["classes_present"] == K


@pytest.mark.parametrize("labels,expected", [(torch.arange(1000) % K, K), (torch.full((1000,), 2), 1.0)])
def test_classifier_score_bounds(labels, expected):
    assert classifier_score(confident(labels))["cs"] == pytest.approx(expected, rel=1e-9)


def test_uniform_predictions_score_one():
    assert classifier_score(torch.zeros(100, K))["cs"] == pytest.approx(1.0, abs=1e-12)


def test_bootstrap_intervals_bracket_the_values():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, K, generator=g) * 3
    cs = classifier_score(logits)["cs"]
    lo, hi = classifier_score_ci(logits, n_boot=100, seed=1)
    assert lo < cs < hi and hi - lo < 0.2 * cs
    cs10 = classifier_score(logits, splits=10)["cs"]          # lower than cs: p(y) from 200 images per part
    lo10, hi10 = classifier_score_ci(logits, n_boot=100, seed=1, splits=10)
    assert lo10 < cs10 < hi10 < hi and cs10 < cs
    kl = class_coverage(logits)["kl_to_uniform"]
    lo, hi = kl_to_uniform_ci(logits, n_boot=100, seed=1)
    assert lo <= kl <= hi


def test_registered_cs_and_modes_keep_their_keys():
    logits = confident(torch.arange(200) % K)
    s = MetricInputs(FeatureSet(torch.zeros(200, 2), logits), FeatureSet(torch.zeros(200, 2), logits))
    cs, modes = METRICS["cs"].fn(s), METRICS["modes"].fn(s)
    assert {"cs", "cs_std", "cs_ci_low", "cs_ci_high"} <= set(cs)
    assert {"class_fractions", "classes_present", "kl_to_uniform", "min_class_fraction"} <= set(modes)
    assert cs["cs"] == pytest.approx(K, rel=1e-9) and cs["cs_std"] == pytest.approx(0.0, abs=1e-9)
