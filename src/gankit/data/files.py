"""Image files of a folder or a zip, decoded one way everywhere: in memory, streamed, or prepared.

A dataset of your own is a folder of images (labels from sub-folder names, as torchvision's ImageFolder)
or a zip as stylegan2-ada-pytorch's dataset_tool writes it (images, optional ``dataset.json`` with
``{"labels": [[name, label], ...]}``; gankit adds ``"classes"``, the class names). `gankit data prepare`
writes such a zip. Every image is checked and decoded by `decode`, so an image read in memory, streamed by
a worker, or written by prepare is the same uint8 array.

Accepted: 8-bit grey (L), RGB, and palette (P) images without transparency. Refused with one line naming
the file: unreadable or truncated files, CMYK and other colour spaces, 16-bit and float images, images
with an alpha channel or a transparent palette.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import GankitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
ACCEPTED_MODES = ("L", "RGB", "P")
LABELS_FILE = "dataset.json"
_MODE_FIX = {
    "CMYK": "a CMYK image; convert it to RGB (e.g. PIL: Image.open(f).convert('RGB').save(...))",
    "RGBA": "an RGB image with an alpha channel; flatten it onto a background and save it as RGB",
    "LA": "a grey image with an alpha channel; flatten it onto a background and save it as L",
    "PA": "a palette image with an alpha channel; flatten it onto a background and save it as RGB",
    "I;16": "a 16-bit image; gankit reads 8-bit images: convert it to 8 bits per channel",
    "I": "a 32-bit integer (or 16-bit) image; gankit reads 8-bit images: convert it to 8 bits per channel",
    "F": "a floating-point image; gankit reads 8-bit images: convert it to 8 bits per channel",
    "1": "a 1-bit image; convert it to 8-bit grey (L)",
}


def mode_problem(im) -> Optional[str]:
    """Why PIL image ``im`` cannot be used as it is (None: it can)."""
    mode = im.mode
    if mode.startswith("I;16"):
        mode = "I;16"
    if mode == "P" and ("transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"):
        return "a palette image with transparency (alpha); flatten it onto a background and save it as RGB"
    if mode in ACCEPTED_MODES:
        return None
    return _MODE_FIX.get(mode, f"a {mode} image; gankit reads 8-bit grey (L) or RGB images: convert it")


PREPARE_HINT = " (gankit data prepare lists and skips such files)"


def open_image(data: bytes, name: str, hint: str = PREPARE_HINT):
    """The PIL image of file ``name`` (bytes), fully decoded and mode-checked; GankitError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except UnidentifiedImageError:
        raise GankitError(f"{name} cannot be read as an image (not a format PIL recognises, or a damaged header); "
                          f"remove or replace it{hint}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GankitError(f"{name} cannot be read as an image ({why}); remove or replace it{hint}") from None
    problem = mode_problem(im)
    if problem:
        raise GankitError(f"{name} is {problem}{hint}")
    return im


def decode(data: bytes, name: str, size: int, channels: int) -> np.ndarray:
    """uint8 (size, size) or (size, size, 3) of image file ``name``: converted to ``channels`` and resized
    (bicubic) to size x size when it is not that size already."""
    from PIL import Image

    im = open_image(data, name)
    im = im.convert("L" if channels == 1 else "RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC)
    return np.array(im, dtype=np.uint8)  # a writable copy


@dataclass
class ImageFiles:
    """The image files of a folder or zip, in a fixed (sorted) order, with their labels and class names."""

    root: Path
    names: list            # paths relative to root (folder) or member names (zip), sorted
    labels: np.ndarray     # (N,) int64
    classes: list
    is_zip: bool

    def __len__(self) -> int:
        return len(self.names)

    def label(self, name: str) -> str:
        return f"{self.root}:{name}" if self.is_zip else str(self.root / name)

    def reader(self) -> "FileReader":
        return FileReader(self.root, self.is_zip)


class FileReader:
    """Reads files' bytes; a zip is opened on first use in each process (DataLoader workers fork)."""

    def __init__(self, root: Path, is_zip: bool):
        self.root, self.is_zip = root, is_zip
        self._zip: Optional[tuple] = None

    def read(self, name: str) -> bytes:
        if not self.is_zip:
            return (self.root / name).read_bytes()
        if self._zip is None or self._zip[0] != os.getpid():
            self._zip = (os.getpid(), zipfile.ZipFile(self.root))
        return self._zip[1].read(name)

    def __getstate__(self):  # workers started by spawn open their own zip
        return {"root": self.root, "is_zip": self.is_zip, "_zip": None}


def list_images(path) -> ImageFiles:
    """The images of a folder (labels: sub-folder names) or zip (labels: dataset.json); one line on errors."""
    root = Path(path).expanduser()
    if root.is_file() and zipfile.is_zipfile(root):
        return _list_zip(root)
    if root.is_file():
        raise GankitError(f"{root} is neither a folder of images nor a zip file; pass a folder or a zip written by "
                          f"gankit data prepare")
    if not root.is_dir():
        raise GankitError(f"image folder {root} does not exist; pass --data-dir with a folder of images or a zip")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts))
    if not files:
        raise GankitError(f"image folder {root} contains no files; add images (png, jpg, ...)")
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise GankitError(f"{p} is not an image (suffix {p.suffix or 'none'}); remove it or move it out of {root}")
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.asarray([index[p.parent.relative_to(root).as_posix()] for p in files], dtype=np.int64)
    return ImageFiles(root, [p.relative_to(root).as_posix() for p in files], labels, classes, False)


