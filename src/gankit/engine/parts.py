"""The trainable state of a run, by part name: networks on the device, optimisers, EMA copies, learning rates.

Nothing here knows which parts a game has: a mode names them (`gankit.modes.Part`) and everything iterates.
Checkpoint layout (safetensors keys and JSON), per part ``P``:

| what | where |
|---|---|
| weights and buffers | tensors ``P.<key>`` |
| EMA copy | tensors ``P_ema.<key>``; meta ``ema_updates[P]`` |
| Adam state | tensors ``opt_<p>.state.<id>.<key>`` (``<p>`` = P lower-cased); meta ``optim[P]`` |
"""
from __future__ import annotations

import math

import torch

from .. import checkpoint as ck
from .ema import EMA


class Parts:
    """Networks, optimisers and EMA copies for ``specs`` ({name: Part}); ``speed`` places and compiles them."""

    def __init__(self, specs: dict, speed, device: torch.device, dist=None):
        self.specs, self.distributed = specs, dist is not None and dist.active
        convert = dist.convert if dist is not None else (lambda m: m)  # dist.sync_bn: global batch norm
        self.modules = {n: speed.prepare(convert(p.module).to(device)) for n, p in specs.items()}
        # The steps may call compiled wrappers, each part in its own DDP wrapper on several processes; checkpoints,
        # EMA and grids use the eager modules (same parameters, unwrapped state dict keys).
        wrap = dist.wrap if dist is not None else (lambda m: m)
        self.step_modules = {n: wrap(speed.for_steps(m)) for n, m in self.modules.items()}
        # foreach kernels update all parameters of a network in a few launches; on CUDA the fused kernel does it
        # in one. CPU keeps foreach: its fused Adam was no faster here and would change fp32 results bit for bit.
        kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
        self.optimizers = {n: torch.optim.Adam(self.modules[n].parameters(), lr=p.lr, betas=tuple(p.betas), **kw)
                           for n, p in specs.items()}
        self.emas = {n: EMA(self.modules[n], p.ema) for n, p in specs.items() if p.ema > 0}

    def sampling(self) -> dict:
        """{name: module} with each part's EMA copy where it has one: what draws images."""
        return {n: self.emas[n].module if n in self.emas else m for n, m in self.modules.items()}

    def update_emas(self, images: int) -> None:
        for n, ema in self.emas.items():
            if images >= self.specs[n].ema_start:
                ema.update(self.modules[n])

    def set_learning_rates(self, scale: float) -> dict:
        """lr = the part's configured lr * ``scale``; returns {'optim/lr_<p>': lr}."""
        out = {}
        for n, opt in self.optimizers.items():
            lr = self.specs[n].lr * scale
            for group in opt.param_groups:
                group["lr"] = lr
            out[f"optim/lr_{n.lower()}"] = lr
        return out

    @torch.no_grad()
    def weight_max(self) -> dict:
        """max |w| over each part's parameters (NaN if any is NaN): one foreach kernel per part."""
        return {f"weight_max/{n.lower()}": torch.stack(torch._foreach_norm(list(m.parameters()), math.inf)).max()
                for n, m in self.modules.items()}

    def zero_term(self, names: tuple) -> torch.Tensor:
        """0 x every parameter of the parts ``names``: added to a loss on several processes so that every
        parameter takes part in each backward pass (DDP then needs no find_unused_parameters)."""
        return sum(p.sum() for n in names for p in self.modules[n].parameters() if p.requires_grad) * 0.0

    def nbytes(self) -> int:
        """Approximate size of a checkpoint: states, EMA copies and Adam's two moments per parameter."""
        total = 0
        for n, m in self.modules.items():
            states = _nbytes(m.state_dict().values())
            total += states * (2 if n in self.emas else 1) + 2 * _nbytes(m.parameters())
        return total

    # ---- checkpoints ---------------------------------------------------------------------------
    def save(self, tensors: dict) -> dict:
        """Put every part's tensors into ``tensors``; return the JSON-able rest (optimisers, EMA counts)."""
        for n, m in self.modules.items():
            tensors.update(ck.module_tensors(n, m))
        for n, ema in self.emas.items():
            tensors.update(ck.module_tensors(f"{n}_ema", ema.module))
        return {"parts": list(self.modules),
                "optim": {n: ck.flatten_optimizer(f"opt_{n.lower()}", o, tensors) for n, o in self.optimizers.items()},
                "ema_updates": {n: ema.updates for n, ema in self.emas.items()}}

    def load(self, tensors: dict, meta: dict) -> None:
        """Restore every part from a checkpoint (`GankitError` from `ck.load_module` for a wrong network)."""
        for n, m in self.modules.items():
            ck.load_module(n, m, tensors)
        for n, ema in self.emas.items():
            ck.load_module(f"{n}_ema", ema.module, tensors)
            ema.updates = meta["ema_updates"][n]
        for n, opt in self.optimizers.items():
            opt.load_state_dict(ck.unflatten_optimizer(meta["optim"][n], tensors))


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def grad_norm(module: torch.nn.Module) -> torch.Tensor:
    """The 2-norm of all of ``module``'s gradients together (0 when it has none)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grad) for grad in grads]))
