"""Writing a file whole or not at all: every file gankit writes goes through `atomic_write`.

A temporary file beside the target is written, flushed and fsynced, then renamed over the target, and the
folder is fsynced. A failure at any point (a full disk, a signal) leaves the previous file byte for byte and
no temporary file behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import GankitError

_UMASK = None  # read on first write


def _umask() -> int:
    """The process umask (read once: os.umask can only be read by setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: temporary file, flush, fsync, rename, fsync the folder."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # the permissions open() would give, not mkstemp's 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write() names no file; say which
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass




def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def image_bytes(image, fmt: str = "PNG", **options) -> bytes:
    """A PIL image encoded in memory, for `atomic_write`."""
    import io

    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def write_folder(out: Path, fill: Callable[[Path], None], owned: Callable[[Path], bool]) -> None:
    """Make folder ``out`` whole or not at all: ``fill(tmp)`` writes into a sibling temporary folder, which
    then replaces ``out``. An existing ``out`` is replaced only when ``owned(out)`` says gankit wrote it;
    otherwise `GankitError`. On any failure the previous ``out`` is left as it was and the temporary folder
    is removed.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and owned(out)):
        raise GankitError(f"{out} exists and holds files gankit did not write; choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = out.parent / f".{out.name}.{os.getpid()}.old"
    try:
        fill(tmp)
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_grid(path: Path, images, columns: int, label: str = ""):
    """A grid of ``images`` (N, C, H, W) in [0, 1], ``columns`` per row, written atomically as a PNG to ``path``,
    under a strip with ``label`` when one is given; the grid (without the strip)."""
    import torch
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images, nrow=columns, padding=2)
    path.parent.mkdir(exist_ok=True)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()  # as save_image
    image = Image.fromarray(pixels)
    if label:
        strip = Image.new(image.mode, (image.width, image.height + 14), 0)
        strip.paste(image, (0, 14))
        ImageDraw.Draw(strip).text((2, 1), label, fill=255 if image.mode == "L" else (255, 255, 255))
        image = strip
    atomic_write(path, image_bytes(image))
    return grid
