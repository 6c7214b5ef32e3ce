"""Conditional GANs as wrappers around the base networks (Mirza & Osindero 2014).

The wrappers hold an unconditional G or D built by `build_networks` and add only
what a label needs; the base network is reused unchanged, never copied.

Notation: K classes, y (N,) int64 labels in [0, K), e(y) a learned label embedding.

| wrapper | computes | reference |
|---|---|---|
| ConditionalGenerator | G(z, y) = G0([z, e(y)]) | Mirza & Osindero 2014 |
| ConcatDiscriminator | D(x, y) = D0([x, onehot(y) as K constant maps]) | Mirza & Osindero 2014 |
| ProjectionDiscriminator | psi(phi(x)) + <e(y), phi(x)>; phi = D0.features, psi = D0.head | Miyato & Koyama 2018 |
| ClassifierDiscriminator | psi(phi(x)); class logits W phi(x) (labels only via the class loss) | Odena et al. 2017 |

Every conditional D has ``forward(x, y) -> logits (N,)`` and ``outputs(x, y) ->
(logits (N,), class logits (N, K) or None)``; the class head exists when the
config asks for an auxiliary classifier. The networks know nothing of losses.
ClassifierDiscriminator never reads y, so it also serves as InfoGAN's D with a
code head (`gankit.nets.coded`), called without labels.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from ..errors import GankitError
from ._layers import weight_layer
from .protocols import FeatureDiscriminator, Generator, check


def _check_labels(y: torch.Tensor, n: int) -> None:
    assert y.shape == (n,) and not y.is_floating_point(), f"y must be (N={n},) integer labels, got {tuple(y.shape)}"


class ConditionalGenerator(nn.Module):
    """G(z, y) -> x. z: (N, z_dim); y: (N,) in [0, K); x: (N, C, H, W) in [-1, 1].

    ``base`` takes codes of size z_dim + embed_dim: the noise followed by the label embedding.
    """

    def __init__(self, base: nn.Module, n_classes: int, embed_dim: int):
        super().__init__()
        check(base, Generator, "the base of a conditional G")
        assert base.z_dim > embed_dim, "base G must take z_dim + embed_dim inputs"
        self.base, self.n_classes, self.embed_dim = base, n_classes, embed_dim
        self.z_dim = base.z_dim - embed_dim
        self.image_shape = base.image_shape
        self.embed = nn.Embedding(n_classes, embed_dim)

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """G from a noise code z (N, z_dim) and a label embedding e (N, embed_dim), e.g. a mix of two classes."""
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        assert e.shape == (z.shape[0], self.embed_dim), f"e must be (N, {self.embed_dim}), got {tuple(e.shape)}"
        return self.base(torch.cat([z, e], dim=1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_labels(y, z.shape[0])
        return self.from_embedding(z, self.embed(y))


class ConcatDiscriminator(nn.Module):
    """D(x, y) -> logits (N,): the base D sees the image with K one-hot label maps as extra channels."""

    def __init__(self, base: nn.Module, n_classes: int):
        super().__init__()
        self.base, self.n_classes = base, n_classes
        c, h, w = base.image_shape
        self.image_shape = (c - n_classes, h, w)

    def outputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple:
        _check_labels(y, x.shape[0])
        n, _, h, w = x.shape
        # state size: C x H x W -> (C + K) x H x W; the maps are constant 0/1 per sample
        # (one-hot written as a comparison, which torch.func.vmap can batch: the kernel tools need that)
        onehot = (y[:, None] == torch.arange(self.n_classes, device=y.device)).to(x.dtype)
        maps = onehot[:, :, None, None].expand(n, self.n_classes, h, w)
        return self.base(torch.cat([x, maps], dim=1)), None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.outputs(x, y)[0]


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = head(phi(x)) + <embed(y), phi(x)>, phi = base.features: (N, F). Logits (N,).

    With ``aux_classifier`` a linear class head on phi(x) gives class logits (N, K) as well.
    """

    def __init__(self, base: nn.Module, n_classes: int, aux_classifier: bool = False, norm: str = "none"):
        super().__init__()
        check(base, FeatureDiscriminator, "the base of a projection D")
        self.base, self.n_classes = base, n_classes
        self.image_shape = base.image_shape
        f = base.feature_dim
        embed = nn.Embedding(n_classes, f)
        # the same scale as a fresh linear head, so the projection term does not swamp it at the start
        nn.init.uniform_(embed.weight, -1 / math.sqrt(f), 1 / math.sqrt(f))
        self.embed = weight_layer(embed, norm)
        self.classes: Optional[nn.Module] = weight_layer(nn.Linear(f, n_classes), norm) if aux_classifier else None

    def outputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple:
        _check_labels(y, x.shape[0])
        phi = self.base.features(x)
        logits = self.base.head(phi).squeeze(1) + (self.embed(y) * phi).sum(1)
        return logits, (self.classes(phi) if self.classes is not None else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.outputs(x, y)[0]


class ClassifierDiscriminator(nn.Module):
    """AC-GAN's D: unconditional logits head(phi(x)) (N,) and class logits (N, K) from phi = base.features.

    The logits do not depend on y, which may be omitted (InfoGAN's code head); given, it is checked.
    """

    def __init__(self, base: nn.Module, n_classes: int, norm: str = "none"):
        super().__init__()
        check(base, FeatureDiscriminator, "the base of a D with a class or code head")
        self.base, self.n_classes = base, n_classes
        self.image_shape = base.image_shape
        self.classes = weight_layer(nn.Linear(base.feature_dim, n_classes), norm)

    def outputs(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> tuple:
        if y is not None:
            _check_labels(y, x.shape[0])
        phi = self.base.features(x)
        return self.base.head(phi).squeeze(1), self.classes(phi)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.outputs(x, y)[0]


def build_conditional(build, conditional: str, n_classes: int, embed_dim: int, aux_classifier: bool,
                      z_dim: int, image_shape: tuple, norm_d: str):
    """(G, D) conditional wrappers; ``build(z_dim, image_shape)`` makes the base (G, D) pair.

    The base G takes z_dim + embed_dim inputs; a concat D's base takes C + K channels. Both bases
    are built by the same call, so they share every other option of the unconditional model.
    """
    if n_classes < 2:
        raise GankitError(f"a conditional model needs at least 2 classes, got {n_classes}; set model.n_classes "
                          f"or use labelled data")
    c, h, w = image_shape
    G0, D0 = build(z_dim + embed_dim, (c, h, w))
    G = ConditionalGenerator(G0, n_classes, embed_dim)
    if conditional == "concat":
        _, D0 = build(z_dim + embed_dim, (c + n_classes, h, w))
        return G, ConcatDiscriminator(D0, n_classes)
    if conditional == "projection":
        return G, ProjectionDiscriminator(D0, n_classes, aux_classifier, norm_d)
    if conditional == "ac":
        return G, ClassifierDiscriminator(D0, n_classes, norm_d)
    raise GankitError(f"unknown conditioning {conditional!r}; choose concat, projection or ac")


def n_classes_of(G: nn.Module) -> int:
    """K for a conditional generator, 0 for an unconditional one."""
    return int(getattr(G, "n_classes", 0))


def cycle_labels(n_classes: int, n: int, device=None) -> Optional[torch.Tensor]:
    """Labels 0, 1, ..., K-1, 0, 1, ... (n,): every class equally often; None for K = 0 (unconditional)."""
    return torch.arange(n, device=device) % n_classes if n_classes else None
