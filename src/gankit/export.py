"""Write generated images to disk: a folder of PNGs or one ``.npz`` of uint8 arrays.

Synthetic datasets (`export_samples`) carry their provenance: labels in the ``.npz``,
or a ``manifest.jsonl`` beside the PNGs from which `regenerate` redraws any image.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .atomic import atomic_write, image_bytes, write_folder
from .errors import GankitError, did_you_mean
from .nets.conditional import cycle_labels


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
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            atomic_write(out, buf.getvalue())  # a failed write leaves an earlier file as it was
            return out
        width = max(5, len(str(len(images) - 1)))

        def fill(tmp: Path) -> None:
            for i, img in enumerate(images):
                (tmp / f"{i:0{width}d}.png").write_bytes(image_bytes(Image.fromarray(img)))

        write_folder(out, fill, _samples_folder)
    except OSError as exc:
        raise GankitError(f"cannot write samples to {out} ({exc.strerror or exc}); choose another --out") from None
    return out


# ---- synthetic datasets with a manifest --------------------------------------------------------------------

MANIFEST = "manifest.jsonl"


def plan_labels(n_classes: int, n: int, label: Optional[int] = None, per_class: Optional[int] = None):
    """Labels (N,) of a sample request, or None for an unconditional run (which refuses a class).

    ``per_class`` m: m images of every class, in class order (N = m K); ``label`` k: n images of class k;
    neither: n images cycling through the classes.
    """
    if n_classes == 0:
        if label is not None or per_class is not None:
            raise GankitError("--class and --per-class need a conditional run (model.conditional set); "
                              "this run is unconditional: use --n alone")
        return None
    if label is not None and per_class is not None:
        raise GankitError("use either --class K with --n N, or --per-class N for every class, not both")
    if per_class is not None:
        if per_class < 1:
            raise GankitError(f"--per-class must be at least 1, got {per_class}")
        return torch.arange(n_classes).repeat_interleave(per_class)
    if label is not None:
        if not 0 <= label < n_classes:
            raise GankitError(f"--class must be in 0..{n_classes - 1}, got {label}")
        return torch.full((n,), int(label), dtype=torch.long)
    return cycle_labels(n_classes, n)


def resolve_class(value: Optional[str], class_names: list) -> Optional[int]:
    """A --class given as an index ('7') or a class name ('Sneaker') -> index; None stays None."""
    if value is None:
        return None
    if value.lstrip("-").isdigit():
        return int(value)
    if value in class_names:
        return class_names.index(value)
    raise GankitError(f"unknown class {value!r}{did_you_mean(value, class_names)}; give an index "
                      f"0..{len(class_names) - 1} or one of: {', '.join(class_names)}")


def export_samples(G: torch.nn.Module, meta: dict, out: Path, n: int = 64, seed: int = 0,
                   labels: Optional[torch.Tensor] = None, truncation: Optional[float] = None,
                   batch_size: int = 500) -> dict:
    """Generate and write samples with the provenance to redraw each one; returns a summary.

    ``out`` ending in .npz: arrays ``images`` (N, H, W[, C]) uint8 and, for a conditional run, ``labels`` (N,).
    Otherwise a folder: PNGs named by latent index, in one subfolder per class for a conditional run, and
    ``manifest.jsonl`` with one row per image: file, seed, latent index, label, checkpoint SHA-256 and what
    else `regenerate` needs (number of codes drawn, truncation, batch size, weights).
    """
    from .generate import generate

    n = len(labels) if labels is not None else n
    images = to_uint8(generate(G, n, seed=seed, batch_size=batch_size, labels=labels, truncation=truncation))
    out = Path(out)
    if out.suffix == ".npz":
        write_images(images, out, labels=None if labels is None else labels.numpy())
        return {"n": n, "out": str(out), "seed": seed}
    classes = meta.get("classes") or []
    width = max(5, len(str(n - 1)))
    files = [f"{i:0{width}d}.png" if labels is None else f"{int(labels[i])}/{i:0{width}d}.png" for i in range(n)]
    common = {"seed": seed, "checkpoint_sha256": meta.get("sha256"), "checkpoint": meta.get("checkpoint_path"),
              "weights": meta.get("weights"), "n_latents": n, "truncation": truncation, "batch_size": batch_size}
    rows = []
    for i, name in enumerate(files):
        label = None if labels is None else int(labels[i])
        rows.append({"file": name, "index": i, "label": label,
                     "class": classes[label] if label is not None and label < len(classes) else None, **common})
    _write_folder(images, out, files, rows)
    return {"n": n, "out": str(out), "seed": seed, "manifest": str(out / MANIFEST)}


def _samples_folder(folder: Path) -> bool:
    """Whether ``folder`` holds only what `gankit sample` writes (PNGs, class folders of PNGs, a manifest)."""
    return all(p.name == MANIFEST or p.suffix == ".png" or p.is_dir() for p in folder.rglob("*"))


def _write_folder(images: np.ndarray, out: Path, files: list, rows: list) -> None:
    from PIL import Image

    def fill(tmp: Path) -> None:
        for img, name in zip(images, files):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(image_bytes(Image.fromarray(img)))
        (tmp / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in rows))

    try:
        write_folder(out, fill, _samples_folder)
    except OSError as exc:
        raise GankitError(f"cannot write samples to {out} ({exc.strerror or exc}); choose another --out") from None


def read_manifest(folder) -> list:
    """The rows of ``folder/manifest.jsonl``."""
    path = Path(folder) / MANIFEST
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise GankitError(f"cannot read {path} ({exc}); it is written by gankit sample into image folders") from None


def regenerate(G: torch.nn.Module, rows: list, file: str) -> np.ndarray:
    """Redraw the image ``file`` of a manifest (all its ``rows``) with generator G: uint8 (H, W[, C]).

    The image's whole generation batch is recomputed from the seed, so the result is bit-for-bit the
    original on the same device and software.
    """
    from .generate import generate_codes
    from .latent import latent_codes

    row = next((r for r in rows if r["file"] == file), None)
    if row is None:
        raise GankitError(f"{file} is not in the manifest")
    bs, i = row["batch_size"], row["index"]
    start = i // bs * bs
    z = latent_codes(row["n_latents"], G.z_dim, row["seed"], row["truncation"])[start:start + bs]
    labels = None
    if row["label"] is not None:
        by_index = {r["index"]: r["label"] for r in rows if r["seed"] == row["seed"]}
        labels = torch.tensor([by_index[j] for j in range(start, start + len(z))])
    return to_uint8(generate_codes(G, z, labels, bs)[i - start:i - start + 1])[0]
