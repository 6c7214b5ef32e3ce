"""Datasets as in-memory tensors on the training device.

Every dataset becomes one uint8 tensor ``x`` (N, C, H, W) of pixel values 0..255 and a
label tensor ``y`` (N,): a quarter of the memory float32 would take. Whoever needs
images in the networks' encoding converts a batch with `to_float` (float32 in
[-1, 1], the same arithmetic as `to_tensor_images`, so the numbers do not change).
An epoch is a permutation of indices: batches are slices of the tensor, with no
per-item Python data loading. The permutation of epoch k depends only on (seed, k),
so a run resumed mid-epoch sees the same order. Datasets too large for memory
stream from a folder or zip instead (`gankit.data.stream`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import GankitError, did_you_mean
from ._archive import safe_extract
from ._idx import CHECKSUMS, default_cache_dir, load_idx_dataset, read_idx
from ._sources import load_cifar10, load_digits, load_folder

DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder")
CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


@dataclass
class ImageData:
    """Images (N, C, H, W) and labels (N,) int64, on one device.

    ``x`` is uint8 (0..255) for every dataset gankit loads; a float32 ``x`` in [-1, 1], as older callers
    built it, is accepted too. Read images through `to_float` either way.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    classes: list

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
        return torch.randperm(len(self), generator=g).to(self.x.device)

    def batch(self, key, order: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The images at positions [start, stop) of ``order`` (as `gankit.data.stream.StreamedImages.batch`)."""
        return self.x.index_select(0, order[start:stop])


def to_uint8_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> uint8 (N, C, H, W), contiguous."""
    t = torch.from_numpy(np.require(images, np.uint8, ["C", "W"]))  # copies only read-only or strided arrays
    return t[:, None] if t.dim() == 3 else t.permute(0, 3, 1, 2).contiguous()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Images in the networks' encoding: uint8 0..255 -> float32 in [-1, 1] (x / 127.5 - 1), on x's device.

    Float images pass through unchanged, so callers need not know which kind a dataset holds.
    """
    if x.dtype == torch.uint8:
        return x.float().div_(127.5).sub_(1.0)
    return x


def to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(images, copy=True))
    t = t[:, None] if t.dim() == 3 else t.permute(0, 3, 1, 2)
    return t.float().div_(127.5).sub_(1.0)


def load_arrays(name: str, data_dir: Optional[str] = None, split: str = "train", image_size: int = 28,
                channels: int = 1, cache_dir: Optional[Path] = None):
    """(uint8 images, int64 labels) of a named dataset split, as numpy arrays."""
    cache_dir = cache_dir or default_cache_dir()
    if split not in ("train", "test"):
        raise GankitError(f"split must be 'train' or 'test', got {split!r}")
    if name in CHECKSUMS:
        return load_idx_dataset(name, data_dir, split, cache_dir)
    if name == "digits":
        return load_digits(split)
    if name == "cifar10":
        return load_cifar10(data_dir, split, cache_dir)
    if name == "folder":
        if data_dir is None:
            raise GankitError("data.name=folder needs --data-dir pointing at a folder of images")
        return load_folder(data_dir, image_size, channels)
    raise GankitError(f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}; choose one of {', '.join(DATASETS)}")


def load_dataset(name: str, data_dir: Optional[str] = None, split: str = "train", device="cpu",
                 image_size: int = 28, channels: int = 1, limit: Optional[int] = None) -> ImageData:
    """A dataset split as an `ImageData` (uint8 images) on ``device``. ``limit`` keeps the first n images."""
    images, labels = load_arrays(name, data_dir, split, image_size, channels)
    if limit:
        images, labels = images[:limit], labels[:limit]
    classes = CLASS_NAMES.get(name) or [str(i) for i in range(int(labels.max()) + 1)]
    x = to_uint8_tensor(images).to(device)
    return ImageData(x, torch.from_numpy(labels).to(device), name, classes)


__all__ = ["CLASS_NAMES", "DATASETS", "ImageData", "load_arrays", "load_dataset", "read_idx", "safe_extract",
           "to_float", "to_tensor_images", "to_uint8_tensor"]
