"""Two unpaired image sets (domains A and B) for image-to-image games such as CycleGAN.

Where the domains come from (``data`` in the config):

| config | domain A | domain B |
|---|---|---|
| ``name=digits``, ``domain_b=mnist`` | the named dataset (``data_dir``) | the named dataset (``data_dir_b``, else ``data_dir``) |
| ``name=folder``, ``domain_b=folder`` | every image under ``data_dir`` | every image under ``data_dir_b`` |
| ``name=folder``, ``domain_b=""`` | ``data_dir/trainA`` (``testA`` for the test split) | ``data_dir/trainB`` (``testB``) |

The last is the layout of the reference implementation's datasets (horse2zebra/trainA, ...). Folders are
resized to ``load_size`` (when set; else ``image_size``) and training batches are randomly cropped to
``image_size`` and, with ``flip``, flipped left-right; the crops and flips of iteration k of epoch e depend
only on (seed, e, k), so a resumed run sees the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..errors import GankitError
from . import ImageData, load_dataset

LAYOUT = ("trainA", "trainB")


@dataclass
class UnpairedData(ImageData):
    """Domain A as the `ImageData` fields (x, y, name, classes), domain B as ``b``; ``crop`` > 0: training
    images are stored larger and cropped to ``crop`` pixels per batch."""

    b: Optional[ImageData] = None
    crop: int = 0

    @property
    def image_shape(self) -> tuple:
        c, h, w = self.x.shape[1:]
        return (c, self.crop, self.crop) if self.crop else (c, h, w)


def domains(data_cfg) -> tuple:
    """((name, folder or None) of domain A, the same of B, True for the trainA/trainB layout)."""
    d = data_cfg
    if d.domain_b:
        return (d.name, d.data_dir), (d.domain_b, d.data_dir_b or d.data_dir), False
    root = Path(d.data_dir).expanduser() if d.data_dir else None
    if d.name == "folder" and root is not None and all((root / sub).is_dir() for sub in LAYOUT):
        return (d.name, str(root)), ("folder", str(root)), True
    where = f"{root} has no trainA/ and trainB/ folders" if d.name == "folder" and root else "no domain B is named"
    raise GankitError(f"this mode translates between two image sets but {where}; set data.domain_b to a dataset "
                      f"(e.g. mnist) or to folder with data.data_dir_b, or point data.data_dir at a folder holding "
                      f"trainA/ and trainB/")


def _folder(root: str, layout: bool, side: str, split: str) -> str:
    if not layout:
        return root
    sub = Path(root) / f"{split}{side}"
    if split == "test" and not sub.is_dir():
        raise GankitError(f"{sub} does not exist; the test split of a trainA/trainB folder is testA/ and testB/ "
                          f"(or evaluate the train split)")
    return str(sub)


def load_unpaired(data_cfg, split: str = "train", device="cpu", crop: bool = True) -> UnpairedData:
    """Both domains of ``data_cfg`` as an `UnpairedData` on ``device``; ``crop``: keep folders at load_size for
    random crops (training) instead of resizing them to image_size (evaluation, translation)."""
    d = data_cfg
    (name_a, dir_a), (name_b, dir_b), layout = domains(d)
    big = d.load_size if crop and d.load_size > d.image_size else 0
    loaded = []
    for side, name, folder in (("A", name_a, dir_a), ("B", name_b, dir_b)):
        if name == "folder":
            folder = _folder(folder, layout, side, split)
        size = big if name == "folder" and big else d.image_size
        data = load_dataset(name, folder, split if name != "folder" else "train", device, size, d.channels,
                            (d.limit or None) if split == "train" else None)
        loaded.append(data)
    a, b = loaded
    crop_size = d.image_size if big else 0
    shape_a = (a.x.shape[1], crop_size or a.x.shape[2], crop_size or a.x.shape[3])
    shape_b = (b.x.shape[1], crop_size or b.x.shape[2], crop_size or b.x.shape[3])
    if big and (name_a != "folder" or name_b != "folder"):
        raise GankitError("data.load_size (random crops) applies to image folders; set data.load_size=0 for "
                          "named datasets")
    if shape_a != shape_b:
        raise GankitError(f"domain A ({name_a}) has images of shape {shape_a} and domain B ({name_b}) {shape_b}; "
                          f"both must match: set data.image_size and data.channels for folders")
    return UnpairedData(a.x, a.y, a.name, a.classes, b=b, crop=crop_size)


def crop_flip(x: torch.Tensor, size: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random ``size`` x ``size`` crops (``size`` 0: none) and, with ``flip``, left-right flips of a batch, drawn
    from ``generator`` (on the CPU)."""
    n, _, h, w = x.shape
    if size and (h > size or w > size):
        oy = torch.randint(0, h - size + 1, (n,), generator=generator).tolist()
        ox = torch.randint(0, w - size + 1, (n,), generator=generator).tolist()
        x = torch.stack([x[i, :, oy[i]:oy[i] + size, ox[i]:ox[i] + size] for i in range(n)])
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x
