"""gankit's own domain classifier: a small CNN per dataset, trained offline and cached.

It plays two roles: its softmax gives classifier scores and class histograms,
and its penultimate layer (128 features) is the offline feature extractor.
Each cached classifier is identified by the SHA-256 of its weights, which is
recorded with every score computed from it.

Besides the dataset's K classes it learns one more, "not an image of this
dataset", from generic non-images made on the fly (`non_images`: flat fields,
pixel noise, smooth noise, scrambled real images). A classifier that has only
ever seen digits maps any input somewhere among the digits: recipe version 1 put
a flat grey image (what an untrained generator draws) inside the k-NN balls of
ten real digits, so precision called it perfect. The extra class gives such
inputs features of their own. Scores use the K class logits only (``forward``).
"""
from __future__ import annotations

import hashlib
import math
import json
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from ..atomic import atomic_write
from ..data import load_dataset, to_float
from ..data._idx import default_cache_dir
from ..errors import GankitError

FEATURE_DIM = 128
# version 2: one more class for non-images, a quarter of each batch (see the module docstring)
# min_steps: a small dataset (the 1,617 training digits make 12 batches) trains for as many optimiser steps as
# 3 epochs of MNIST make (1,404), instead of 3 epochs; datasets of 60,000 images train for exactly 3 epochs
RECIPE = {"epochs": 3, "batch_size": 128, "lr": 1e-3, "seed": 0, "shift": 2, "non_images": 0.25, "version": 2,
          "min_steps": 1400}


class DomainClassifier(nn.Module):
    """x (N, C, H, W) in [-1, 1] -> logits (N, n_classes); ``features`` -> (N, 128).

    The head has n_classes + 1 outputs, the last for "not an image of the dataset"; ``forward`` and
    ``logits`` return the n_classes class logits, ``all_logits`` all of them (for training).
    """

    def __init__(self, channels: int = 1, size: int = 28, n_classes: int = 10):
        super().__init__()
        self.n_classes = n_classes
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # state size: 32 x size/2 x size/2
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x size/4 x size/4
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, FEATURE_DIM), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, n_classes + 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes) from features (N, 128); the non-image logit is left out."""
        return self.head(features)[:, :self.n_classes]

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_classes + 1) logits, the last for non-images."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


def weights_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _random_shift(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (zero padding is -1, the background)."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=g).tolist()
    return padded[:, :, dy:dy + h, dx:dx + w]


def non_images(like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Images (N, C, H, W) in [-1, 1] shaped like ``like`` that are no dataset's images, one kind each, drawn
    from ``g``: flat fields with faint noise, pixel noise, smooth noise (bilinear from 4x4 to 14x14) and
    ``like``'s own pixels scrambled (same histogram, no shape)."""
    n, c, h, w = like.shape
    level = torch.rand(n, 1, 1, 1, generator=g) * 2 - 1
    amp = torch.rand(n, 1, 1, 1, generator=g)
    flat = level + 0.1 * amp * torch.randn(n, c, h, w, generator=g)
    pixel = level + (0.1 + 0.9 * amp) * torch.randn(n, c, h, w, generator=g)
    low = int(torch.randint(4, 15, (1,), generator=g))
    smooth = level + (0.2 + 1.8 * amp) * F.interpolate(torch.randn(n, c, low, low, generator=g), size=(h, w),
                                                       mode="bilinear", align_corners=False)
    perm = torch.rand(n, c * h * w, generator=g).argsort(1)
    scrambled = like.reshape(n, -1).gather(1, perm).reshape(n, c, h, w)
    kind = torch.randint(0, 4, (n, 1, 1, 1), generator=g)
    out = torch.where(kind == 0, flat, torch.where(kind == 1, pixel, torch.where(kind == 2, smooth, scrambled)))
    return out.clamp(-1.0, 1.0)


