"""Lipschitz constraints and gradient regularisers for the discriminator.

Each penalty is a pure function returning one value per sample; the caller
chooses the weight (and how often to apply it). Notation: ``D`` maps a batch of
images (N, C, H, W) to logits (N,).

| name | value per sample | reference |
|---|---|---|
| gradient_penalty | (||grad_x D(x_hat)|| - 1)^2, x_hat on lines real->fake | Gulrajani et al. 2017 |
| r1 | ||grad_x D(x_real)||^2 | Mescheder et al. 2018 |
| r2 | ||grad_x D(x_fake)||^2 | Mescheder et al. 2018 |

Weight clipping (Arjovsky et al. 2017) is a projection of D's parameters, not a
per-sample value: `clip_weights` applies it in place after each D step.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .errors import GankitError, did_you_mean

Critic = Callable[[torch.Tensor], torch.Tensor]


def _input_grad_norm_sq(D: Critic, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def gradient_penalty(D: Critic, x_real: torch.Tensor, x_fake: torch.Tensor,
                     generator: Optional[torch.Generator] = None, part: tuple = (0, 1)) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - 1)^2 per sample, x_hat = eps*x_real + (1-eps)*x_fake. Shape (N,).

    ``part`` = (rank, world): the batch is rank's slice of a global batch ``world`` times larger; eps is drawn
    for the global batch and the slice kept, so the random stream does not depend on the process count."""
    rank, world = part
    n = x_real.shape[0]
    eps_shape = (n * world,) + (1,) * (x_real.dim() - 1)
    eps = torch.rand(eps_shape, device=x_real.device, dtype=x_real.dtype, generator=generator)
    eps = eps[rank * n:(rank + 1) * n]
    x_hat = eps * x_real.detach() + (1 - eps) * x_fake.detach()
    # The 1e-12 keeps the gradient of the norm finite where grad D is exactly zero.
    return ((_input_grad_norm_sq(D, x_hat) + 1e-12).sqrt() - 1).pow(2)


def r1(D: Critic, x_real: torch.Tensor) -> torch.Tensor:
    """R1: ||grad_x D(x)||^2 on real samples. Shape (N,). Usual weight gamma/2."""
    return _input_grad_norm_sq(D, x_real)


def r2(D: Critic, x_fake: torch.Tensor) -> torch.Tensor:
    """R2: ||grad_x D(x)||^2 on generated samples. Shape (N,). Usual weight gamma/2."""
    return _input_grad_norm_sq(D, x_fake)


@torch.no_grad()
def clip_weights(module: torch.nn.Module, c: float) -> None:
    """Clamp every parameter of ``module`` to [-c, c] in place (WGAN weight clipping)."""
    for p in module.parameters():
        p.clamp_(-c, c)


PENALTIES = ("none", "gp", "r1", "r2")


def penalty_fn(name: str):
    """Resolve a penalty name once, to ``fn(D, x_real, x_fake, generator, part=(0, 1)) -> (N,)`` or None
    (``part``: see `gradient_penalty`)."""
    table = {
        "none": None,
        "gp": lambda D, xr, xf, g, part=(0, 1): gradient_penalty(D, xr, xf, generator=g, part=part),
        "r1": lambda D, xr, xf, g, part=(0, 1): r1(D, xr),
        "r2": lambda D, xr, xf, g, part=(0, 1): r2(D, xf),
    }
    if name not in table:
        raise GankitError(f"unknown penalty {name!r}{did_you_mean(name, table)}; choose one of {', '.join(PENALTIES)}")
    return table[name]
