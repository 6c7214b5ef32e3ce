"""Datasets read from disk while training: a folder or zip of images streamed by DataLoader workers.

`open_training_data` picks memory or streaming for a run (``data.stream``: auto, true or false). A
streamed dataset keeps only the file names and labels in memory. Its batch source asks it for the images
of positions ``[start, stop)`` of an epoch's order; it serves them from a `torch.utils.data.DataLoader`
(``data.workers`` worker processes, each opening the zip once, prefetching 2 batches each, pinned memory
on CUDA) that walks the same order ahead of training. The order is `ImageData.epoch_order` (it depends
only on the seed and the epoch), so a streamed run sees exactly the batches an in-memory run of the same
files sees, and a resumed run those of an uninterrupted one. A worker that meets a bad file sends its
one-line error back and the run stops with it, naming the file.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

from ..errors import GankitError
from . import ImageData, to_uint8_tensor
from .files import ImageFiles, decode, first_image_size, list_images, read_images

PREFETCH = 2           # batches each worker prepares ahead
MEMORY_SHARE = 0.5     # auto streams when the uint8 images would take more than this share of available memory


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def bytes_needed(n: int, size: int, channels: int) -> int:
    """Memory of ``n`` uint8 images of size x size x channels."""
    return n * size * size * channels


class _Files(torch.utils.data.Dataset):
    """Item i: (uint8 (C, H, W), error text or '') of file i; errors travel back as text, not exceptions."""

    def __init__(self, files: ImageFiles, size: int, channels: int):
        self.files, self.size, self.channels = files, size, channels
        self.reader = files.reader()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        name = self.files.names[i]
        try:
            arr = decode(self.reader.read(name), self.files.label(name), self.size, self.channels)
        except GankitError as exc:
            return torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8), str(exc)
        except OSError as exc:
            return (torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8),
                    f"{self.files.label(name)} cannot be read ({exc}); check the disk and the file")
        t = torch.from_numpy(arr)
        return (t[None] if t.dim() == 2 else t.permute(2, 0, 1)).contiguous(), ""


class _Chunks:
    """The batch sampler: index lists set before each pass (the loader's workers persist across passes)."""

    def __init__(self):
        self.chunks: list = []

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)


class _LazyImages:
    """``data.x`` of a streamed dataset: shape, dtype and indexing (reads the files asked for)."""

    dtype = torch.uint8

    def __init__(self, owner: "StreamedImages"):
        self.owner = owner

    @property
    def shape(self) -> tuple:
        return (len(self.owner), *self.owner.image_shape)

    @property
    def device(self) -> torch.device:
        return self.owner.device

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, key) -> torch.Tensor:
        idx = range(len(self.owner))[key] if isinstance(key, slice) else torch.as_tensor(key).reshape(-1).tolist()
        return self.owner.read_indices(list(idx))

    def to(self, device):
        self.owner.device = torch.device(device)
        return self


