"""Image-to-image networks (CycleGAN, Zhu et al. 2017): a ResNet translator and a PatchGAN discriminator.

The translator maps images to images of the same shape, ``G(x) -> y`` with x, y (N, C, H, W) in [-1, 1]:

    reflect pad 3, 7x7 conv (width), norm, act
    ``downsamples`` x [3x3 conv stride 2 (channels x2), norm, act]
    ``blocks`` x residual [reflect pad 1, 3x3 conv, norm, act, reflect pad 1, 3x3 conv, norm] + skip
    ``downsamples`` x [3x3 transposed conv stride 2 (channels /2), norm, act]
    reflect pad 3, 7x7 conv (C), tanh

The reference uses 2 downsamples, 9 blocks at 256 px and 6 at 128 px or less; at 28 px one downsample and
fewer blocks keep a digit's identity better (a smaller translator has less room to swap content).

The PatchGAN discriminator scores overlapping patches: ``layers`` 4x4 convs at stride 2 (width, 2 width,
4 width, ...; no norm on the first), one 4x4 conv at stride 1, and a 4x4 conv to one channel. Its output is a
map of logits (N, 1, h, w); objectives average over every patch. ``layers`` = 0 fits the depth to the image
size: the largest depth (3 at most, the reference's 70x70 patches) that leaves a map of at least 6x6 before
the last two convs, so 28x28 digits get 2 and 256x256 photos 3.

Weights start from N(0, 0.02) as in the reference. Neither network knows of losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import GankitError
from ._layers import activation, feature_norm, weight_layer


@dataclass
class TranslatorOptions:
    blocks: int = 6                   # residual blocks of the translator (reference: 9 at 256 px, 6 below)
    downsamples: int = 2              # stride-2 convs before the blocks (and upsamplings after them)
    layers: int = 0                   # PatchGAN: stride-2 convs (0: fit to the image size, at most 3)


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Residual(nn.Module):
    def __init__(self, c: int, norm: str, act: str):
        super().__init__()
        bias = norm in ("none", "spectral")
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), weight_layer(nn.Conv2d(c, c, 3, bias=bias), norm), feature_norm(norm, c, True),
            activation(act),
            nn.ReflectionPad2d(1), weight_layer(nn.Conv2d(c, c, 3, bias=bias), norm), feature_norm(norm, c, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """G(x) -> y of the same shape; ``image_shape`` (C, H, W) with H, W divisible by 2 ** downsamples."""

    translates = True                 # an image-to-image network, not G(z): modes and tools check this

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 64, norm: str = "instance", act: str = "relu",
                 blocks: int = 6, downsamples: int = 2):
        super().__init__()
        self.z_dim, self.image_shape = 0, tuple(image_shape)  # z_dim: unused (the input is an image)
        c_img, h, w = self.image_shape
        if blocks < 0 or downsamples < 0:
            raise GankitError(f"model.options.blocks and downsamples must not be negative, got {blocks}, {downsamples}")
        if h % 2 ** downsamples or w % 2 ** downsamples or min(h, w) // 2 ** downsamples < 2:
            raise GankitError(f"images of {h}x{w} cannot be downsampled {downsamples} times by 2 (each side must "
                              f"stay divisible and at least 2 pixels); lower model.options.downsamples or resize "
                              f"with data.image_size")
        bias = norm in ("none", "spectral")
        layers = [nn.ReflectionPad2d(3), weight_layer(nn.Conv2d(c_img, width, 7, bias=bias), norm),
                  feature_norm(norm, width, True), activation(act)]
        c = width
        for _ in range(downsamples):
            # state size: c x s x s -> 2c x s/2 x s/2
            layers += [weight_layer(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm), feature_norm(norm, 2 * c, True),
                       activation(act)]
            c *= 2
        layers += [_Residual(c, norm, act) for _ in range(blocks)]
        for _ in range(downsamples):
            # state size: c x s x s -> c/2 x 2s x 2s
            layers += [weight_layer(nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias), norm),
                       feature_norm(norm, c // 2, True), activation(act)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, c_img, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise GankitError(f"this translator takes images of shape {self.image_shape}, got {tuple(x.shape[1:])}")
        return self.net(x)


def patch_layers(size: int, layers: int = 0) -> int:
    """Stride-2 convs of a PatchGAN for images of side ``size`` (``layers`` > 0 is taken as given)."""
    if layers:
        if size // 2 ** layers < 3:
            raise GankitError(f"model.options.layers={layers} leaves no patch of a {size}-pixel image; use at most "
                              f"{max(1, patch_layers(size))} (or 0 to fit the image size)")
        return layers
    n = 1
    while n < 3 and size // 2 ** (n + 1) >= 6:
        n += 1
    return n


class PatchDiscriminator(nn.Module):
    """D(x) -> a map of patch logits (N, 1, h, w)."""

    def __init__(self, image_shape: tuple, width: int = 64, norm: str = "instance", act: str = "leaky_relu",
                 layers: int = 0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c_img, h, w = self.image_shape
        n = patch_layers(min(h, w), layers)
        bias = norm in ("none", "spectral")
        seq = [weight_layer(nn.Conv2d(c_img, width, 4, 2, 1), norm), activation(act)]
        c = width
        for _ in range(n - 1):
            # state size: c x s x s -> 2c x s/2 x s/2
            out = min(2 * c, 8 * width)
            seq += [weight_layer(nn.Conv2d(c, out, 4, 2, 1, bias=bias), norm), feature_norm(norm, out, True),
                    activation(act)]
            c = out
        out = min(2 * c, 8 * width)
        seq += [weight_layer(nn.Conv2d(c, out, 4, 1, 1, bias=bias), norm), feature_norm(norm, out, True),
                activation(act), weight_layer(nn.Conv2d(out, 1, 4, 1, 1), norm)]
        self.features = nn.Sequential(*seq[:-1])
        self.head = seq[-1]
        self.feature_dim = out
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
