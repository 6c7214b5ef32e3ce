"""Evaluate images (from a run's generator or from files) with a dataset's domain classifier.

Every result carries its provenance: the extractor and its hash, the number of
images, the seed and the gankit version.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .. import __version__
from ..data import to_tensor_images
from ..errors import GankitError
from .classifier import load_classifier, predict_logits
from .scores import class_coverage, classifier_score

METRICS = ("cs", "modes")


def read_images(path) -> np.ndarray:
    """uint8 images from an ``.npz`` (array ``images``) or a folder of PNGs, sorted by name."""
    from PIL import Image

    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                return f["images"]
        except (OSError, KeyError, ValueError) as exc:
            raise GankitError(f"{path} is not an .npz with a uint8 array 'images' ({exc})") from None
    files = sorted(p for p in path.glob("*.png")) if path.is_dir() else []
    if not files:
        raise GankitError(f"{path} is neither an .npz file nor a folder of PNG images")
    return np.stack([np.asarray(Image.open(p)) for p in files])


def evaluate_images(images: np.ndarray, dataset: str, data_dir: Optional[str] = None, seed: Optional[int] = None,
                    metrics=METRICS) -> dict:
    """Scores of uint8 images (N, H, W[, C]) against ``dataset``'s domain classifier, with provenance."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise GankitError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    model, info = load_classifier(dataset, data_dir)
    x = to_tensor_images(images)
    if list(x.shape[1:]) != info["image_shape"]:
        raise GankitError(f"images have shape {tuple(x.shape[1:])} but the {dataset} classifier expects "
                          f"{tuple(info['image_shape'])}")
    logits = predict_logits(model, x)
    out = {}
    if "cs" in metrics:
        out.update(classifier_score(logits, splits=10))
    if "modes" in metrics:
        out.update(class_coverage(logits))
    out["provenance"] = {"extractor": f"gankit-{dataset}-classifier-v{info['recipe']['version']}",
                         "extractor_hash": info["hash"], "extractor_test_accuracy": info["test_accuracy"],
                         "n_images": int(len(x)), "seed": seed, "gankit_version": __version__}
    return out


@torch.no_grad()
def evaluate_run(run_dir, n: int = 10000, seed: int = 0, data_dir: Optional[str] = None,
                 checkpoint: Optional[str] = None, metrics=METRICS) -> dict:
    """Sample ``n`` images from a run's generator and score them."""
    from ..export import to_uint8
    from ..generate import generate, load_generator

    G, meta = load_generator(run_dir, checkpoint, device="cpu")
    images = to_uint8(generate(G, n, seed=seed))
    result = evaluate_images(images, meta["dataset"], data_dir or meta["config"]["data"]["data_dir"], seed, metrics)
    result["provenance"]["images_seen"] = meta["progress"]["images"]
    return result


def write_result(run_dir: Path, result: dict) -> Path:
    """Save a result as RUN_DIR/eval/<images_seen>-<seed>.json."""
    import json

    folder = run_dir / "eval"
    folder.mkdir(exist_ok=True)
    p = result["provenance"]
    path = folder / f"{p.get('images_seen', 0):012d}-seed{p['seed']}.json"
    path.write_text(json.dumps(result, indent=1))
    return path
