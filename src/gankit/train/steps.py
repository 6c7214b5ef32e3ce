"""The two update steps of alternating GAN training.

    D ascends  J = mean f1(D(x_real)) + mean f2(D(G(z)))   (- weight * penalty)
    G ascends  I = mean f3(D(G(z)))

Both are written as descent on ``loss_d = -J`` and ``loss_g = -I``. The steps
know the `Objective` only through ``loss_d``/``loss_g``: they never ask which
objective, network or penalty they run. Statistics are returned as detached
tensors and turned into numbers by the caller only on logged steps, so a step
never waits for the device.

Mixed precision (see `precision`): network passes run inside ``ctx.autocast()``;
D's logits are cast to fp32 before the objective and penalties run outside
autocast on the eager D, so losses, penalties and their gradients stay fp32.
With fp16, ``scaler_d``/``scaler_g`` scale the losses. In fp32 every cast is a no-op.

Conditional runs pass a label batch: D scores (x_real, y_real) and (x_fake, y_fake),
with y_fake drawn by ``ctx.sample_labels`` from the training noise generator. When
D also returns class logits (AC-GAN), D descends ``ac_weight * CE(classes(x_real),
y_real)`` and G ``ac_weight * CE(classes(G(z, y_fake)), y_fake)``; D's class loss
uses real images only, so D is never rewarded for reading a fake's requested label.

Coded runs (``ctx.code_of`` set, see `gankit.nets.coded`) read each fake's code c(z)
from its z. InfoGAN codes: D's code head Q and G both descend ``info_weight *
CE(Q(G(z)), c(z))``. Cluster codes: D scores (x_real, its cluster) and (G(z), c(z)).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from typing import Callable, ContextManager, Optional

import torch
import torch.nn.functional as F

from ..objectives import Objective
from ..penalties import clip_weights
from .precision import uncompiled


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
    autocast: Callable[[], ContextManager] = contextlib.nullcontext  # wraps network passes (mixed precision)
    scaler_d: Optional[torch.amp.GradScaler] = None  # fp16 loss scaling, else None
    scaler_g: Optional[torch.amp.GradScaler] = None
    sample_labels: Optional[Callable] = None  # conditional runs: fn(n, device, generator) -> y (n,); else None
    ac_weight: float = 0.0            # weight of the auxiliary class loss (used when D returns class logits)
    g_topk: float = 1.0               # G learns from this fraction of its fakes: those D rates most real
    code_of: Optional[Callable] = None  # coded runs: fn(z) -> c(z) (N,); else None
    info_weight: float = 0.0          # InfoGAN codes: weight of the code loss
    codes_as_labels: bool = False     # cluster codes: D is told each real image's cluster and each fake's code

    @property
    def labelled(self) -> bool:
        """Whether D takes labels (conditional or cluster-coded runs), so real batches come with theirs."""
        return self.sample_labels is not None or self.codes_as_labels


def sample_z(n: int, z_dim: int, device, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I), shape (n, z_dim)."""
    return torch.randn(n, z_dim, device=device, generator=generator)


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def discriminate(D: torch.nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], heads: bool = False) -> tuple:
    """(logits (N,), class or code logits (N, K) or None).

    An unconditional D (y None) is called as D(x), or with ``heads`` through ``D.outputs(x)`` for its code head.
    """
    if y is not None:
        return D.outputs(x, y)
    return D.outputs(x) if heads else (D(x), None)


def d_step(ctx: StepContext, x_real: torch.Tensor, x_fake: torch.Tensor, d_step_index: int,
           measure: bool, y_real: Optional[torch.Tensor] = None, y_fake: Optional[torch.Tensor] = None,
           codes: Optional[torch.Tensor] = None) -> dict:
    """One D update on a real batch and a (detached) fake batch, with their labels in conditional runs
    and the fakes' codes in coded runs."""
    x_fake = x_fake.detach()
    with ctx.autocast():
        (d_real, c_real) = discriminate(ctx.D, x_real, y_real)
        (d_fake, q_fake) = discriminate(ctx.D, x_fake, y_fake, heads=codes is not None)
    d_real, d_fake = d_real.float(), d_fake.float()
    loss_d = ctx.objective.loss_d(d_real, d_fake)
    loss = loss_d
    stats = {}
    if c_real is not None:
        loss_ac = F.cross_entropy(c_real.float(), y_real)
        loss = loss + ctx.ac_weight * loss_ac
        stats["loss/ac_d"] = loss_ac.detach()
    if codes is not None:
        loss_info = F.cross_entropy(q_fake.float(), codes)
        loss = loss + ctx.info_weight * loss_info
        stats["loss/info_d"] = loss_info.detach()
    if ctx.penalty is not None and ctx.penalty_weight > 0 and d_step_index % ctx.penalty_every == 0:
        # fp32 and eager: double backward does not run through compiled graphs.
        # Conditional: the penalty differentiates D(., y_real) (gp scores its interpolates with y_real).
        critic = uncompiled(ctx.D) if y_real is None else partial(uncompiled(ctx.D), y=y_real)
        pen = ctx.penalty(critic, x_real.float(), x_fake.float(), ctx.noise).mean()
        # Lazy regularisation: scale by the interval so the average strength stays the same.
        loss = loss + ctx.penalty_weight * ctx.penalty_every * pen
        stats["loss/penalty"] = pen.detach()
    _backward(loss, ctx.opt_d, ctx.scaler_d)
    if measure:
        stats["grad_norm/d"] = grad_norm(ctx.D)
    _step(ctx.opt_d, ctx.scaler_d)
    if ctx.clip > 0:
        clip_weights(ctx.D, ctx.clip)
    if measure:
        to_out = ctx.objective.to_output
        stats.update({"loss/d": loss_d.detach(), "d/real": to_out(d_real.detach()).float().mean(),
                      "d/fake": to_out(d_fake.detach()).float().mean()})
    return stats


