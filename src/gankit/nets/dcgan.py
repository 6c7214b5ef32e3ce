"""DCGAN (Radford et al. 2016): transposed-conv G, strided-conv D.

Works for 28x28 (MNIST family: 7 -> 14 -> 28) and 32x32 (CIFAR-10: 4 -> 8 ->
16 -> 32) images with any channel count. ``width`` is the channel count of the
largest-resolution feature map; each halving of resolution doubles it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..errors import GankitError
from ._layers import block, weight_layer

# base resolution and number of 2x up/down-samplings per image size
_PLANS = {28: (7, 2), 32: (4, 3), 64: (4, 4)}


def _plan(size: int) -> tuple:
    if size not in _PLANS:
        raise GankitError(f"dcgan supports image sizes {sorted(_PLANS)}, got {size}; resize images with data.image_size")
    return _PLANS[size]


class DCGANGenerator(nn.Module):
    """G(z) -> x. z: (N, z_dim); x: (N, C, H, W) in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 64, norm: str = "batch", act: str = "relu"):
        super().__init__()
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        channels, size = image_shape[0], image_shape[1]
        base, n_up = _plan(size)
        c = width * 2 ** (n_up - 1)
        self.base = (c, base)
        bias = norm in ("none", "spectral")
        # state size: z_dim -> c x base x base
        self.project = nn.Sequential(*block(nn.ConvTranspose2d(z_dim, c, base, 1, 0, bias=bias), norm, act, c, conv=True))
        ups = []
        for _ in range(n_up - 1):
            # state size: c x s x s -> c/2 x 2s x 2s
            ups += block(nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=bias), norm, act, c // 2, conv=True)
            c //= 2
        # state size: width x size/2 x size/2 -> channels x size x size
        ups += [weight_layer(nn.ConvTranspose2d(c, channels, 4, 2, 1), norm), nn.Tanh()]
        self.up = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        h = self.project(z[:, :, None, None])
        return self.up(h)


class DCGANDiscriminator(nn.Module):
    """D(x) -> logits. x: (N, C, H, W); logits: (N,). ``features`` gives (N, feature_dim).

    ``depth`` adds that many 3x3 stride-1 conv blocks at the lowest resolution: a wider receptive field and
    a non-linear view of the whole digit before the linear head.
    """

    def __init__(self, image_shape: tuple, width: int = 64, norm: str = "batch", act: str = "leaky_relu",
                 depth: int = 0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        channels, size = image_shape[0], image_shape[1]
        base, n_down = _plan(size)
        # The first layer is never batch-normalised (DCGAN paper); spectral norm applies everywhere.
        first = "spectral" if norm == "spectral" else "none"
        layers = block(nn.Conv2d(channels, width, 4, 2, 1), first, act, width, conv=True)
        c = width
        for _ in range(n_down - 1):
            # state size: c x s x s -> 2c x s/2 x s/2
            layers += block(nn.Conv2d(c, c * 2, 4, 2, 1, bias=norm in ("none", "spectral")), norm, act, c * 2, conv=True)
            c *= 2
        for _ in range(depth):
            # state size: c x base x base -> the same; each block widens the receptive field by 2 pixels
            layers += block(nn.Conv2d(c, c, 3, 1, 1, bias=norm in ("none", "spectral")), norm, act, c, conv=True)
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        self.feature_dim = c * base * base
        self.head = weight_layer(nn.Linear(self.feature_dim, 1), norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.image_shape, f"x must be (N, {self.image_shape}), got {tuple(x.shape)}"
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
