"""Memorisation: copies of training points score about 0, fresh draws about 1, off-data samples above 1."""
import pytest
import torch

from gankit.metrics.memorisation import memorisation, nn_distances


def draw(n: int, seed: int, d: int = 6) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def data():
    return draw(4000, 0), draw(1000, 1)  # train, held-out test, same distribution


def test_fresh_samples_score_about_one(data):
    train, test = data
    out = memorisation(draw(1000, 2), train, test, n_boot=50)
    assert 0.9 < out["memorisation"] < 1.1
    assert out["memorisation_ci_low"] < 1.0 < out["memorisation_ci_high"]
    assert 0.02 < out["close_fraction"] < 0.09


def test_copies_of_training_points_score_about_zero(data):
    train, test = data
    copies = train[:1000] + 1e-3 * draw(1000, 3)
    out = memorisation(copies, train, test, n_boot=50)
    assert out["memorisation"] < 0.05 and out["close_fraction"] == 1.0


def test_off_data_samples_score_above_one(data):
    train, test = data
    assert memorisation(draw(500, 4) * 3, train, test, n_boot=0)["memorisation"] > 2


def test_excluding_the_point_itself_makes_training_images_look_fresh(data):
    train, test = data
    idx = torch.arange(0, 4000, 4)
    assert memorisation(train[idx], train, test, n_boot=0)["memorisation"] == 0.0
    out = memorisation(train[idx], train, test, fake_train_index=idx, n_boot=0)
    assert 0.9 < out["memorisation"] < 1.1


def test_per_class_scale_removes_the_density_of_a_class():
    # class 0 is ten times tighter than class 1; a sample of fresh class-0 points is not a memoriser
    g = torch.Generator().manual_seed(7)
    def two_classes(n):
        c = torch.arange(n) % 2
        return torch.randn(n, 6, generator=g) * torch.where(c == 0, 0.1, 1.0)[:, None], c
    (train, _), (test, test_c), (fake, fake_c) = two_classes(4000), two_classes(1000), two_classes(1000)
    only0 = fake_c == 0
    pooled = memorisation(fake[only0], train, test, n_boot=0)["memorisation"]
    scaled = memorisation(fake[only0], train, test, fake_class=fake_c[only0], test_class=test_c, n_boot=0)
    assert pooled < 0.5 and 0.85 < scaled["memorisation"] < 1.15


def test_nn_distances_match_brute_force():
    q, base = draw(37, 5, d=3), draw(53, 6, d=3)
    exclude = torch.full((37,), -1)
    exclude[::2] = torch.arange(0, 37, 2)
    brute = torch.cdist(q.double(), base.double())
    brute[torch.arange(0, 37, 2), torch.arange(0, 37, 2)] = float("inf")
    assert torch.allclose(nn_distances(q, base, exclude, chunk=10), brute.min(1).values, rtol=1e-4, atol=1e-4)
