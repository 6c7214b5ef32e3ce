"""Linear analysis of a two-dimensional training field at its rest points.

Works on any *system*: an object with ``field(states, create_graph) -> (N, 2)``
(float64), ``names`` (the two coordinate names), ``d_mask`` (which coordinates
belong to D) and ``rest_points() -> list of arrays (2,)``; `PointField` and
`DiracGAN` are the two in gankit. The Jacobian is taken by autograd through the
field, the eigenvalues by numpy, and the rest point is classified from them:
stable/unstable node, stable/unstable focus, centre, saddle or degenerate.
``field_grid`` samples the field on a grid for phase portraits.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from ._autograd import DTYPE


class System(Protocol):
    names: tuple
    d_mask: tuple

    def field(self, states: torch.Tensor, create_graph: bool = False) -> torch.Tensor: ...

    def rest_points(self) -> list: ...


def jacobian(system: System, point) -> np.ndarray:
    """The Jacobian (2, 2) of the field at ``point`` (2,): ``J[i, j] = d field_i / d state_j``."""
    s0 = torch.as_tensor(np.asarray(point, dtype=float), dtype=DTYPE)
    J = torch.autograd.functional.jacobian(lambda s: system.field(s[None], create_graph=True)[0], s0)
    return J.detach().numpy()


def classify(eigenvalues: np.ndarray, tol: float = 1e-9) -> str:
    """Name the rest point of a planar field from the Jacobian's eigenvalues (2,).

    ``tol`` is relative to the largest eigenvalue modulus: real parts below it
    count as zero (a linear centre, or degenerate when an eigenvalue vanishes).
    """
    lam = np.asarray(eigenvalues, dtype=complex)
    scale = max(1.0, float(np.max(np.abs(lam))))
    re, im = lam.real, lam.imag
    if np.any(np.abs(lam) <= tol * scale):
        return "degenerate"
    if np.all(np.abs(im) > tol * scale):
        if np.all(np.abs(re) <= tol * scale):
            return "centre"
        if np.all(re < -tol * scale):
            return "stable focus"
        if np.all(re > tol * scale):
            return "unstable focus"
        return "degenerate"
    if np.any(np.abs(re) <= tol * scale):
        return "degenerate"
    if np.all(re < 0):
        return "stable node"
    if np.all(re > 0):
        return "unstable node"
    return "saddle"


def analyse_point(system: System, point) -> dict:
    """Jacobian, eigenvalues and class of the rest point ``point`` (2,), as plain Python values.

    Keys: ``point`` [x, y], ``residual`` (|field| there, ~0 at a true rest
    point), ``jacobian`` 2x2 nested list, ``eigenvalues`` [[re, im], ...],
    ``classification``, ``stable`` (all real parts < 0).
    """
    point = np.asarray(point, dtype=float)
    J = jacobian(system, point)
    lam = np.linalg.eigvals(J)
    lam = lam[np.lexsort((lam.imag, lam.real))]
    residual = float(torch.linalg.vector_norm(system.field(torch.as_tensor(point[None], dtype=DTYPE))).item())
    return {
        "point": [float(v) for v in point],
        "residual": residual,
        "jacobian": J.tolist(),
        "eigenvalues": [[float(v.real), float(v.imag)] for v in lam],
        "classification": classify(lam),
        "stable": bool(np.all(lam.real < 0)),
    }


def eigenvalues_of(info: dict) -> np.ndarray:
    """The complex eigenvalues (2,) stored in an `analyse_point` result."""
    return np.array([complex(re, im) for re, im in info["eigenvalues"]])


def field_grid(system: System, xlim: tuple, ylim: tuple, n: int = 25) -> dict:
    """The field sampled on an n x n grid, for streamline plots.

    Returns ``{"x": (n,), "y": (n,), "u": (n, n), "v": (n, n)}`` numpy arrays
    where ``u[i, j], v[i, j]`` is the field at ``(x[j], y[i])`` (matplotlib's
    ``streamplot`` layout); non-finite values are set to NaN.
    """
    x = np.linspace(*xlim, n)
    y = np.linspace(*ylim, n)
    X, Y = np.meshgrid(x, y)
    states = torch.as_tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=DTYPE)
    F = system.field(states).detach().numpy()
    F[~np.isfinite(F)] = np.nan
    return {"x": x, "y": y, "u": F[:, 0].reshape(n, n), "v": F[:, 1].reshape(n, n)}
