"""Draw samples from a generator: by seed, from given codes, in batches (loading a run: `gankit.run`)."""
from __future__ import annotations

import math
import os
from typing import Optional

import torch

from .errors import GankitError
from .latent import latent_codes
from .nets.conditional import cycle_labels, n_classes_of


def check_memory(nbytes: int, what: str) -> None:
    """Refuse, before any work, what would need more than half of this machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): nothing to compare with
        return
    if nbytes > total // 2:
        raise GankitError(f"{what} need {nbytes / 2**30:,.1f} GiB in memory, more than half of this machine's "
                          f"{total / 2**30:.1f} GiB; ask for fewer")


@torch.no_grad()
def generate(G: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 500, labels: Optional[torch.Tensor] = None,
             truncation: Optional[float] = None) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] from z ~ N(0, I) drawn with ``seed`` (on the CPU, so any device agrees).

    Image i comes from row i of ``latent_codes(n, z_dim, seed, truncation)`` and, for a conditional G, label
    ``labels[i]`` (default: every class equally often, `cycle_labels`). Images are computed in batches of ``batch_size`` codes.
    """
    if n < 1:
        raise GankitError(f"--n must be at least 1, got {n}")
    check_memory(n * 5 * math.prod(G.image_shape), f"--n {n:,} images of shape {tuple(G.image_shape)}")
    k = n_classes_of(G)
    if labels is None:
        labels = cycle_labels(k, n)
    elif k == 0:
        raise GankitError("this run is unconditional: it takes no class; drop --class/--per-class")
    elif len(labels) != n or int(labels.min()) < 0 or int(labels.max()) >= k:
        raise GankitError(f"need {n} labels in 0..{k - 1}, got {len(labels)} in "
                          f"{int(labels.min())}..{int(labels.max())}")
    return generate_codes(G, latent_codes(n, G.z_dim, seed, truncation), labels, batch_size)


@torch.no_grad()
def generate_codes(G: torch.nn.Module, z: torch.Tensor, labels: Optional[torch.Tensor] = None,
                   batch_size: int = 500) -> torch.Tensor:
    """G on codes z (n, z_dim) [and labels (n,)] in batches of ``batch_size``: (n, C, H, W) on the CPU.

    Regenerating one image repeats its whole batch, so the arithmetic is exactly that of the first run.
    """
    device = next(G.parameters()).device
    if labels is None:
        return torch.cat([G(zb.to(device)).float().cpu() for zb in z.split(batch_size)])
    return torch.cat([G(zb.to(device), yb.to(device)).float().cpu()
                      for zb, yb in zip(z.split(batch_size), labels.long().split(batch_size))])
