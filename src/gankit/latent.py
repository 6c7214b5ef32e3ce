"""The latent space: codes from seeds, interpolation, traversal, class mixing and arithmetic.

Every image-making function here is pure: a generator and codes (and labels, for
a conditional generator) in, images (T, C, H, W) in [-1, 1] out, on the CPU.
Saving grids and GIFs is the caller's business (`save_grid`, `save_gif`).

Notation: z in R^D, z ~ N(0, I); t in [0, 1]; u = z / |z|; cos w = <u0, u1>;
    lerp(z0, z1, t)  = (1 - t) z0 + t z1
    slerp(z0, z1, t) = ((1 - t) |z0| + t |z1|) (sin((1 - t) w) u0 + sin(t w) u1) / sin(w)
slerp moves the direction along the great circle and the norm linearly from |z0|
to |z1|, so the path never dips towards the origin, where a Gaussian code of
high dimension almost never lies (lerp's midpoint between two independent codes
has about 0.71 times their norm). For |z0| = |z1| it is Shoemake's slerp.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from .atomic import atomic_write, image_bytes
from .errors import GankitError
from .nets.conditional import n_classes_of


MIN_TRUNCATION = 0.05


def latent_codes(n: int, z_dim: int, seed: int, truncation: Optional[float] = None) -> torch.Tensor:
    """(n, z_dim) codes z ~ N(0, I) drawn on the CPU from ``seed`` (row i is "latent index i" of that seed).

    With ``truncation`` T every entry with |z| > T is redrawn from the same generator until all are within
    T (the truncation trick). The codes depend on (n, z_dim, seed, T) together: keep all four to redraw one.
    """
    if truncation is not None and not MIN_TRUNCATION <= truncation:
        # each redraw keeps an entry with probability P(|z| <= T), about 0.8 T for small T: below 0.05 the
        # redrawing runs for hours (1e-9: forever)
        raise GankitError(f"--truncation must be at least {MIN_TRUNCATION}, got {truncation}")
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, z_dim, generator=g)
    if truncation is not None:
        outside = z.abs() > truncation
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=g)
            outside = z.abs() > truncation
    return z


def seed_code(z_dim: int, seed: int) -> torch.Tensor:
    """The code (z_dim,) of one seed: row 0 of `latent_codes`."""
    return latent_codes(1, z_dim, seed)[0]


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation: z0, z1 (D,), t (T,) -> (T, D)."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: z0, z1 (D,), t (T,) -> (T, D), |z(t)| = (1 - t)|z0| + t|z1|.

    Falls back to lerp where z0 and z1 are (anti)parallel.
    """
    z0, z1, t = z0.double(), z1.double(), t.double()[:, None]
    r0, r1 = z0.norm(), z1.norm()
    u0, u1 = z0 / r0, z1 / r1
    w = torch.arccos((u0 @ u1).clamp(-1, 1))
    if torch.sin(w).abs() < 1e-6:  # (anti)parallel: no unique great circle
        return lerp(z0, z1, t[:, 0]).float()
    direction = (torch.sin((1 - t) * w) * u0 + torch.sin(t * w) * u1) / torch.sin(w)
    return (((1 - t) * r0 + t * r1) * direction).float()


INTERPOLATIONS = {"linear": lerp, "spherical": slerp}


def _check_label(G: torch.nn.Module, label: Optional[int]) -> Optional[int]:
    k = n_classes_of(G)
    if k == 0:
        if label is not None:
            raise GankitError("--class needs a conditional run (model.conditional set); this generator takes no label")
        return None
    label = 0 if label is None else int(label)
    if not 0 <= label < k:
        raise GankitError(f"--class must be in 0..{k - 1}, got {label}")
    return label


@torch.no_grad()
def render(G: torch.nn.Module, z: torch.Tensor, label: Optional[int] = None) -> torch.Tensor:
    """G(z) (or G(z, label) for a conditional G, label 0 when none is given) -> (T, C, H, W) on the CPU."""
    label = _check_label(G, label)
    device = next(G.parameters()).device
    z = z.to(device)
    x = G(z) if label is None else G(z, torch.full((z.shape[0],), label, dtype=torch.long, device=device))
    return x.float().cpu()


