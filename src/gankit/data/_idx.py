"""MNIST-family datasets from the four standard gzipped IDX files, checksum-verified.

Files are looked for in ``data_dir``, ``data_dir/<name>``, and torchvision's
``data_dir/<Class>/raw`` layout. Without ``data_dir`` the files are downloaded
into the cache through torchvision (which verifies MD5) and then checked here.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import GankitError

# Official MD5 of each file (the same values torchvision checks).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
}
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
_ALIASES = {"mnist": ("mnist", "MNIST"), "fashion-mnist": ("fashion-mnist", "fashion", "FashionMNIST", "fashion_mnist"),
            "kmnist": ("kmnist", "KMNIST")}


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _candidates(name: str, data_dir: Path):
    yield data_dir
    for alias in _ALIASES[name]:
        yield data_dir / alias
        yield data_dir / alias / "raw"


def find_files(name: str, data_dir: Path) -> Path:
    """The folder under ``data_dir`` holding all four files, or a `GankitError` naming them."""
    files = list(CHECKSUMS[name])
    for folder in _candidates(name, data_dir):
        if all((folder / f).is_file() for f in files):
            return folder
    raise GankitError(
        f"{name} files not found under {data_dir}: expected {', '.join(files)} in that folder or in "
        f"{data_dir}/{name}/; point --data-dir at the folder that holds them")


def verify(name: str, folder: Path) -> None:
    for fname, expected in CHECKSUMS[name].items():
        got = md5(folder / fname)
        if got != expected:
            raise GankitError(f"{folder / fname} is corrupt or truncated (md5 {got}, expected {expected}); "
                              f"replace it with the official file or delete it to download again")


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (images: magic 2051, labels: magic 2049) into a uint8 array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise GankitError(f"{path} cannot be read as gzip ({exc}); replace the file") from None
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = {2051: 3, 2049: 1}.get(magic)
    if ndim is None:
        raise GankitError(f"{path} is not an IDX image or label file (magic {magic:#x})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise GankitError(f"{path} is truncated: header says {dims}, found {data.size} values")
    return data.reshape(dims)


def download(name: str, root: Path) -> Path:
    """Download through torchvision (MD5-verified); a clear error when offline."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, _TORCHVISION_CLASS[name])
    try:
        cls(root=str(root), train=True, download=True)
        cls(root=str(root), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise GankitError(
            f"could not download {name} ({type(exc).__name__}); offline, pass --data-dir DIR with the files "
            f"{', '.join(CHECKSUMS[name])}") from None
    folder = root / _TORCHVISION_CLASS[name] / "raw"
    # torchvision may have removed the .gz files after extracting: fall back to its own check.
    return folder


def load_idx_dataset(name: str, data_dir: Optional[str], split: str, cache_dir: Path):
    """(images uint8 (N, 28, 28), labels int64 (N,)) for ``split`` in {'train', 'test'}."""
    if data_dir is not None:
        folder = find_files(name, Path(data_dir).expanduser())
    else:
        root = cache_dir / "datasets"
        try:
            folder = find_files(name, root)
        except GankitError:
            folder = download(name, root)
    verify(name, folder)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    if len(images) != len(labels):
        raise GankitError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels.astype(np.int64)


def default_cache_dir() -> Path:
    base = os.environ.get("GANKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "gankit")
    return Path(base).expanduser()
