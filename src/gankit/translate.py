"""Translate images with a trained image-to-image run (mode cyclegan): a folder or an ``.npz`` in, the same out.

    gankit translate runs/digits2mnist-cyclegan --direction a2b --in my_digits/ --out as_mnist/
    gankit translate runs/digits2mnist-cyclegan --direction b2a --in x.npz --out y.npz

Inputs are brought to the run's image shape: images of another size are resized (bicubic), colour images
become grey for a one-channel run and the reverse. A folder is read recursively (png, jpg, ...); the output
keeps each file's relative path with the suffix .png. Every image gets one line in ``manifest.jsonl`` (in the
output folder, or ``Y.manifest.jsonl`` beside ``Y.npz``): the source file (or ``X.npz[i]``), the output, the
direction, the network and its weights, and the checkpoint with its SHA-256.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .atomic import atomic_write_text
from .errors import GankitError
from .images import as_uint8

DIRECTIONS = {"a2b": "G_AB", "b2a": "G_BA"}


def translator(run, direction: str) -> torch.nn.Module:
    """The network of ``run`` that translates in ``direction`` (a2b or b2a), in eval mode."""
    if direction not in DIRECTIONS:
        raise GankitError(f"--direction must be a2b or b2a, got {direction!r}")
    if not getattr(run.network(), "translates", False):
        raise GankitError(f"run {run.run_dir} (mode {run.cfg.mode}) draws images from noise and translates "
                          f"nothing; use gankit sample")
    return run.network(DIRECTIONS[direction])


@torch.no_grad()
def translate_tensor(G: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """G on images x (N, C, H, W) in [-1, 1], in batches: (N, C, H, W) float on the CPU."""
    device = next(G.parameters()).device
    return torch.cat([G(b.to(device)).float().cpu() for b in x.split(batch_size)]) if len(x) else x


def _fit(images: np.ndarray, shape: tuple) -> np.ndarray:
    """uint8 (N, H, W[, C]) resized and converted to the run's (C, H, W)."""
    from PIL import Image

    c, h, w = shape
    mode = "L" if c == 1 else "RGB"
    out = []
    for img in images:
        im = Image.fromarray(img)
        if im.mode != mode:
            im = im.convert(mode)
        if im.size != (w, h):
            im = im.resize((w, h), Image.BICUBIC)
        out.append(np.asarray(im, dtype=np.uint8))
    return np.stack(out)


def read_inputs(path: Path) -> tuple:
    """(uint8 images (N, H, W[, C]) of any sizes as a list or array, source names) from a folder or an .npz."""
    from .data.files import IMAGE_SUFFIXES, open_image

    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                images = f["images"]
        except (OSError, KeyError, ValueError) as exc:
            raise GankitError(f"{path} is not an .npz with an array 'images' ({exc})") from None
        images, _ = as_uint8(images, str(path))
        return list(images), [f"{path.name}[{i}]" for i in range(len(images))]
    if not path.is_dir():
        raise GankitError(f"--in {path} is neither an .npz file nor a folder of images")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise GankitError(f"--in {path} holds no images (png, jpg, ...)")
    images = []
    for p in files:  # the checks of training data: corrupt, CMYK, 16-bit and alpha images are one line each
        try:
            im = open_image(p.read_bytes(), str(p))
        except OSError as exc:
            raise GankitError(f"{p} cannot be read ({exc.strerror or exc}); remove or replace it") from None
        images.append(np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im, dtype=np.uint8))
    return images, [p.relative_to(path).as_posix() for p in files]


def translate_files(run_dir, direction: str, src, out, checkpoint: Optional[str] = None,
                    device: str = "auto") -> dict:
    """Translate every image of ``src`` (folder or .npz) into ``out`` (folder or .npz) with a manifest."""
    from .export import to_uint8, write_images, _write_folder
    from .run import load_run
    from .data import to_tensor_images

    src, out = Path(src), Path(out)
    if out.suffix != ".npz" and src.resolve() == out.resolve():
        raise GankitError("--out must differ from --in: translations never overwrite their sources")
    run = load_run(run_dir, checkpoint, device)
    G = translator(run, direction)
    images, names = read_inputs(src)
    x = to_tensor_images(_fit(images, tuple(run.meta["image_shape"])))
    y = to_uint8(translate_tensor(G, x))
    part = DIRECTIONS[direction]
    common = {"direction": direction, "network": part, "weights": run.weights[part],
              "checkpoint": str(run.checkpoint), "checkpoint_sha256": run.meta.get("sha256"),
              "images_seen": run.progress["images"]}
    if out.suffix == ".npz":
        rows = [{"source": n, "out": f"{out.name}[{i}]", **common} for i, n in enumerate(names)]
        write_images(y, out)
        manifest = out.with_suffix(".manifest.jsonl")
        atomic_write_text(manifest, "".join(json.dumps(r) + "\n" for r in rows))
    else:
        files = [str(Path(n).with_suffix(".png")) if not n.endswith("]") else f"{i:05d}.png"
                 for i, n in enumerate(names)]
        if len(set(files)) != len(files):
            raise GankitError(f"two inputs of {src} would both be written as the same .png (e.g. a.jpg and a.png); "
                              f"rename one")
        rows = [{"source": n, "out": f, **common} for n, f in zip(names, files)]
        _write_folder(y, out, files, rows)
        manifest = out / "manifest.jsonl"
    return {"n": len(y), "out": str(out), "direction": direction, "manifest": str(manifest)}
