"""Exponential moving average of a network's weights (buffers are copied)."""
from __future__ import annotations

import copy

import torch


class EMA:
    """``avg <- avg + (1 - decay_t) * (param - avg)`` with a short warm-up: decay_t = min(decay, (1+n)/(10+n))."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        avg = list(self.module.parameters())
        torch._foreach_lerp_(avg, list(module.parameters()), 1.0 - decay)
        for b_avg, b in zip(self.module.buffers(), module.buffers()):
            b_avg.copy_(b)
