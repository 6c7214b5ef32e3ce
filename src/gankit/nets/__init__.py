"""Networks. G(z) -> images in [-1, 1]; D(x) -> logits of shape (N,). No losses here."""
from __future__ import annotations

import contextlib

import torch.nn as nn

from ..errors import GankitError
from ._layers import ACTIVATIONS, NORMS, activation, check_norm
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan64 import DCGAN64Discriminator, DCGAN64Generator, DCGAN64Options
from .mlp import MLPDiscriminator, MLPGenerator, MLPOptions
from .progan import ProDiscriminator, ProganOptions, ProGenerator
from .protocols import Discriminator, FeatureDiscriminator, Generator
from .registry import ARCHITECTURES, architecture, make_options, register_architecture, split_options
from .resnet import ResNetDiscriminator, ResNetGenerator, ResNetOptions
from .translate import PatchDiscriminator, ResnetTranslator, TranslatorOptions

register_architecture("mlp", MLPGenerator, MLPDiscriminator, MLPOptions)
register_architecture("dcgan", DCGANGenerator, DCGANDiscriminator)
register_architecture("dcgan64", DCGAN64Generator, DCGAN64Discriminator, DCGAN64Options)
register_architecture("resnet", ResNetGenerator, ResNetDiscriminator, ResNetOptions)  # SNGAN-style, 32-128 px
register_architecture("progan", ProGenerator, ProDiscriminator, ProganOptions)  # grows from 4x4 (mode progressive)
register_architecture("cyclegan", ResnetTranslator, PatchDiscriminator, TranslatorOptions)  # image to image


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """``module`` in eval mode (batch norm uses its running statistics and updates nothing) for the block,
    then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def build_networks(arch: str, z_dim: int, image_shape: tuple, width_g: int, width_d: int,
                   norm_g: str, norm_d: str, act_g: str, act_d: str, depth_d: int = 0, options=None):
    """Build (G, D) for a registered architecture name; names are resolved here, once.

    ``options``: a mapping of the architecture's options (``model.options``) or its options dataclass.
    """
    G_cls, D_cls, _ = architecture(arch)
    for name in (norm_g, norm_d):
        check_norm(name)
    for name in (act_g, act_d):
        activation(name)
    if depth_d and arch != "dcgan":
        raise GankitError(f"model.depth_d applies to dcgan only, not {arch}; set model.depth_d=0")
    opts = make_options(arch, options or {}) if options is None or isinstance(options, dict) else options
    G = G_cls(z_dim, image_shape, width=width_g, norm=norm_g, act=act_g, **split_options(opts, G_cls))
    D = D_cls(image_shape, width=width_d, norm=norm_d, act=act_d, **({"depth": depth_d} if depth_d else {}),
              **split_options(opts, D_cls))
    return G, D


__all__ = ["ACTIVATIONS", "ARCHITECTURES", "NORMS", "DCGAN64Discriminator", "DCGAN64Generator", "DCGAN64Options",
           "DCGANDiscriminator", "DCGANGenerator", "Discriminator", "ResNetDiscriminator", "ResNetGenerator",
           "ResNetOptions",
           "FeatureDiscriminator", "Generator", "MLPDiscriminator", "MLPGenerator", "MLPOptions", "architecture",
           "build_networks", "eval_mode", "make_options", "register_architecture"]
