"""Dataset sources other than IDX files: scikit-learn digits, CIFAR-10 and image folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import GankitError



def upscale_digits(images):
    """8x8 images (N, 1, 8, 8) in [0, 1] -> (N, 1, 28, 28) in [0, 1]: resized to 20x20 (bicubic) and centred in a
    28x28 frame, as MNIST digits are."""
    import torch.nn.functional as F

    images = F.interpolate(images, size=(20, 20), mode="bicubic", align_corners=False).clamp(0, 1)
    return F.pad(images, (4, 4, 4, 4))


def load_digits(split: str):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, UCI), upscaled to 28x28 (`upscale_digits`).

    The split is fixed: every 10th image is test.
    """
    import torch
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = upscale_digits(torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0)
    images = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    labels = bunch.target.astype(np.int64)
    test = np.arange(len(labels)) % 10 == 0
    keep = test if split == "test" else ~test
    return images[keep], labels[keep]


def load_cifar10(data_dir, split: str, cache_dir: Path):
    """CIFAR-10 through torchvision: from ``data_dir`` (never downloads) or the cache (downloads)."""
    import torchvision.datasets as tvd

    root = Path(data_dir).expanduser() if data_dir is not None else cache_dir / "datasets"
    try:
        ds = tvd.CIFAR10(root=str(root), train=(split == "train"), download=data_dir is None)
    except RuntimeError as exc:
        raise GankitError(f"CIFAR-10 not found or corrupt under {root} ({exc}); expected "
                          f"{root}/cifar-10-batches-py/; point --data-dir at its parent") from None
    except Exception as exc:
        raise GankitError(f"could not download CIFAR-10 ({type(exc).__name__}); offline, pass --data-dir DIR "
                          f"holding cifar-10-batches-py/") from None
    return np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)


def load_folder(path, image_size: int, channels: int):
    """Every image of a folder (recursively; label = sub-folder index) or zip (labels from dataset.json),
    resized to ``image_size`` (`gankit.data.files`)."""
    from .files import list_images, read_images

    if channels not in (1, 3):
        raise GankitError(f"data.channels must be 1 or 3 for image folders, got {channels}")
    files = list_images(path)
    return read_images(files, image_size, channels), files.labels