def interpolate(G: torch.nn.Module, z0: torch.Tensor, z1: torch.Tensor, steps: int = 8, method: str = "spherical",
                label: Optional[int] = None) -> torch.Tensor:
    """Images along the path from z0 to z1 (both (D,)), ``steps`` points including both ends: (steps, C, H, W)."""
    if method not in INTERPOLATIONS:
        raise GankitError(f"interpolation must be linear or spherical, got {method!r}")
    if steps < 2:
        raise GankitError(f"--steps must be at least 2 (the two endpoints), got {steps}")
    return render(G, INTERPOLATIONS[method](z0, z1, torch.linspace(0, 1, steps)), label)


def traverse(G: torch.nn.Module, z: torch.Tensor, dim: int, values: Sequence[float],
             label: Optional[int] = None) -> torch.Tensor:
    """Images of z (D,) with coordinate ``dim`` set to each of ``values``: (len(values), C, H, W)."""
    if not 0 <= dim < z.shape[0]:
        raise GankitError(f"--dim must be in 0..{z.shape[0] - 1}, got {dim}")
    codes = z[None].repeat(len(values), 1)
    codes[:, dim] = torch.as_tensor(list(values), dtype=codes.dtype)
    return render(G, codes, label)


@torch.no_grad()
def class_interpolation(G: torch.nn.Module, z: torch.Tensor, class_a: int, class_b: int,
                        steps: int = 8) -> torch.Tensor:
    """Fixed z (D,), label embedding moved linearly from class_a's to class_b's: (steps, C, H, W)."""
    k = n_classes_of(G)
    if k == 0:
        raise GankitError("class interpolation needs a conditional run (model.conditional set)")
    for c in (class_a, class_b):
        if not 0 <= c < k:
            raise GankitError(f"classes must be in 0..{k - 1}, got {c}")
    device = next(G.parameters()).device
    e = G.embed(torch.tensor([class_a, class_b], device=device)).float().cpu()
    mix = lerp(e[0], e[1], torch.linspace(0, 1, steps))
    return G.from_embedding(z[None].repeat(steps, 1).to(device), mix.to(device)).float().cpu()


def arithmetic(G: torch.nn.Module, codes_a: torch.Tensor, codes_b: torch.Tensor, codes_c: torch.Tensor,
               label: Optional[int] = None) -> torch.Tensor:
    """mean(a) - mean(b) + mean(c) on codes (Na, D), (Nb, D), (Nc, D) (Radford et al. 2016).

    Returns 4 images: G(mean a), G(mean b), G(mean c) and G(mean a - mean b + mean c).
    """
    means = [c.mean(0) for c in (codes_a, codes_b, codes_c)]
    return render(G, torch.stack([*means, means[0] - means[1] + means[2]]), label)


def _to_pil(images: torch.Tensor, nrow: int):
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images.add(1).div(2).clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    arr = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if images.shape[1] == 1 else arr)


def save_grid(images: torch.Tensor, path, nrow: Optional[int] = None) -> Path:
    """A PNG grid of images (N, C, H, W) in [-1, 1]; one row by default."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, image_bytes(_to_pil(images, nrow or images.shape[0]), "PNG"))
    except OSError as exc:
        raise GankitError(f"cannot write {path} ({exc.strerror or exc}); choose another --out") from None
    return path


def save_gif(images: torch.Tensor, path, ms_per_frame: int = 120, scale: int = 4, bounce: bool = True) -> Path:
    """An animated GIF, one frame per image (N, C, H, W); played forwards then backwards when ``bounce``."""
    from PIL import Image

    frames = [_to_pil(x[None], 1) for x in images]
    frames = [f.resize((f.width * scale, f.height * scale), Image.NEAREST) for f in frames]
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                       duration=ms_per_frame, loop=0))
    except OSError as exc:
        raise GankitError(f"cannot write {path} ({exc.strerror or exc}); choose another --out") from None
    return path
