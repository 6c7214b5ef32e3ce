"""Reference features of real data, cached on disk per dataset split and extractor hash.

Evaluating 10,000 samples must not re-extract 70,000 real images each time, so
the features (and domain logits) of a split, and reference-only quantities
derived from them (k-NN radii, nearest-training distances of test images), are
stored under ``<cache>/features/``. The extractor's weight hash is part of every
file name: a retrained classifier can never be paired with stale features.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Optional

import torch
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from ..atomic import atomic_write
from ..data import load_dataset
from ..data._idx import default_cache_dir
from .extractors import Extractor
from .registry import FeatureSet


def source_tag(dataset: str, data_dir: Optional[str]) -> str:
    """Named datasets are checksummed, so their name identifies them; an image folder is identified by its path."""
    if dataset != "folder":
        return dataset
    return "folder-" + hashlib.sha1(str(Path(data_dir or ".").resolve()).encode()).hexdigest()[:10]


def feature_cache_dir() -> Path:
    return default_cache_dir() / "features"


def cached_tensors(path: Path, compute: Callable[[], dict]) -> dict:
    """The dict of tensors stored at ``path``, or ``compute()`` saved there first."""
    if path.is_file():
        return load_file(str(path))
    tensors = {k: v.contiguous() for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, st_save(tensors))  # a concurrent reader never sees half a file
    return tensors


def split_features(extractor: Extractor, dataset: str, split: str, data_dir: Optional[str] = None,
                   progress: bool = False) -> FeatureSet:
    """Features (N, D) (and domain logits (N, K) when the extractor has them) of a whole dataset split."""
    path = feature_cache_dir() / f"{source_tag(dataset, data_dir)}-{split}-{extractor.hash[:16]}.safetensors"

    def compute() -> dict:
        data = load_dataset(dataset, data_dir, split)
        fs = extractor(data.x, progress=progress)
        out = {"features": fs.features}
        if fs.logits is not None:
            out["logits"] = fs.logits
        return out

    t = cached_tensors(path, compute)
    return FeatureSet(t["features"], t.get("logits"))


def derived(name: str, extractor: Extractor, dataset: str, data_dir: Optional[str],
            compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """A tensor computed from reference features only (e.g. 'test-radii'), cached next to them."""
    path = feature_cache_dir() / f"{source_tag(dataset, data_dir)}-{name}-{extractor.hash[:16]}.safetensors"
    return cached_tensors(path, lambda: {"value": compute()})["value"]
