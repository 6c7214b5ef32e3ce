"""Datasets: IDX parsing, checksums, folders, and clear errors for missing or bad files."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from gankit import GankitError
import torch

from gankit.data import ImageData, _idx, load_dataset, read_idx, to_float, to_tensor_images, to_uint8_tensor

from conftest import make_tiny_images


def _write_idx(path, array):
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I" + "I" * array.ndim, magic, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four IDX files with the standard names, and checksums registered for them."""
    images, labels = make_tiny_images(20), np.arange(20) % 10
    sums = {}
    for prefix in ("train", "t10k"):
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            _write_idx(tmp_path / name, arr)
            sums[name] = _idx.md5(tmp_path / name)
    monkeypatch.setitem(_idx.CHECKSUMS, "mnist", sums)
    return tmp_path, images, labels


def test_reads_idx_files(fake_mnist):
    folder, images, labels = fake_mnist
    data = load_dataset("mnist", str(folder))
    assert data.x.shape == (20, 1, 28, 28) and data.x.dtype == torch.uint8  # a quarter of float32's memory
    assert data.y.tolist() == labels.tolist()
    assert (data.x[:, 0].numpy() == images).all()
    x = to_float(data.x)
    assert x.dtype == torch.float32 and x.min().item() == -1.0 and x.max().item() == 1.0
    assert torch.equal(x, to_tensor_images(images))  # the same numbers as the float32 datasets had


def test_batches_are_float_in_minus_one_to_one(tiny_data):
    from gankit.modes.sources import ImageBatches
    data = ImageData(to_uint8_tensor(make_tiny_images(40)), torch.arange(40) % 4, "tiny", list("abcd"))
    as_float = ImageData(to_tensor_images(make_tiny_images(40)), torch.arange(40) % 4, "tiny", list("abcd"))
    for d in (data, as_float):  # uint8 datasets, and float ones built by callers, give the same batches
        b = ImageBatches(d, 16, 1, seed=7).take(0, 1).x[0]
        assert b.dtype == torch.float32 and b.shape == (16, 1, 28, 28)
        assert torch.equal(b, to_tensor_images(make_tiny_images(40))[as_float.epoch_order(7, 0)[16:32]])


def test_finds_files_in_dataset_subfolder(fake_mnist, tmp_path):
    data = load_dataset("mnist", str(tmp_path.parent / tmp_path.name))
    assert len(data) == 20


def test_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(GankitError, match="train-images-idx3-ubyte.gz.*--data-dir"):
        load_dataset("mnist", str(tmp_path))


def test_corrupt_file_is_named_with_expected_checksum(fake_mnist):
    folder, _, _ = fake_mnist
    expected = _idx.CHECKSUMS["mnist"]["train-labels-idx1-ubyte.gz"]
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(GankitError, match=f"train-labels-idx1-ubyte.gz is corrupt.*expected {expected}"):
        load_dataset("mnist", str(folder))


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, 10, 28, 28) + b"\0" * 100)
    with pytest.raises(GankitError, match="truncated"):
        read_idx(path)


def test_digits_ship_with_the_install():
    data = load_dataset("digits")
    assert data.x.shape == (1617, 1, 28, 28)
    assert sorted(set(data.y.tolist())) == list(range(10))
    # digits are centred in a 20x20 box like MNIST: the 4-pixel border is background
    assert data.x[:, :, :4].max().item() == 0


def test_image_folder(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i, img in enumerate(make_tiny_images(3, size=40, channels=3, seed=len(cls))):
            Image.fromarray(img).save(tmp_path / cls / f"{i}.png")
    data = load_dataset("folder", str(tmp_path), image_size=32, channels=3)
    assert data.x.shape == (6, 3, 32, 32)
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]


def test_image_folder_with_non_image(tmp_path):
    Image.fromarray(make_tiny_images(1)[0]).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GankitError, match="notes.txt is not an image"):
        load_dataset("folder", str(tmp_path))


def test_image_folder_with_broken_png(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(GankitError, match="cannot be read as an image"):
        load_dataset("folder", str(tmp_path))


def test_epoch_order_depends_only_on_seed_and_epoch(tiny_data):
    a, b = tiny_data.epoch_order(3, 5), tiny_data.epoch_order(3, 5)
    assert a.tolist() == b.tolist()
    assert a.tolist() != tiny_data.epoch_order(3, 6).tolist()
    assert sorted(a.tolist()) == list(range(len(tiny_data)))


def test_real_mnist(mnist_dir):
    train = load_dataset("mnist", mnist_dir)
    test = load_dataset("mnist", mnist_dir, split="test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert train.y.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.x.dtype == torch.uint8 and train.x.element_size() * train.x.numel() == 60000 * 784
    mean = train.x.double().mean().item()
    assert mean == pytest.approx(33.3184, abs=1e-3)
