"""What every network promises, stated once: the wrappers, the trainer and the kernel tools rely on it.

| protocol | attributes | call |
|---|---|---|
| `Generator` | ``z_dim`` (int), ``image_shape`` (C, H, W) | ``G(z (N, z_dim)) -> x (N, C, H, W)`` in [-1, 1] |
| `Discriminator` | ``image_shape``, ``feature_dim`` | ``D(x) -> logits (N,)`` |
| `FeatureDiscriminator` | as `Discriminator`, plus ``features(x) -> (N, feature_dim)`` and ``head`` (feature_dim -> 1) | ``D(x) = head(features(x)).squeeze(1)`` |

The projection and AC wrappers (`gankit.nets.conditional`) and the coded G (`gankit.nets.coded`) need a
`FeatureDiscriminator` and a `Generator`; `check` says in one line what a network lacks.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import GankitError


@runtime_checkable
class Generator(Protocol):
    z_dim: int
    image_shape: tuple

    def __call__(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Discriminator(Protocol):
    image_shape: tuple

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class FeatureDiscriminator(Protocol):
    image_shape: tuple
    feature_dim: int
    head: torch.nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


_NEEDS = {"Generator": ("z_dim", "image_shape"), "Discriminator": ("image_shape",),
          "FeatureDiscriminator": ("image_shape", "feature_dim", "head", "features")}


def check(module, protocol, role: str):
    """``module`` when it has every attribute of ``protocol``; else a `GankitError` naming what is missing."""
    missing = [n for n in _NEEDS[protocol.__name__] if not hasattr(module, n)]
    if missing:
        raise GankitError(f"{type(module).__name__} cannot serve as {role}: it has no {', '.join(missing)} "
                          f"(see gankit.nets.protocols.{protocol.__name__})")
    return module
