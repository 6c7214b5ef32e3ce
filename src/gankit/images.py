"""Image arrays from outside, checked and brought to one encoding before any work: uint8 (N, H, W[, C]).

gankit's own encodings are uint8 (files, `gankit sample`) and float in [-1, 1] (networks). Arrays from users
also come as float in [0, 1] or as (N, C, H, W). Each encoding is recognised from the values and converted
exactly (a float copy of uint8 images converts back to the same bytes), and what was assumed is said in a
note; what cannot be recognised (uint16, other integer ranges, NaN, wrong shapes) is refused with one line
saying what was found and what is expected.

| found | taken as | conversion |
|---|---|---|
| uint8 | 0..255 | none |
| float, min < 0, within [-1, 1] | gankit's [-1, 1] | round((x + 1) * 127.5) |
| float within [0, 1] | [0, 1] | round(x * 255) |
| float, whole numbers within [0, 255] | a float copy of 0..255 | exact |
| signed or wider integers within [0, 255] | 0..255 | exact |
| anything else | refused | |
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import GankitError

EXPECTED = ("expected uint8 (N, H, W) or (N, H, W, C) with C = 1 or 3, or float in [-1, 1] or [0, 1]; "
            "as written by gankit sample")


def as_uint8(images, source: str = "images") -> tuple:
    """(uint8 array (N, H, W) or (N, H, W, C), note or None) for ``images`` of any supported encoding."""
    x = np.asarray(images)
    x = _layout(x, source)
    if x.dtype == np.uint8:
        return x, None
    if x.dtype == np.bool_ or x.dtype.kind not in "fiu":
        raise GankitError(f"{source} are {x.dtype} values; {EXPECTED}")
    if x.dtype.kind == "f":
        return _from_float(x, source)
    lo, hi = int(x.min()), int(x.max())
    if x.dtype == np.uint16 or x.dtype.itemsize > 1 and x.dtype.kind == "u" and hi > 255:
        raise GankitError(f"{source} are {x.dtype} values {lo}..{hi}, not 8-bit images; convert them to uint8 "
                          f"(for 16-bit images: (x / 257).round().astype('uint8')); {EXPECTED}")
    if lo < 0 or hi > 255:
        raise GankitError(f"{source} are {x.dtype} values {lo}..{hi}, outside 0..255; {EXPECTED}")
    return x.astype(np.uint8), f"{source}: {x.dtype} values {lo}..{hi} taken as 8-bit pixel values"


def _layout(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 4 and x.shape[-1] not in (1, 3) and x.shape[1] in (1, 3):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W), as networks and gankit.sample return them
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3) or min(x.shape, default=0) == 0:
        raise GankitError(f"{source} have shape {tuple(x.shape)}; {EXPECTED}")
    return x


def _from_float(x: np.ndarray, source: str) -> tuple:
    if not np.isfinite(x).all():
        raise GankitError(f"{source} hold NaN or infinite values; {EXPECTED}")
    lo, hi = float(x.min()), float(x.max())
    eps = 1e-6
    if lo >= -1 - eps and hi <= 1 + eps and lo < 0:
        out, kind = (x.astype(np.float64) + 1) * 127.5, "[-1, 1] (gankit's network encoding)"
    elif lo >= -eps and hi <= 1 + eps:
        out, kind = x.astype(np.float64) * 255, "[0, 1]"
    elif lo >= 0 and hi <= 255 and np.array_equal(x, np.round(x)):
        out, kind = x.astype(np.float64), "whole numbers 0..255"
    else:
        raise GankitError(f"{source} are {x.dtype} values {lo:.4g}..{hi:.4g}: neither [-1, 1], [0, 1] nor whole "
                          f"numbers 0..255; {EXPECTED}")
    return np.clip(np.round(out), 0, 255).astype(np.uint8), f"{source}: {x.dtype} values {lo:.4g}..{hi:.4g} taken as {kind}"


def read_folder(path, pattern: str = "*.png") -> np.ndarray:
    """uint8 images of every ``pattern`` file under ``path`` (sorted by path): one size and mode, or one line
    naming the first file that differs or cannot be read."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(path.rglob(pattern))
    arrays: list = []
    first: Optional[tuple] = None
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                mode, size, arr = im.mode, im.size, np.asarray(im)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise GankitError(f"{f} cannot be read as an image ({exc}); remove or replace it") from None
        if mode not in ("L", "RGB"):
            raise GankitError(f"{f} is a {mode} image; gankit reads 8-bit grey (L) or RGB images: convert it")
        if first is None:
            first = (f, mode, size)
        elif (mode, size) != first[1:]:
            raise GankitError(f"{f} is {mode} {size[0]}x{size[1]} but {first[0]} is {first[1]} {first[2][0]}x"
                              f"{first[2][1]}; every image of a set must have one size and mode")
        arrays.append(arr)
    return np.stack(arrays) if arrays else np.zeros((0,), np.uint8)
