"""Layer choices shared by every network: normalisation and activation by name."""
from __future__ import annotations

import torch.nn as nn

from ..errors import GankitError, did_you_mean

NORMS = ("batch", "layer", "instance", "spectral", "none")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")


def activation(name: str) -> nn.Module:
    table = {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(0.2),
             "tanh": lambda: nn.Tanh(), "elu": lambda: nn.ELU()}
    if name not in table:
        raise GankitError(f"unknown activation {name!r}{did_you_mean(name, table)}; choose one of {', '.join(ACTIVATIONS)}")
    return table[name]()


def check_norm(name: str) -> str:
    if name not in NORMS:
        raise GankitError(f"unknown normalisation {name!r}{did_you_mean(name, NORMS)}; choose one of {', '.join(NORMS)}")
    return name


def feature_norm(name: str, channels: int, conv: bool) -> nn.Module:
    """A normalisation layer after a linear/conv layer (identity for 'spectral' and 'none')."""
    check_norm(name)
    if name == "batch":
        return nn.BatchNorm2d(channels) if conv else nn.BatchNorm1d(channels)
    if name == "layer":
        # GroupNorm with one group normalises over (C, H, W) per sample: layer norm for feature maps.
        return nn.GroupNorm(1, channels) if conv else nn.LayerNorm(channels)
    if name == "instance":  # per image and channel, no affine parameters, no running statistics (CycleGAN);
        # a feature vector has no spatial extent, so there it normalises each sample over its features
        return nn.InstanceNorm2d(channels) if conv else nn.LayerNorm(channels, elementwise_affine=False)
    return nn.Identity()


def weight_layer(layer: nn.Module, norm: str) -> nn.Module:
    """Wrap a linear/conv layer with spectral normalisation when ``norm == 'spectral'``."""
    return nn.utils.parametrizations.spectral_norm(layer) if norm == "spectral" else layer


def block(layer: nn.Module, norm: str, act: str, out_channels: int, conv: bool) -> list[nn.Module]:
    """[layer (maybe spectral), norm, activation]; a layer followed by a norm needs no bias."""
    return [weight_layer(layer, norm), feature_norm(norm, out_channels, conv), activation(act)]
