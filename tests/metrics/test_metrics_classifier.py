"""The domain classifier's non-image class: what it is trained on and what it learns (on the bundled digits)."""
import torch

from gankit.metrics.classifier import DomainClassifier, non_images, predict_logits, train_classifier


def test_non_images_are_in_range_deterministic_and_of_every_kind():
    like = torch.rand(400, 1, 28, 28) * 2 - 1
    a = non_images(like, torch.Generator().manual_seed(0))
    b = non_images(like, torch.Generator().manual_seed(0))
    assert a.shape == like.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    spread = a.flatten(1).std(1)
    assert (spread < 0.1).sum() > 50          # flat fields (about a quarter of them)
    assert (spread > 0.3).sum() > 100         # pixel noise, smooth noise and scrambled images
    scrambled = torch.sort(a.flatten(1), 1).values == torch.sort(like.flatten(1), 1).values
    assert scrambled.all(1).sum() > 50        # same pixel values as the image they came from


def test_class_logits_leave_the_non_image_logit_out():
    model = DomainClassifier(1, 28, 10).eval()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    full = model.all_logits(x)
    assert full.shape == (5, 11) and model(x).shape == (5, 10)
    assert torch.equal(model(x), full[:, :10]) and torch.equal(model.logits(model.features(x)), full[:, :10])


def test_a_trained_classifier_tells_digits_from_non_images(cache):
    model, info = train_classifier("digits", progress=False, min_steps=0)  # 3 epochs, not the recipe's 1,400 steps
    assert info["test_accuracy"] > 0.5 and info["test_rejected"] < 0.05   # 36 steps: far from converged
    assert info["recipe"]["min_steps"] == 0
    grey = torch.full((50, 1, 28, 28), 0.2) + 0.01 * torch.randn(50, 1, 28, 28)   # an untrained G's output
    noise = torch.rand(50, 1, 28, 28) * 2 - 1
    for x in (grey, noise):
        assert (model.all_logits(x).argmax(1) == 10).float().mean() > 0.9
    assert predict_logits(model, x).shape == (50, 10)