def _list_zip(root: Path) -> ImageFiles:
    try:
        with zipfile.ZipFile(root) as z:
            members = z.namelist()
            meta = z.read(LABELS_FILE) if LABELS_FILE in members else None
    except (zipfile.BadZipFile, OSError) as exc:
        raise GankitError(f"{root} is not a readable zip ({exc}); write it again with gankit data prepare") from None
    names = sorted(n for n in members if not n.endswith("/") and Path(n).suffix.lower() in IMAGE_SUFFIXES
                   and not any(s.startswith(".") or s == "__MACOSX" for s in Path(n).parts))
    if not names:
        raise GankitError(f"zip {root} holds no images (png, jpg, ...); write it with gankit data prepare")
    labels, classes = np.zeros(len(names), np.int64), ["0"]
    if meta is not None:
        try:
            info = json.loads(meta)
            table = dict(info["labels"]) if info.get("labels") is not None else None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise GankitError(f"{root}:{LABELS_FILE} is not valid ({type(exc).__name__}: {exc}); it must hold "
                              f'{{"labels": [["name.png", 0], ...]}} or {{"labels": null}}') from None
        if table is not None:
            missing = [n for n in names if n not in table]
            if missing:
                raise GankitError(f"{root}:{LABELS_FILE} has no label for {missing[0]} ({len(missing)} images "
                                  f"without one); label every image or write the zip again with gankit data prepare")
            values = [table[n] for n in names]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
                raise GankitError(f"{root}:{LABELS_FILE}: labels must be integers >= 0")
            labels = np.asarray(values, np.int64)
            n_classes = int(labels.max()) + 1
            given = info.get("classes")
            classes = [str(c) for c in given] if isinstance(given, list) and len(given) == n_classes \
                else [str(i) for i in range(n_classes)]
    return ImageFiles(root, names, labels, classes, True)


def read_images(files: ImageFiles, size: int, channels: int, indices=None) -> np.ndarray:
    """uint8 (n, size, size[, 3]) of ``indices`` (default: all), decoded in this process."""
    reader = files.reader()
    idx = range(len(files)) if indices is None else indices
    shape = (size, size) if channels == 1 else (size, size, 3)
    out = np.empty((len(idx), *shape), np.uint8)
    for k, i in enumerate(idx):
        name = files.names[int(i)]
        out[k] = decode(reader.read(name), files.label(name), size, channels)
    return out


def first_image_size(files: ImageFiles) -> tuple:
    """(width, height, mode) of the first image, read from its header only."""
    from PIL import Image

    name = files.names[0]
    try:
        with Image.open(io.BytesIO(files.reader().read(name))) as im:
            return im.size[0], im.size[1], im.mode
    except Exception as exc:  # noqa: BLE001 - any failure to parse is reported as one line
        raise GankitError(f"{files.label(name)} cannot be read as an image ({exc}); remove or replace it") from None
