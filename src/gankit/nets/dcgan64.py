"""DCGAN at 64 x 64 exactly as PyTorch's DCGAN example builds it for CelebA (pytorch/examples, dcgan).

G: z (nz) -> ConvT(nz, 8w, 4, 1, 0) -> 4x4 -> ConvT stride 2 to 8x8 (4w), 16x16 (2w), 32x32 (w) -> ConvT(w, C)
to 64x64, tanh; batch norm and ReLU after every layer but the last. D: Conv(C, w, 4, 2, 1) + LeakyReLU(0.2),
then three Conv(4, 2, 1) + batch norm + LeakyReLU(0.2) to 8w x 4 x 4, then Conv(8w, 1, 4, 1, 0): one logit
(the example's sigmoid lives in gankit's objective). No layer has a bias. Weights are drawn from N(0, 0.02),
batch-norm scales from N(1, 0.02) with zero shifts (the example's ``weights_init``). The rest of the recipe
(Adam 2e-4, betas 0.5/0.999, batch 128, the BCE loss, nz = ngf = ndf = 64 x ...) is preset
``folder-dcgan64``. ``model.norm_g`` / ``model.norm_d`` may swap batch norm for another normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import GankitError
from ._layers import activation, feature_norm, weight_layer


@dataclass
class DCGAN64Options:
    """``model.options`` of ``dcgan64``: the standard deviation of the initial weights (the example: 0.02)."""

    init_std: float = 0.02


def _check(image_shape: tuple) -> None:
    if tuple(image_shape[1:]) != (64, 64):
        raise GankitError(f"dcgan64 is for 64x64 images, got {image_shape[1]}x{image_shape[2]}; set "
                          f"data.image_size=64, or use model.arch=dcgan (28, 32, 64) or resnet (32, 64, 128)")


def init_weights(module: nn.Module, std: float) -> None:
    """The example's ``weights_init``: conv and linear weights N(0, std), batch-norm weights N(1, std) and biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class DCGAN64Generator(nn.Module):
    """G(z) -> x. z: (N, z_dim); x: (N, C, 64, 64) in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 64, norm: str = "batch", act: str = "relu",
                 init_std: float = 0.02):
        super().__init__()
        _check(image_shape)
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        layers, c_in = [], z_dim
        for i, mult in enumerate((8, 4, 2, 1)):  # 4x4, 8x8, 16x16, 32x32
            c = width * mult
            conv = nn.ConvTranspose2d(c_in, c, 4, 1, 0, bias=False) if i == 0 else nn.ConvTranspose2d(c_in, c, 4, 2, 1, bias=False)
            layers += [weight_layer(conv, norm), feature_norm(norm, c, True), activation(act)]
            c_in = c
        layers += [weight_layer(nn.ConvTranspose2d(c_in, image_shape[0], 4, 2, 1, bias=False), norm), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_weights(self, init_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        return self.net(z[:, :, None, None])


class DCGAN64Discriminator(nn.Module):
    """D(x) -> logits (N,); ``features`` gives (N, 8 * width * 16), the last feature map flattened."""

    def __init__(self, image_shape: tuple, width: int = 64, norm: str = "batch", act: str = "leaky_relu",
                 init_std: float = 0.02):
        super().__init__()
        _check(image_shape)
        self.image_shape = tuple(image_shape)
        first = "spectral" if norm == "spectral" else "none"  # the first layer is never batch-normalised
        layers = [weight_layer(nn.Conv2d(image_shape[0], width, 4, 2, 1, bias=False), first), activation(act)]
        c = width
        for _ in range(3):  # 32 -> 16 -> 8 -> 4
            layers += [weight_layer(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), norm), feature_norm(norm, 2 * c, True),
                       activation(act)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = c * 16
        # the example's last Conv(8w, 1, 4, 1, 0) on the 4x4 map is this linear layer on its flattened features
        self.head = weight_layer(nn.Linear(self.feature_dim, 1, bias=False), norm)
        init_weights(self, init_std)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        assert tuple(x.shape[1:]) == self.image_shape, f"x must be (N, {self.image_shape}), got {tuple(x.shape)}"
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