def g_step(ctx: StepContext, x_fake: torch.Tensor, measure: bool, y_fake: Optional[torch.Tensor] = None,
           codes: Optional[torch.Tensor] = None) -> dict:
    """One G update through D (whose weights are not updated here)."""
    ctx.D.requires_grad_(False)
    try:
        with ctx.autocast():
            d_fake, c_fake = discriminate(ctx.D, x_fake, y_fake, heads=codes is not None)
        d_fake = d_fake.float()
        if ctx.g_topk < 1.0:  # top-k training (Sinha et al. 2020): no gradient from the fakes D rejects most
            d_fake = d_fake.topk(max(1, round(ctx.g_topk * d_fake.shape[0]))).values
        loss_g = ctx.objective.loss_g(d_fake)
        loss = loss_g
        head_loss = None
        if y_fake is not None and c_fake is not None:
            head_loss = F.cross_entropy(c_fake.float(), y_fake)
            loss = loss + ctx.ac_weight * head_loss
        elif codes is not None:
            head_loss = F.cross_entropy(c_fake.float(), codes)
            loss = loss + ctx.info_weight * head_loss
        _backward(loss, ctx.opt_g, ctx.scaler_g)
    finally:
        ctx.D.requires_grad_(True)
    stats = {"loss/g": loss_g.detach(), "grad_norm/g": grad_norm(ctx.G)} if measure else {}
    if measure and head_loss is not None:
        stats["loss/ac_g" if codes is None else "loss/info_g"] = head_loss.detach()
    _step(ctx.opt_g, ctx.scaler_g)
    return stats


def _backward(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler]) -> None:
    """Gradients of ``loss`` into the parameters of ``opt``, unscaled (fp16) so they can be measured."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(opt)


def _step(opt: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler]) -> None:
    """One optimiser step; with fp16, skipped on Inf/NaN gradients and the loss scale adapted."""
    if scaler is None:
        opt.step()
        return
    scaler.step(opt)
    scaler.update()


def train_iteration(ctx: StepContext, real_batches: list, d_steps_done: int, measure: bool,
                    real_labels: Optional[list] = None) -> dict:
    """n_critic D steps (one real batch each), then one G step.

    The fake batch of the last D step is generated with G's graph kept and reused by
    the G step, which saves one G forward pass per iteration. Conditional runs
    (``ctx.sample_labels`` set) need ``real_labels``, one (N,) batch per real batch;
    each fake batch's labels are drawn right after its z, from the same generator.
    """
    stats: dict = {}
    device = real_batches[0].device
    if ctx.labelled != (real_labels is not None):
        raise ValueError("a conditional or cluster-coded run needs real_labels; any other run takes none")
    y_real = y_fake = info_codes = None
    for i, x_real in enumerate(real_batches):
        z = sample_z(x_real.shape[0], ctx.z_dim, device, ctx.noise)
        codes = ctx.code_of(z) if ctx.code_of is not None else None
        if real_labels is not None:
            y_real = real_labels[i]
            y_fake = codes if ctx.codes_as_labels else ctx.sample_labels(x_real.shape[0], device, ctx.noise)
        elif codes is not None:
            info_codes = codes
        last = i == len(real_batches) - 1
        with torch.set_grad_enabled(last), ctx.autocast():
            x_fake = ctx.G(z) if ctx.sample_labels is None else ctx.G(z, y_fake)
        stats.update(d_step(ctx, x_real, x_fake, d_steps_done + i, measure and last, y_real, y_fake, info_codes))
    stats.update(g_step(ctx, x_fake, measure, y_fake, info_codes))
    return stats
