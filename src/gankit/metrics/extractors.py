"""Feature extractors: gankit's domain classifier, or Inception-v3 when its weights are on disk.

An `Extractor` maps images (N, C, H, W) in [-1, 1] to a `FeatureSet` and is
identified by a name and the SHA-256 of its weights; both go into every result.
The domain classifier (see `classifier.py`) is the default and gives
penultimate features (128) and class logits in one pass. The standard FID
Inception-v3 (torch-fidelity's port of the TensorFlow graph, 2048 pool
features) is used only when its weights file is given by ``--inception-weights``
or ``$GANKIT_INCEPTION_WEIGHTS``: gankit never downloads it.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..data import to_float
from ..errors import GankitError
from .classifier import load_classifier
from .registry import FeatureSet

INCEPTION_ENV = "GANKIT_INCEPTION_WEIGHTS"
INCEPTION_NAME = "inception-v3-tf-2015-12-05-pool3"


@dataclass
class Extractor:
    """A named, hashed map from images to features (and, for the domain classifier, logits)."""

    name: str
    hash: str
    dim: int
    forward: Callable[[torch.Tensor], tuple]  # (B, C, H, W) in [-1, 1] -> (features (B, D), logits (B, K) or None)
    batch_size: int = 128
    info: dict = field(default_factory=dict)

    @property
    def has_logits(self) -> bool:
        return bool(self.info.get("classes"))

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, progress: bool = False) -> FeatureSet:
        """Features (N, D) float32 (and logits (N, K)) of images x (N, C, H, W) in [-1, 1], on the CPU."""
        from tqdm import tqdm

        feats, logits = [], []
        for batch in tqdm(x.split(self.batch_size), desc=f"features {self.name}", unit="batch",
                          disable=not progress, leave=False):
            f, lg = self.forward(to_float(batch))
            feats.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
        features = torch.cat(feats) if feats else torch.zeros(0, self.dim)
        return FeatureSet(features, torch.cat(logits) if logits else None)


def domain_extractor(dataset: str, data_dir: Optional[str] = None, train_if_missing: bool = True,
                     progress: bool = True) -> Extractor:
    """The dataset's domain classifier (trained and cached on first need) as an extractor of 128 features."""
    model, info = load_classifier(dataset, data_dir, train_if_missing=train_if_missing, progress=progress)
    # channels_last runs this small CNN about three times faster on CPU; the weights (and hash) are unchanged.
    model = model.to(memory_format=torch.channels_last).eval()

    def forward(batch: torch.Tensor) -> tuple:
        f = model.features(batch.contiguous(memory_format=torch.channels_last))
        return f, model.logits(f)

    name = f"gankit-{dataset}-classifier-v{info['recipe']['version']}"
    return Extractor(name, info["hash"], model.head[-1].in_features, forward, info=dict(info))


def inception_weights_path(path: Optional[str] = None) -> Optional[Path]:
    """The Inception-v3 weights file named by ``path`` or ``$GANKIT_INCEPTION_WEIGHTS``, or None if neither."""
    chosen = path or os.environ.get(INCEPTION_ENV)
    if not chosen:
        return None
    p = Path(chosen).expanduser()
    if not p.is_file():
        raise GankitError(f"Inception-v3 weights {p} not found; give the path of the .pth file "
                          f"(torch-fidelity's weights-inception-2015-12-05-6726825d.pth) or drop --inception-weights")
    return p


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inception_extractor(weights: Path) -> Extractor:
    """Inception-v3 pool3 features (2048) from a local weights file; images are upsampled to 299x299."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    except (RuntimeError, OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise GankitError(f"{weights} is not a torch-fidelity Inception-v3 state dict ({type(exc).__name__}); "
                          f"use weights-inception-2015-12-05-6726825d.pth") from None

    def forward(batch: torch.Tensor) -> tuple:
        x = batch.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return net(x.contiguous())[0], None

    return Extractor(INCEPTION_NAME, file_sha256(weights), 2048, forward, batch_size=32,
                     info={"weights": str(weights)})


def resolve_extractor(dataset: str, data_dir: Optional[str] = None, choice: str = "auto",
                      inception_weights: Optional[str] = None, progress: bool = True) -> tuple:
    """(extractor, note or None). ``choice``: 'auto' (Inception when its weights are given, else the domain
    classifier, with a one-line note saying so), 'domain' or 'inception' (an error without weights)."""
    if choice not in ("auto", "domain", "inception"):
        raise GankitError(f"unknown extractor {choice!r}; choose auto, domain or inception")
    weights = inception_weights_path(inception_weights) if choice != "domain" else None
    if weights is not None:
        return inception_extractor(weights), None
    if choice == "inception":
        raise GankitError(f"--extractor inception needs local weights: pass --inception-weights PATH or set "
                          f"{INCEPTION_ENV} (gankit never downloads them)")
    domain = domain_extractor(dataset, data_dir, progress=progress)
    note = None
    if choice == "auto":
        note = (f"Inception-v3 weights not available (--inception-weights PATH or ${INCEPTION_ENV}); feature "
                f"metrics use {domain.name} ({domain.hash[:12]}), not comparable with Inception FIDs")
    return domain, note
