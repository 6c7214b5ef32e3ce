"""Load a trained generator from a run folder and draw samples from it."""
from __future__ import annotations

from typing import Optional

import torch

from .config import from_dict
from .errors import GankitError
from .train import build_models, load_checkpoint, pick_device
from .train.checkpoint import find_run_checkpoint, load_module


def load_generator(run_dir, checkpoint: Optional[str] = None, device: str = "auto", ema: bool = True):
    """(G in eval mode, checkpoint meta) from a run's latest (or named) checkpoint; EMA weights when present."""
    path = find_run_checkpoint(run_dir, checkpoint)
    dev = pick_device(device)
    tensors, meta = load_checkpoint(path, dev)
    cfg = from_dict(meta["config"])
    G, _ = build_models(cfg, tuple(meta["image_shape"]))
    prefix = "G_ema" if ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    load_module(prefix, G, tensors)
    return G.to(dev).eval(), meta


@torch.no_grad()
def generate(G: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] from z ~ N(0, I) drawn with ``seed`` (on the CPU, so any device agrees)."""
    if n < 1:
        raise GankitError(f"--n must be at least 1, got {n}")
    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G(zb.to(device)).float().cpu() for zb in z.split(batch_size)])