@torch.enable_grad()  # also when called under no_grad, as evaluate_run does on a first evaluation
def train_classifier(dataset: str, data_dir: Optional[str] = None, progress: bool = True,
                     min_steps: Optional[int] = None) -> tuple:
    """Train the domain classifier with the fixed recipe; return (model, info with test accuracy).

    ``min_steps`` overrides the recipe's (0: exactly its 3 epochs, for quick checks); the info records it."""
    recipe = dict(RECIPE, min_steps=RECIPE["min_steps"] if min_steps is None else int(min_steps))
    from tqdm import tqdm

    torch.manual_seed(RECIPE["seed"])
    train, test = load_dataset(dataset, data_dir, "train"), load_dataset(dataset, data_dir, "test")
    c, s = train.image_shape[0], train.image_shape[1]
    model = DomainClassifier(c, s, len(train.classes))
    opt = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    bs, epochs = RECIPE["batch_size"], RECIPE["epochs"]
    if len(train) < bs:
        raise GankitError(f"the {dataset} training split has {len(train)} images, too few to train gankit's "
                          f"{dataset} classifier (it needs at least {bs}); evaluate against a larger dataset")
    per_epoch = len(train) // bs
    epochs = max(epochs, math.ceil(recipe["min_steps"] / per_epoch))
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"] * 3, total_steps=steps)
    g = torch.Generator().manual_seed(RECIPE["seed"])
    bar = tqdm(total=steps, desc=f"classifier {dataset}", unit="step", disable=not progress)
    start = time.time()
    for epoch in range(epochs):
        order = train.epoch_order(RECIPE["seed"], epoch)
        model.train()
        for b in range(len(train) // bs):
            idx = order[b * bs:(b + 1) * bs]
            x = _random_shift(to_float(train.x[idx]), RECIPE["shift"], g)
            n_non = round(RECIPE["non_images"] * bs)
            x = torch.cat([x, non_images(x[:n_non], g)])
            y = torch.cat([train.y[idx], torch.full((n_non,), len(train.classes), dtype=train.y.dtype)])
            loss = F.cross_entropy(model.all_logits(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
    bar.close()
    model.eval()
    k = len(train.classes)
    with torch.no_grad():  # one pass over the test split gives both numbers
        full = torch.cat([model.all_logits(to_float(b)) for b in test.x.split(1000)])
    acc = (full[:, :k].argmax(1) == test.y).float().mean().item()  # over the K classes
    rejected = (full.argmax(1) == k).float().mean().item()  # test images called non-images
    info = {"dataset": dataset, "test_accuracy": acc, "test_rejected": rejected,
            "train_seconds": round(time.time() - start, 1), "recipe": recipe, "classes": train.classes,
            "image_shape": list(train.image_shape)}
    return model, info


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model(b) for b in x.split(batch_size)])


def cache_path(dataset: str) -> Path:
    return default_cache_dir() / "classifiers" / f"{dataset}-v{RECIPE['version']}"


def load_classifier(dataset: str, data_dir: Optional[str] = None, train_if_missing: bool = True,
                    progress: bool = True) -> tuple:
    """(model in eval mode, info incl. 'hash') from the cache; trained (and cached) on first need."""
    path = cache_path(dataset)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if weights.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        model = DomainClassifier(info["image_shape"][0], info["image_shape"][1], len(info["classes"]))
        model.load_state_dict(load_file(str(weights)))
        model.eval()
        if weights_hash(model) != info["hash"]:
            raise GankitError(f"cached classifier {weights} does not match its recorded hash; delete it to retrain")
        return model, info
    if not train_if_missing:
        raise GankitError(f"no cached {dataset} classifier; run: gankit classifier train --dataset {dataset}")
    model, info = train_classifier(dataset, data_dir, progress)
    return model, save_classifier(dataset, model, info)


def save_classifier(dataset: str, model: nn.Module, info: dict) -> dict:
    """Store ``model`` as the cached classifier of ``dataset``; return ``info`` with its weight hash added.

    ``info`` needs 'image_shape', 'classes', 'recipe' and 'test_accuracy' (as `train_classifier` returns).
    """
    path = cache_path(dataset)
    info = dict(info, hash=weights_hash(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path.with_suffix(".safetensors"), st_save({k: v.contiguous() for k, v in model.state_dict().items()}))
    atomic_write(path.with_suffix(".json"), json.dumps(info, indent=1).encode())
    return info