class StreamedImages:
    """A dataset of image files read while training; the `ImageData` interface for batch sources."""

    streamed = True

    def __init__(self, files: ImageFiles, name: str, size: int, channels: int, workers: int, device="cpu"):
        self.files, self.name, self.size, self.channels, self.workers = files, name, size, channels, workers
        self.device = torch.device(device)
        self.y = torch.from_numpy(files.labels).to(self.device)
        self.classes = list(files.classes)
        self.x = _LazyImages(self)
        self._loader = self._sampler = self._it = None
        self._key: Optional[tuple] = None     # (epoch key, next start position) the loader will serve next

    def __len__(self) -> int:
        return len(self.files)

    @property
    def image_shape(self) -> tuple:
        return (self.channels, self.size, self.size)

    def epoch_order(self, seed: int, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
        return torch.randperm(len(self), generator=g).to(self.device)

    def read_indices(self, indices: list) -> torch.Tensor:
        """uint8 (n, C, H, W) of files ``indices``, read in this process."""
        return to_uint8_tensor(read_images(self.files, self.size, self.channels, indices)).to(self.device)

    def batch(self, key, order: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """uint8 images (stop - start, C, H, W) at positions [start, stop) of ``order`` (epoch ``key``),
        on the dataset's device. Consecutive calls are served by the prefetching loader; any other call
        (a new epoch, a resume, a rollback) restarts it at ``start``."""
        if self._key != (key, start, stop - start) or self._it is None:  # a new batch size restarts it too
            self._restart(key, order, start, stop - start)
        try:
            images, errors = next(self._it)
        except StopIteration:
            self._restart(key, order, start, stop - start)
            images, errors = next(self._it)
        bad = [e for e in errors if e]
        if bad:
            self.close()
            more = f" ({len(bad) - 1} more bad files in this batch)" if len(bad) > 1 else ""
            raise GankitError(bad[0] + more)
        self._key = (key, stop, stop - start)
        return images.to(self.device, non_blocking=True)

    def _restart(self, key, order: torch.Tensor, start: int, chunk: int) -> None:
        positions = order.cpu().tolist()
        end = start + (len(positions) - start) // chunk * chunk
        if self._loader is None:
            self._sampler = _Chunks()
            self._sampler.chunks = [[0]]
            kwargs = {"num_workers": self.workers, "pin_memory": self.device.type == "cuda"}
            if self.workers > 0:
                kwargs.update(prefetch_factor=PREFETCH, persistent_workers=True)
            self._loader = torch.utils.data.DataLoader(_Files(self.files, self.size, self.channels),
                                                       batch_sampler=self._sampler, **kwargs)
        self._sampler.chunks = [positions[s:s + chunk] for s in range(start, end, chunk)]
        self._it = iter(self._loader)
        self._key = (key, start)

    def close(self) -> None:
        """Stop the worker processes (they also stop when the dataset is garbage-collected)."""
        self._it = None
        self._loader = None

    def __del__(self):
        self.close()


def _folder_source(dc) -> tuple:
    if dc.data_dir is None:
        raise GankitError("data.name=folder needs --data-dir pointing at a folder of images or a zip "
                          "(gankit data prepare writes one)")
    files = list_images(dc.data_dir)
    if dc.limit:
        files = ImageFiles(files.root, files.names[:dc.limit], files.labels[:dc.limit], files.classes, files.is_zip)
    return files


def should_stream(dc, n: int) -> tuple:
    """(stream?, why) for a folder of ``n`` images under ``data.stream``."""
    need = bytes_needed(n, dc.image_size, dc.channels)
    if dc.stream in ("true", "false"):
        return dc.stream == "true", f"data.stream={dc.stream}"
    avail = available_memory()
    why = (f"data.stream=auto: {n:,} images need {need / 2**30:.2f} GiB as uint8, "
           f"{avail / 2**30:.1f} GiB available")
    return need > MEMORY_SHARE * avail, why


def open_training_data(dc, device) -> tuple:
    """(dataset, note) for a run's ``data`` config: an `ImageData` in memory or a `StreamedImages`."""
    from . import load_dataset

    if dc.name != "folder":
        if dc.stream == "true":
            raise GankitError(f"data.stream=true streams folders and zips (data.name=folder); {dc.name} is small "
                              f"enough for memory: set data.stream=auto or false")
        return load_dataset(dc.name, dc.data_dir, "train", device, dc.image_size, dc.channels, dc.limit or None), None
    if dc.channels not in (1, 3):
        raise GankitError(f"data.channels must be 1 or 3 for image folders, got {dc.channels}")
    files = _folder_source(dc)
    stream, why = should_stream(dc, len(files))
    if stream:
        first_image_size(files)  # a first unreadable file is reported before workers start
        return (StreamedImages(files, "folder", dc.image_size, dc.channels, dc.workers, device),
                f"streaming {len(files):,} images from {files.root} with {dc.workers} workers ({why})")
    images = to_uint8_tensor(read_images(files, dc.image_size, dc.channels)).to(device)
    return ImageData(images, torch.from_numpy(files.labels).to(device), "folder", list(files.classes)), None


__all__ = ["StreamedImages", "available_memory", "bytes_needed", "open_training_data", "should_stream"]
