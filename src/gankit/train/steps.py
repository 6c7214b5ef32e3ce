"""The two update steps of alternating GAN training.

    D ascends  J = mean f1(D(x_real)) + mean f2(D(G(z)))   (- weight * penalty)
    G ascends  I = mean f3(D(G(z)))

Both are written as descent on ``loss_d = -J`` and ``loss_g = -I``. The steps
know the `Objective` only through ``loss_d``/``loss_g``: they never ask which
objective, network or penalty they run. Statistics are returned as detached
tensors and turned into numbers by the caller only on logged steps, so a step
never waits for the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..objectives import Objective
from ..penalties import clip_weights


@dataclass
class StepContext:
    """Everything a step needs, resolved once from the config."""

    G: torch.nn.Module
    D: torch.nn.Module
    objective: Objective
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    penalty: Optional[Callable]       # fn(D, x_real, x_fake, generator) -> (N,), or None
    penalty_weight: float
    penalty_every: int
    clip: float
    noise: torch.Generator            # all sampling randomness of training
    z_dim: int


def sample_z(n: int, z_dim: int, device, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I), shape (n, z_dim)."""
    return torch.randn(n, z_dim, device=device, generator=generator)


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def d_step(ctx: StepContext, x_real: torch.Tensor, x_fake: torch.Tensor, d_step_index: int,
           measure: bool) -> dict:
    """One D update on a real batch and a (detached) fake batch."""
    x_fake = x_fake.detach()
    d_real, d_fake = ctx.D(x_real), ctx.D(x_fake)
    loss_d = ctx.objective.loss_d(d_real, d_fake)
    loss = loss_d
    stats = {}
    if ctx.penalty is not None and ctx.penalty_weight > 0 and d_step_index % ctx.penalty_every == 0:
        pen = ctx.penalty(ctx.D, x_real, x_fake, ctx.noise).mean()
        # Lazy regularisation: scale by the interval so the average strength stays the same.
        loss = loss + ctx.penalty_weight * ctx.penalty_every * pen
        stats["loss/penalty"] = pen.detach()
    ctx.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    if measure:
        stats["grad_norm/d"] = grad_norm(ctx.D)
    ctx.opt_d.step()
    if ctx.clip > 0:
        clip_weights(ctx.D, ctx.clip)
    if measure:
        to_out = ctx.objective.to_output
        stats.update({"loss/d": loss_d.detach(), "d/real": to_out(d_real.detach()).float().mean(),
                      "d/fake": to_out(d_fake.detach()).float().mean()})
    return stats


def g_step(ctx: StepContext, x_fake: torch.Tensor, measure: bool) -> dict:
    """One G update through D (whose weights are not updated here)."""
    ctx.D.requires_grad_(False)
    try:
        loss_g = ctx.objective.loss_g(ctx.D(x_fake))
        ctx.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
    finally:
        ctx.D.requires_grad_(True)
    stats = {"loss/g": loss_g.detach(), "grad_norm/g": grad_norm(ctx.G)} if measure else {}
    ctx.opt_g.step()
    return stats


def train_iteration(ctx: StepContext, real_batches: list, d_steps_done: int, measure: bool) -> dict:
    """n_critic D steps (one real batch each), then one G step.

    The fake batch of the last D step is generated with G's graph kept and reused by
    the G step, which saves one G forward pass per iteration.
    """
    stats: dict = {}
    device = real_batches[0].device
    for i, x_real in enumerate(real_batches):
        z = sample_z(x_real.shape[0], ctx.z_dim, device, ctx.noise)
        last = i == len(real_batches) - 1
        with torch.set_grad_enabled(last):
            x_fake = ctx.G(z)
        stats.update(d_step(ctx, x_real, x_fake, d_steps_done + i, measure and last))
    stats.update(g_step(ctx, x_fake, measure))
    return stats
