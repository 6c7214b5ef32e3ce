"""Which learning rates keep discrete training stable at a rest point?

Near a rest point s* with field Jacobian J (by autograd, `linear.jacobian`),
one discrete step is a linear map of the deviation s - s*:

    simultaneous:  M = I + lr J
    alternating:   M = (I + lr (1-m) J)(I + lr m J)    m = diag(D's coordinates)

(D's coordinates move first, then G's from the new state.) The rest point is
locally stable for the discrete updates iff the spectral radius rho(M) < 1.
This module computes rho as a function of the learning rate and the largest
learning rate up to which every smaller one is stable (rho < 1) or at least
bounded (rho <= 1: the iterates cycle but do not grow).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import brentq

from ..errors import GankitError
from .linear import jacobian
from .trajectories import METHODS

_STRICT = 1e-12     # rho < 1 - this counts as stable
_BOUNDED = 1e-13    # rho <= 1 + this counts as bounded (a numerical unit circle)


def update_matrix(J: np.ndarray, lr: float, method: str, d_mask) -> np.ndarray:
    """The linearised update map M (2, 2) of one discrete step with learning rate ``lr``."""
    n = J.shape[0]
    eye = np.eye(n)
    if method == "simultaneous":
        return eye + lr * J
    if method == "alternating":
        m = np.diag(np.asarray(d_mask, dtype=float))
        return (eye + lr * (eye - m) @ J) @ (eye + lr * m @ J)
    raise GankitError(f"unknown update method {method!r}; choose one of {', '.join(METHODS)}")


def spectral_radius(J: np.ndarray, lr: float, method: str, d_mask) -> float:
    """max |eigenvalue| of the update map at learning rate ``lr``."""
    return float(np.max(np.abs(np.linalg.eigvals(update_matrix(J, lr, method, d_mask)))))


def spectral_radius_curve(J: np.ndarray, lrs: np.ndarray, method: str, d_mask) -> np.ndarray:
    """rho(lr) for each learning rate in ``lrs`` (L,) -> (L,)."""
    return np.array([spectral_radius(J, float(lr), method, d_mask) for lr in lrs])


def largest_stable_lr(J: np.ndarray, method: str, d_mask, bounded: bool = False, lr_max: float = 100.0,
                      n: int = 2000) -> Optional[float]:
    """The end of the interval (0, lr*) of learning rates that are all stable.

    Args:
        bounded: ask for rho <= 1 (cycling allowed) instead of rho < 1.
        lr_max, n: the scan runs over n log-spaced learning rates in [1e-6, lr_max].
    Returns:
        lr* refined by Brent's method; None if even lr = 1e-6 is not stable;
        ``lr_max`` if every scanned learning rate is.
    """
    def excess(lr: float) -> float:
        rho = spectral_radius(J, lr, method, d_mask)
        return rho - 1.0 - _BOUNDED if bounded else rho - 1.0 + _STRICT

    lrs = np.logspace(-6, np.log10(lr_max), n)
    values = np.array([excess(float(lr)) for lr in lrs])
    if values[0] >= 0:
        return None
    bad = np.nonzero(values >= 0)[0]
    if len(bad) == 0:
        return float(lr_max)
    k = int(bad[0])
    return float(brentq(excess, lrs[k - 1], lrs[k], xtol=1e-14, rtol=1e-12))


def analyse_stepsize(system, point, lrs: np.ndarray, lr_max: float = 100.0) -> dict:
    """Spectral radius curves and largest stable learning rates at ``point`` (2,).

    Returns ``{"point", "lrs": [...], method: {"spectral_radius": [...],
    "largest_stable_lr", "largest_bounded_lr"}}`` for both update methods.
    """
    J = jacobian(system, point)
    out = {"point": [float(v) for v in point], "jacobian": J.tolist(), "lrs": [float(v) for v in lrs]}
    for method in METHODS:
        out[method] = {
            "spectral_radius": spectral_radius_curve(J, lrs, method, system.d_mask).tolist(),
            "largest_stable_lr": largest_stable_lr(J, method, system.d_mask, lr_max=lr_max),
            "largest_bounded_lr": largest_stable_lr(J, method, system.d_mask, bounded=True, lr_max=lr_max),
        }
    return out
