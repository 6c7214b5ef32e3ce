"""Running a mode's phases: sum the due terms, backpropagate, step the optimisers of the updated parts.

    loss = sum over due terms t of  weight_t * term_t(inputs)

Statistics are returned as detached tensors and turned into numbers by the caller only on logged steps, so a
step never waits for the device. With fp16 one `GradScaler` per phase scales the loss; gradients are unscaled
before they are measured and the optimiser step is skipped on Inf/NaN gradients.
"""
from __future__ import annotations

from typing import Optional

import torch

from .parts import Parts, grad_norm


class Stepper:
    """Runs phases over ``parts``; ``scalers`` maps a phase name to its GradScaler (fp16) or None."""

    def __init__(self, parts: Parts, phases: list, scalers: dict):
        self.parts, self.phases, self.scalers = parts, phases, scalers

    def iteration(self, batch, index: int, phase_steps: dict, measure: bool) -> dict:
        """Every phase due at iteration ``index``, in order; ``phase_steps`` (steps per phase so far) is advanced."""
        scratch, stats = {"batch": batch}, {}
        for phase in self.phases:
            if index % phase.every == 0:
                for r in range(phase.repeats):
                    last = r == phase.repeats - 1
                    stats.update(self.step(phase, scratch, r, phase_steps.get(phase.name, 0), measure and last))
                    phase_steps[phase.name] = phase_steps.get(phase.name, 0) + 1
        return stats

    def step(self, phase, scratch: dict, r: int, count: int, measure: bool) -> dict:
        """One step of ``phase`` (its ``count``-th over the run): terms, backward, optimiser steps."""
        frozen = [self.parts.modules[n] for n in phase.frozen]
        for m in frozen:
            m.requires_grad_(False)
        try:
            inputs = phase.prepare(scratch, r)
            loss, values = None, {}
            for term in phase.terms:
                if count % term.every:
                    continue
                value = term.fn(inputs)
                weighted = value if term.weight == 1 else term.weight * value
                loss = weighted if loss is None else loss + weighted
                values[f"loss/{term.name}"] = value.detach()
            if self.parts.distributed:
                loss = loss + self.parts.zero_term(phase.updates)
            opts = [self.parts.optimizers[n] for n in phase.updates]
            _backward(loss, opts, self.scalers.get(phase.name))
        finally:
            for m in frozen:
                m.requires_grad_(True)
        stats = dict(values)  # each term's latest value in the iteration (a lazy term's too), kept detached
        if measure:
            stats.update({f"grad_norm/{n.lower()}": grad_norm(self.parts.modules[n]) for n in phase.updates})
        _step(opts, self.scalers.get(phase.name))
        if phase.after_step is not None:
            phase.after_step()
        if measure and phase.stats is not None:
            stats.update(phase.stats(inputs))
        return stats


def _backward(loss: torch.Tensor, opts: list, scaler: Optional[torch.amp.GradScaler]) -> None:
    """Gradients of ``loss`` into the parameters of ``opts``, unscaled (fp16) so they can be measured."""
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        return
    scaler.scale(loss).backward()
    for opt in opts:
        scaler.unscale_(opt)


def _step(opts: list, scaler: Optional[torch.amp.GradScaler]) -> None:
    """One step of each optimiser; with fp16, skipped on Inf/NaN gradients and the loss scale adapted."""
    for opt in opts:
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
    if scaler is not None:
        scaler.update()
