"""On real MNIST (skipped without it or without the cached classifier): held-out real digits against an
untrained generator and a one-class set.

An untrained DCGAN in eval mode draws almost the same flat grey image every time: a point mass. Every metric
sees that. With recipe version 1 of the classifier (no non-image class) precision did not: the grey image sat
inside the k-NN balls of ten real digits. Reference and training sets are slices of the real splits, so the test
takes seconds; the full-size numbers are in docs/metrics.md.
"""
import pytest
import torch

from gankit.data import load_dataset
from gankit.errors import GankitError
from gankit.metrics import evaluate_features, get_metrics
from gankit.metrics.evaluate import DEFAULT_METRICS, Reference
from gankit.metrics.extractors import domain_extractor

N = 500
_CACHE = {}


@pytest.fixture(scope="module")
def extractor():
    try:
        return domain_extractor("mnist", train_if_missing=False, progress=False)
    except GankitError:
        pytest.skip("no cached MNIST classifier (gankit classifier train --dataset mnist)")


@pytest.fixture
def scores(extractor, mnist_dir):
    """Metric values of held-out real digits, an untrained generator and real ones; computed once."""
    if mnist_dir not in _CACHE:
        _CACHE[mnist_dir] = _scores(extractor, mnist_dir)
    return _CACHE[mnist_dir]


def _scores(extractor, mnist_dir):
    from gankit.config import resolve
    from gankit.generate import generate
    from gankit.build import build_models

    train = load_dataset("mnist", mnist_dir, "train", limit=16000)
    test = load_dataset("mnist", mnist_dir, "test", limit=2000)
    reference = Reference("mnist-slice", extractor, extractor(test.x), extractor(train.x[:6000]))
    torch.manual_seed(0)
    G, _ = build_models(resolve("mnist-dcgan"), (1, 28, 28))
    sets = {"real": train.x[6000:6000 + N], "untrained": generate(G.eval(), N, seed=0),
            "ones": train.x[6000:][train.y[6000:] == 1][:N]}
    metrics = get_metrics(DEFAULT_METRICS)
    return {name: evaluate_features(extractor(x), reference, metrics, n_boot=20) for name, x in sets.items()}


def test_real_digits_beat_an_untrained_generator(scores):
    good, bad = scores["real"], scores["untrained"]
    assert good["fid"] < bad["fid"] / 10 and good["kid"] < bad["kid"] / 10
    assert good["recall"] > 0.8 and bad["recall"] < 0.05
    assert good["coverage"] > 0.4 and bad["coverage"] < 0.05  # 500 samples can cover only part of 2,000 balls
    assert good["cs"] > 8 and bad["cs"] < 2
    assert good["classes_present"] == 10 and good["kl_to_uniform"] < 0.02 < bad["kl_to_uniform"]
    assert abs(good["memorisation"] - 1) < 0.15


def test_a_flat_grey_point_mass_is_off_the_real_manifold(scores):
    good, bad = scores["real"], scores["untrained"]
    assert bad["precision"] < 0.05 < 0.8 < good["precision"]
    assert bad["density"] < 0.05 and bad["recall"] < 0.05 and bad["classes_present"] <= 2
    assert bad["memorisation"] > 3 * good["memorisation"]  # far from every training digit


def test_one_class_set_is_flagged_by_mode_coverage_and_recall(scores):
    good, ones = scores["real"], scores["ones"]
    assert ones["classes_present"] == 1 and ones["kl_to_uniform"] > 1.5
    assert ones["recall"] < 0.3 < good["recall"] - 0.5
    assert ones["coverage"] < 0.3 and ones["precision"] > 0.8  # real ones: faithful, not diverse
    assert 0.8 < ones["memorisation"] < 1.2  # unseen ones are not copies, although ones sit close together
