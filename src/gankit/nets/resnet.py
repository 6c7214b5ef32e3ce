"""ResNet generator and discriminator in the style of SNGAN (Miyato et al. 2018), for 32, 64 and 128 pixels.

G: z -> linear to (ch * g[0]) x 4 x 4 -> one up-sampling residual block per doubling (BN, ReLU, nearest
2x up, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: up, 1x1 conv) -> BN, ReLU, 3x3 conv, tanh.
D: one down-sampling residual block per halving (ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pool;
shortcut: 1x1 conv, pool; the first block has no ReLU before its first conv, and pools its input before the
shortcut's conv) down to 8 x 8 (32 px) or 4 x 4 (64, 128 px), then blocks without pooling (two at 32 px as
in SNGAN's CIFAR-10 network, one at 64 and 128 px as in its ImageNet 128 network) -> ReLU, sum over
space -> linear. Spectral norm on every D layer (``model.norm_d=spectral``).

Widths: ``model.width_g`` / ``model.width_d`` (the base channel count ``ch``) times one multiplier per
block, from the lowest resolution up for G and from the image down for D (``model.options``):

| size | blocks | default channels_g (4 x 4 first) | default channels_d (image first) |
|---|---|---|---|
| 32 | 3 | [4, 4, 4] | [2, 2, 2, 2] (32 -> 16 -> 8, 8, 8) |
| 64 | 4 | [8, 4, 2, 1] | [1, 2, 4, 8, 16] (64 -> 32 -> 16 -> 8 -> 4, 4) |
| 128 | 5 | [16, 8, 4, 2, 1] | [1, 2, 4, 8, 16, 16] (128 -> ... -> 4, 4) |

With ch = 64 at 128 px these are SNGAN's ImageNet 128 widths (G 1024 -> 64, D 64 -> 1024).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import GankitError
from ._layers import activation, feature_norm, weight_layer

SIZES = (32, 64, 128)
DEFAULT_G = {32: [4, 4, 4], 64: [8, 4, 2, 1], 128: [16, 8, 4, 2, 1]}
DEFAULT_D = {32: [2, 2, 2, 2], 64: [1, 2, 4, 8, 16], 128: [1, 2, 4, 8, 16, 16]}


@dataclass
class ResNetOptions:
    """``model.options`` of ``resnet``: channel multipliers of ``width_g`` / ``width_d`` per block
    (empty: the defaults of the image size, see the module's table)."""

    channels_g: list[int] = field(default_factory=list)
    channels_d: list[int] = field(default_factory=list)


def _size(image_shape: tuple) -> int:
    size = image_shape[1]
    if image_shape[1] != image_shape[2] or size not in SIZES:
        raise GankitError(f"resnet supports square images of {', '.join(map(str, SIZES))} pixels, got "
                          f"{image_shape[1]}x{image_shape[2]}; set data.image_size to one of them")
    return size


def _blocks(mults: list, default: list, what: str, size: int) -> list:
    mults = list(mults) or default
    if len(mults) != len(default) or not all(isinstance(m, int) and m >= 1 for m in mults):
        raise GankitError(f"model.options.{what} at {size} px needs {len(default)} positive integers (one per "
                          f"block), e.g. {default}; got {mults}")
    return mults


class _GBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, norm: str, act: str):
        super().__init__()
        self.n1, self.n2 = feature_norm(norm, c_in, True), feature_norm(norm, c_out, True)
        self.c1 = weight_layer(nn.Conv2d(c_in, c_out, 3, 1, 1), norm)
        self.c2 = weight_layer(nn.Conv2d(c_out, c_out, 3, 1, 1), norm)
        self.sc = weight_layer(nn.Conv2d(c_in, c_out, 1), norm)
        self.a1, self.a2 = activation(act), activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.a1(self.n1(x)), scale_factor=2, mode="nearest")
        h = self.c2(self.a2(self.n2(self.c1(h))))
        return h + self.sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class _DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, norm: str, act: str, down: bool, first: bool):
        super().__init__()
        self.c1 = weight_layer(nn.Conv2d(c_in, c_out, 3, 1, 1), norm)
        self.c2 = weight_layer(nn.Conv2d(c_out, c_out, 3, 1, 1), norm)
        self.sc = weight_layer(nn.Conv2d(c_in, c_out, 1), norm) if (c_in != c_out or down) else None
        self.a1, self.a2 = activation(act), activation(act)
        self.down, self.first = down, first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else self.a1(x)
        h = self.c2(self.a2(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first and self.down:  # SNGAN's optimised first block: pool, then the 1x1 conv
            s = self.sc(F.avg_pool2d(s, 2))
        else:
            s = self.sc(s) if self.sc is not None else s
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class ResNetGenerator(nn.Module):
    """G(z) -> x. z: (N, z_dim); x: (N, C, H, W) in [-1, 1], H = W in (32, 64, 128)."""

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 64, norm: str = "batch", act: str = "relu",
                 channels_g: list = ()):
        super().__init__()
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        size = _size(self.image_shape)
        mults = _blocks(channels_g, DEFAULT_G[size], "channels_g", size)
        widths = [width * m for m in mults]
        self.c0 = widths[0]
        self.project = weight_layer(nn.Linear(z_dim, widths[0] * 16), norm)
        outs = widths[1:] + [widths[-1]]
        self.blocks = nn.Sequential(*[_GBlock(a, b, norm, act) for a, b in zip(widths, outs)])
        self.out = nn.Sequential(feature_norm(norm, outs[-1], True), activation(act),
                                 weight_layer(nn.Conv2d(outs[-1], image_shape[0], 3, 1, 1), norm), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        h = self.project(z).view(z.shape[0], self.c0, 4, 4)
        return self.out(self.blocks(h))


class ResNetDiscriminator(nn.Module):
    """D(x) -> logits (N,); ``features`` gives (N, feature_dim): ReLU then a sum over space (SNGAN)."""

    def __init__(self, image_shape: tuple, width: int = 64, norm: str = "spectral", act: str = "relu",
                 channels_d: list = ()):
        super().__init__()
        self.image_shape = tuple(image_shape)
        size = _size(self.image_shape)
        mults = _blocks(channels_d, DEFAULT_D[size], "channels_d", size)
        widths = [width * m for m in mults]
        n_down = {32: 2, 64: 4, 128: 5}[size]  # halvings; the remaining blocks keep the size
        blocks, c = [], image_shape[0]
        for i, w in enumerate(widths):
            blocks.append(_DBlock(c, w, norm, act, down=i < n_down, first=i == 0))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.act = activation(act)
        self.feature_dim = c
        self.head = weight_layer(nn.Linear(c, 1), norm)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.image_shape, f"x must be (N, {self.image_shape}), got {tuple(x.shape)}"
        return self.act(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
