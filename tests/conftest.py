"""Shared fixtures: tiny synthetic image data, so no test needs a download."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from gankit.data import ImageData

torch.set_num_threads(min(2, torch.get_num_threads()))


def make_tiny_images(n: int = 64, size: int = 28, channels: int = 1, seed: int = 0) -> np.ndarray:
    """uint8 (n, H, W[, C]) images: a bright square at a random place on a dark background."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, channels), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(0, size - 8, size=2)
        images[i, r:r + 8, c:c + 8] = 255
    return images[..., 0] if channels == 1 else images


def write_image_folder(folder, n: int, **kwargs):
    """``folder`` (created) holding ``make_tiny_images(n, **kwargs)`` as 0.png, 1.png, ...; returns it."""
    from PIL import Image

    folder.mkdir()
    for i, img in enumerate(make_tiny_images(n, **kwargs)):
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def tiny_data() -> ImageData:
    from gankit.data import to_tensor_images

    images = make_tiny_images(64)
    labels = torch.arange(64) % 4
    return ImageData(to_tensor_images(images), labels, "tiny", ["a", "b", "c", "d"])


@pytest.fixture
def mnist_dir():
    """Real MNIST from $GANKIT_DATA_DIR (CI sets it to ../shared/data); skipped when absent."""
    root = os.environ.get("GANKIT_DATA_DIR")
    if not root or not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip("GANKIT_DATA_DIR with mnist/ not set")
    return os.path.join(root, "mnist")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A temporary GANKIT_CACHE holding an untrained (random, seeded) digits classifier."""
    from gankit.metrics.classifier import RECIPE, DomainClassifier, save_classifier

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    torch.manual_seed(0)
    info = {"dataset": "digits", "test_accuracy": 0.1, "recipe": RECIPE, "classes": [str(i) for i in range(10)],
            "image_shape": [1, 28, 28]}
    save_classifier("digits", DomainClassifier(1, 28, 10).eval(), info)
    return tmp_path / "cache"


def run_iteration(trainer, xs: list, ys=None, measure: bool = False, index: int = 0) -> dict:
    """One iteration of ``trainer``'s phases on the real batches ``xs`` (and labels ``ys``): its statistics."""
    from gankit.modes import Batch

    return trainer.stepper.iteration(Batch(list(xs), None if ys is None else list(ys)), index,
                                     trainer.progress.phase_steps, measure)


@pytest.fixture(autouse=True)
def _run_reports_only_where_tested(request, monkeypatch):
    """train.report=end (the default) writes RUN/report.html after every run, a few seconds each; tests of the
    report (marked ``report``) keep it, the many other tests that train skip it to keep the suite fast."""
    if request.node.get_closest_marker("report") is None:
        monkeypatch.setattr("gankit.report.sink.ReportSink.write", lambda self: None)


def ctrl_c_reaches_child() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell's background job (``cmd &``,
    nohup) starts with SIGINT ignored and its children inherit that; the child gets the default back."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
