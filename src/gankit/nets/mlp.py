"""The fully connected G and D of the original GAN paper (Goodfellow et al. 2014)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import GankitError

from ._layers import block, weight_layer
from .registry import list_field


@dataclass
class MLPOptions:
    """``model.options`` of the mlp architecture."""

    depth: int = 3                    # hidden layers; layer i has width * 2**i units (G; D mirrors it) ...
    widths: list[int] = list_field([])  # ... or these units, one per hidden layer (G's order; D mirrors it)


def _widths(width: int, depth: int, widths) -> list:
    if widths:
        if any(w < 1 for w in widths):
            raise GankitError(f"model.options.widths must be positive, got {list(widths)}")
        return list(widths)
    if depth < 1:
        raise GankitError(f"model.options.depth must be at least 1, got {depth}")
    return [width * 2 ** i for i in range(depth)]


class MLPGenerator(nn.Module):
    """G(z) -> x. z: (N, z_dim); x: (N, C, H, W) in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 256, depth: int = 3,
                 norm: str = "batch", act: str = "relu", widths: tuple = ()):
        super().__init__()
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        layers, d_in = [], z_dim
        for d_out in _widths(width, depth, widths):
            layers += block(nn.Linear(d_in, d_out, bias=norm in ("none", "spectral")), norm, act, d_out, conv=False)
            d_in = d_out
        layers += [weight_layer(nn.Linear(d_in, math.prod(self.image_shape)), norm), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """D(x) -> logits. x: (N, C, H, W); logits: (N,). ``features`` gives (N, feature_dim)."""

    def __init__(self, image_shape: tuple, width: int = 256, depth: int = 3,
                 norm: str = "none", act: str = "leaky_relu", widths: tuple = ()):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers, d_in = [nn.Flatten()], math.prod(self.image_shape)
        for d_out in reversed(_widths(width, depth, widths)):
            layers += block(nn.Linear(d_in, d_out, bias=norm in ("none", "spectral")), norm, act, d_out, conv=False)
            d_in = d_out
        self.body = nn.Sequential(*layers)
        self.feature_dim = d_in
        self.head = weight_layer(nn.Linear(d_in, 1), norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.image_shape, f"x must be (N, {self.image_shape}), got {tuple(x.shape)}"
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
