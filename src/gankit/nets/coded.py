"""A categorical latent code for unconditional GANs: InfoGAN codes or data clusters.

A data set made of separate classes (ten digits) lies on separate pieces, but a
generator is a continuous map of z ~ N(0, I): somewhere between two pieces it must
draw images that are half one digit, half another. A discrete code lets G jump.

Notation: K codes with prior probabilities p_1..p_K, P_k = p_1 + ... + p_k, Phi the
standard normal CDF, z = (z_0, z_1, ..., z_{d-1}).

    c(z)  = the k with P_{k-1} <= Phi(z_0) < P_k    so c(z) ~ p, since Phi(z_0) ~ U(0, 1)
    G(z)  = G0([z_1, ..., z_{d-1}, onehot(c(z))])

What makes G use the code (``model.code_kind``):

- ``info`` (InfoGAN, Chen et al. 2016): p uniform; D gets a head Q(x) = W phi(x)
  (K code logits, phi = D0.features; D(x) = D0(x) unchanged), and G and D both descend
  L_I = CE(Q(G(z)), c(z)), InfoGAN's lambda * L_I. G is free to split the data any way
  Q can read back, including by style.
- ``clusters`` (self-conditioning, after Liu et al. 2020): before training, the training
  images are split into K k-means clusters (`gankit.data.clusters`; no labels used), p is
  the clusters' share of the data, and D is a projection discriminator (Miyato & Koyama
  2018) told each real image's cluster and each fake's code: G must draw, for code k,
  images that look like cluster k.

The latent stays z ~ N(0, I) everywhere (sampling, grids, latent tools, manifests),
so a coded run draws exactly the same random numbers as an uncoded one, and G(z)
needs no label from outside: the code is read from z, never drawn.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conditional import ClassifierDiscriminator, ProjectionDiscriminator
from .protocols import Generator, check


def codes_from_z(z: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """c(z) (N,) int64 in [0, K) from the first coordinate of z (N, d); ``probs`` (K,) is the code prior.

    Computed in float64, so a code does not depend on the device; MPS has no float64 and uses the CPU.
    """
    if z.device.type == "mps":
        return codes_from_z(z[:, :1].cpu(), probs.cpu()).to(z.device)
    u = 0.5 * (1.0 + torch.erf(z[:, 0].double() / math.sqrt(2.0)))
    edges = probs.to(device=z.device, dtype=torch.float64).cumsum(0)[:-1]
    return torch.searchsorted(edges, u, right=True)


class CodedGenerator(nn.Module):
    """G(z) -> x with a K-way code read from z_0. z: (N, z_dim); x: (N, C, H, W) in [-1, 1].

    ``base`` takes z_dim - 1 + K inputs: z without its first coordinate, then the code's one-hot.
    The code prior is the buffer ``code_probs`` (K,), uniform until set (it is saved with the weights).
    """

    def __init__(self, base: nn.Module, n_codes: int):
        super().__init__()
        check(base, Generator, "the base of a coded G")
        assert base.z_dim > n_codes, "base G must take z_dim - 1 + n_codes inputs"
        self.base, self.n_codes = base, n_codes
        self.z_dim = base.z_dim - n_codes + 1
        self.image_shape = base.image_shape
        self.register_buffer("code_probs", torch.full((n_codes,), 1.0 / n_codes))

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """c(z) (N,) for codes z (N, z_dim)."""
        return codes_from_z(z, self.code_probs)

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        """``kwargs`` go to the base G (a growing G's ``native=True``)."""
        assert z.dim() == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        onehot = F.one_hot(self.codes(z), self.n_codes).to(z.dtype)
        return self.base(torch.cat([z[:, 1:], onehot], dim=1), **kwargs)


def build_coded(build, kind: str, n_codes: int, z_dim: int, image_shape: tuple, norm_d: str) -> tuple:
    """(CodedGenerator, D) around the base pair ``build(z_dim - 1 + K, image_shape)``.

    D is AC-GAN's `ClassifierDiscriminator` (its class head is the code head Q, called without labels) for
    ``info`` codes and a `ProjectionDiscriminator` for ``clusters``.
    """
    G0, D0 = build(z_dim - 1 + n_codes, image_shape)
    D = ClassifierDiscriminator(D0, n_codes, norm_d) if kind == "info" else ProjectionDiscriminator(
        D0, n_codes, norm=norm_d)
    return CodedGenerator(G0, n_codes), D


def code_function(G: nn.Module) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """z -> c(z) for a coded generator (with its code prior as it is when called), None for any other."""
    return G.codes if isinstance(G, CodedGenerator) else None
