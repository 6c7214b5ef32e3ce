"""Write generated images to disk: a folder of PNGs or one ``.npz`` of uint8 arrays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import GankitError


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> uint8 (N, H, W) for one channel, (N, H, W, C) otherwise."""
    arr = images.detach().float().cpu().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    arr = arr[:, 0] if arr.shape[1] == 1 else arr.permute(0, 2, 3, 1)
    return arr.numpy()


def write_images(images: np.ndarray, out: Path, labels=None) -> Path:
    """Save uint8 images as ``out`` (.npz with ``images`` [and ``labels``]) or as PNGs in folder ``out``."""
    from PIL import Image

    out = Path(out)
    try:
        if out.suffix == ".npz":
            out.parent.mkdir(parents=True, exist_ok=True)
            arrays = {"images": images} if labels is None else {"images": images, "labels": np.asarray(labels)}
            np.savez_compressed(out, **arrays)
            return out
        out.mkdir(parents=True, exist_ok=True)
        width = max(5, len(str(len(images) - 1)))
        for i, img in enumerate(images):
            Image.fromarray(img).save(out / f"{i:0{width}d}.png")
    except OSError as exc:
        raise GankitError(f"cannot write samples to {out} ({exc.strerror or exc}); choose another --out") from None
    return out
