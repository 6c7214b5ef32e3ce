"""The augmentation benchmark: balanced subsets, no leakage of test or non-subset images, results files."""
import json

import pytest
import torch

from gankit import GankitError
from gankit.augment import (AugmentSpec, HeldOut, LabelledSet, balanced_indices, make_subset, run_benchmark,
                            train_classifier, train_gan)
from gankit.data import ImageData

from conftest import make_tiny_images

TEST_MARK, OUTSIDE_MARK = 0.123456, 0.654321  # first image row of forbidden images: no generated value equals these
GAN = ("model.width_g=8", "model.width_d=8", "model.z_dim=8", "model.embed_dim=4", "train.batch_size=8",
       "objective.penalty=none", "train.log_every=5")


def _split(n, seed, classes=4):
    from gankit.data import to_tensor_images
    x = to_tensor_images(make_tiny_images(n, seed=seed))
    return ImageData(x, torch.arange(n) % classes, "tiny", [str(c) for c in range(classes)])


def _spec(**kw):
    base = dict(dataset="tiny", sizes=(8, 16), seeds=(0, 1), gan_preset="mnist-cdcgan", gan_overrides=GAN,
                gan_images=48, synthetic_per_class=3, clf_steps=4, clf_batch=8, shift=0, device="cpu")
    return AugmentSpec(**{**base, **kw})


def test_balanced_indices_are_balanced_reproducible_and_refuse_odd_sizes():
    labels = torch.tensor([0, 1, 2] * 20 + [0, 1] * 5)
    idx = balanced_indices(labels, 12, 3, seed=5)
    assert torch.bincount(labels[idx], minlength=3).tolist() == [4, 4, 4]
    assert len(set(idx.tolist())) == 12 and torch.equal(idx, balanced_indices(labels, 12, 3, seed=5))
    assert not torch.equal(idx, balanced_indices(labels, 12, 3, seed=6))
    with pytest.raises(GankitError, match="multiple of the 3 classes"):
        balanced_indices(labels, 10, 3, seed=0)
    with pytest.raises(GankitError, match="class 2 has only 20 training images; subset size 63 needs 21"):
        balanced_indices(labels, 63, 3, seed=0)


def test_only_subsets_and_synthetic_sets_can_be_trained_on():
    train, test = _split(32, 0), _split(16, 1)
    with pytest.raises(TypeError, match="takes a LabelledSet"):
        train_classifier([test], _spec(), seed=0)
    with pytest.raises(TypeError, match="takes a LabelledSet"):
        train_gan(HeldOut(test), _spec(), 0, "unused")
    with pytest.raises(ValueError, match="not 'test'"):
        LabelledSet(test.x, test.y, ("0",), "test")
    synthetic = LabelledSet(train.x[:4], train.y[:4], tuple(train.classes), "synthetic")
    with pytest.raises(GankitError, match="training subset only"):
        train_gan(synthetic, _spec(), 0, "unused")


def test_no_test_or_non_subset_image_reaches_any_trained_network(tmp_path):
    """Every image any network trains on (a forward pass with gradients on) is a subset image or generated.

    Test images and training images outside the subsets carry a marker no generator output can equal;
    a global hook checks the input of every convolution and linear layer run with gradients enabled.
    """
    spec = _spec()
    train, test = _split(64, 0), _split(40, 1)
    allowed = set()
    for size in spec.sizes:
        allowed |= set(balanced_indices(train.y, size, 4, spec.subset_seed).tolist())
    outside = torch.tensor(sorted(set(range(64)) - allowed))
    assert len(outside) > 0
    train.x[outside, :, 0, :] = OUTSIDE_MARK
    test.x[:, :, 0, :] = TEST_MARK
    subset_rows = {tuple(train.x[i].flatten().tolist()) for i in allowed}
    seen = {"trained": 0, "subset_images": 0, "evaluated": 0}

    def hook(module, inputs):
        if not isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) or not inputs:
            return
        x = inputs[0]
        if x.dim() != 4 or x.shape[-1] != 28:
            return
        first_row = x[:, 0, 0, :]
        marked = ((first_row == TEST_MARK).all(1) | (first_row == OUTSIDE_MARK).all(1))
        if torch.is_grad_enabled():
            assert not marked.any(), "a forbidden image reached a network being trained"
            seen["trained"] += len(x)
            seen["subset_images"] += sum(tuple(r.flatten().tolist()) in subset_rows for r in x[:, :1])
        elif (first_row == TEST_MARK).all(1).any():
            assert not module.training
            seen["evaluated"] += len(x)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        result = run_benchmark(train, test, spec, tmp_path / "bench", progress=False)
    finally:
        handle.remove()
    assert seen["trained"] > 0 and seen["subset_images"] > 0  # the hook did watch the training
    assert seen["evaluated"] == 40 * 3 * len(spec.sizes) * len(spec.seeds)  # each classifier scored the test split
    assert {r["size"] for r in result["runs"]} == {8, 16}
    for size in spec.sizes:
        assert set(result["subsets"][size]["indices"]) <= allowed


def test_benchmark_writes_json_and_markdown(tmp_path):
    spec = _spec(sizes=(8,), seeds=(0, 1))
    result = run_benchmark(_split(48, 0), _split(24, 1), spec, tmp_path / "b", progress=False)
    saved = json.loads((tmp_path / "b" / "results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(result["summary"]))
    assert len(saved["runs"]) == 2 * 3
    summary = saved["summary"]["8"]
    for condition in ("real", "real+synthetic", "synthetic"):
        accs = [r["test_accuracy"] for r in saved["runs"] if r["condition"] == condition]
        assert summary[condition]["mean"] == pytest.approx(sum(accs) / 2)
        assert all(0 <= a <= 1 for a in accs)
    table = (tmp_path / "b" / "results.md").read_text()
    assert table.startswith("| labelled images | (a) real only | (b) real + synthetic | (c) synthetic only (CAS) |")
    assert "| 8 | " in table
    # a second call resumes the finished GAN runs instead of refusing their folders, with the same result
    again = run_benchmark(_split(48, 0), _split(24, 1), spec, tmp_path / "b", progress=False)
    assert again["runs"] == result["runs"]


def test_classifier_training_is_seeded():
    train = _split(32, 0)
    subset = make_subset(train, 8, seed=0)
    spec = _spec()
    a, b = train_classifier([subset], spec, seed=3), train_classifier([subset], spec, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
