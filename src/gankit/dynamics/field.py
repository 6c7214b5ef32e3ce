"""The point-wise training field of a GAN objective, its D0 and its rest points.

At one sample x with data density p_d, treat D = D(x) and p_g = p_g(x) as free
variables. Gradient ascent of D on J and the generator's reaction give the
two-dimensional field (notation of ARCHITECTURE.md)::

    dD/dt   = p_d * f1'(D) + p_g * f2'(D)      (D ascends J pointwise)
    dp_g/dt = f3(D) - f3(D0)                  (G moves mass where f3 beats its value at D0)

where D0 solves ``f1'(D) + f2'(D) = 0``: the optimal discriminator when
p_g = p_d. Every derivative comes from torch.autograd on the objective's own
functions (float64), so a user-written objective needs no code. Roots are found
by scanning a grid of the domain for sign changes and refining with Brent's
method; a run of exact zeros (for example hinge's plateau) counts as one root
at its midpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np
import torch
from scipy.optimize import brentq

from ..errors import GankitError
from ..objectives import Objective
from ._autograd import DTYPE, as_states, grads
from ._replay import scalar_function

# Grids for root finding. Probabilities: logit-spaced, dense near 0 and 1 (odd
# length, so d = 0.5 is a grid point). Reals: sinh-spaced, dense near 0, to +-1e4.
_PROB_GRID = 1.0 / (1.0 + np.exp(-np.linspace(-16.0, 16.0, 4001)))
_REAL_GRID = np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(1e4), 8001))


def domain_grid(domain: str) -> np.ndarray:
    """The scan grid (K,) for a domain: ``"probability"`` (0, 1) or ``"real"``."""
    return _PROB_GRID if domain == "probability" else _REAL_GRID


def first_derivatives(objective: Objective, d: torch.Tensor, create_graph: bool = False):
    """(f1'(d), f2'(d), f3(d)), each shaped like ``d``, by autograd on the objective.

    One backward pass gives both derivatives: f1 and f2 are evaluated on two
    copies of ``d`` and the sum is differentiated with respect to each copy.
    """
    with torch.enable_grad():
        if create_graph and d.requires_grad:
            d1, d2 = d.clone(), d.clone()
        else:
            d1 = d.detach().clone().requires_grad_(True)
            d2 = d.detach().clone().requires_grad_(True)
        y = objective.f(1, d1) + objective.f(2, d2)
        g1, g2 = grads(y, (d1, d2), create_graph)
    return g1, g2, objective.f(3, d)


def find_zeros(fn: Callable[[np.ndarray], tuple], grid: np.ndarray) -> list:
    """Zeros of a scalar function of one variable on ``grid``.

    Args:
        fn: vectorised, (K,) -> (values (K,), scales (K,)): a value counts as an
            exact zero when |value| <= 1e-12 * scale (the size of the terms it
            is the difference of, so rounding is not mistaken for a root).
        grid: increasing points (K,).
    Returns:
        a list of (x, slope) with slope -1 where fn goes from + to -, +1 from - to
        +, 0 otherwise; ``[("all", 0)]`` if fn vanishes on the whole grid.
    """
    v, scale = (np.asarray(a, dtype=float) for a in fn(grid))
    finite = np.isfinite(v)
    zero = np.abs(v) <= 1e-12 * np.where(np.isfinite(scale), scale, 0.0) + 1e-300
    sign = np.where(~finite, np.nan, np.where(zero, 0.0, np.sign(v)))
    if finite.all() and np.all(sign == 0):
        return [("all", 0)]
    roots, i, k = [], 0, len(grid)
    while i < k - 1:
        if sign[i] == 0:  # a run of zeros: one root at its midpoint
            j = i
            while j + 1 < k and sign[j + 1] == 0:
                j += 1
            before = sign[i - 1] if i > 0 else np.nan
            after = sign[j + 1] if j + 1 < k else np.nan
            slope = int(np.sign(after - before)) if np.isfinite(before + after) else 0
            # rounding keeps a symmetric plateau's midpoint at 0 instead of +-1e-15
            roots.append((round(0.5 * (grid[i] + grid[j]), 12) + 0.0, slope))  # + 0.0: no -0
            i = j + 1
            continue
        if sign[i] * sign[i + 1] < 0:
            x = brentq(lambda t: float(fn(np.array([t]))[0][0]), grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15)
            roots.append((x, int(sign[i + 1])))
        i += 1
    return roots


def _np_fn(objective: Objective, which: Callable) -> Callable[[np.ndarray], tuple]:
    """Wrap ``which(f1', f2', f3) -> (value, scale)`` as a numpy function of D for `find_zeros`."""
    def fn(x: np.ndarray) -> tuple:
        g1, g2, f3 = first_derivatives(objective, torch.as_tensor(x, dtype=DTYPE))
        return tuple(t.detach().numpy() for t in which(g1, g2, f3))
    return fn


def find_d0(objective: Objective) -> tuple:
    """(D0, note): the root of ``f1'(D) + f2'(D) = 0`` where f1 + f2 has a maximum.

    Where the equation holds for every D (Wasserstein), D0 = 0 for real-valued
    D and 0.5 for probabilities, and the note says so. `GankitError` if there
    is no root (pass ``d0`` explicitly then).
    """
    roots = find_zeros(_np_fn(objective, lambda g1, g2, f3: (g1 + g2, g1.abs() + g2.abs())), domain_grid(objective.domain))
    if roots == [("all", 0)]:
        d0 = 0.5 if objective.domain == "probability" else 0.0
        return d0, f"f1'(D) + f2'(D) = 0 holds for every D; D0 = {d0:g} by convention"
    if not roots:
        raise GankitError(f"f1'(D) + f2'(D) has no zero for objective {objective.describe()}: there is no optimal D "
                          f"when p_g = p_d; give D0 explicitly (--d0)")
    maxima = [x for x, slope in roots if slope < 0]
    chosen = maxima[0] if maxima else roots[0][0]
    note = "unique root" if len(roots) == 1 else f"{len(roots)} roots {[round(x, 6) for x, _ in roots]}; chose {chosen:.6g}"
    return float(chosen), note


@dataclass(frozen=True)
class PointField:
    """The field on (D, p_g) at one x; build it with `point_field`.

    State tensors have shape (N, 2): column 0 is D (a probability or a real
    critic value, as the objective's domain says), column 1 is p_g.
    """

    objective: Objective
    p_d: float
    d0: float
    d0_note: str
    names: ClassVar[tuple] = ("D", "p_g")
    d_mask: ClassVar[tuple] = (True, False)   # which coordinates belong to D (updated first when alternating)

    def field(self, states: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """(dD/dt, dp_g/dt) at each state: (N, 2) -> (N, 2), float64."""
        s = as_states(states) if not torch.is_tensor(states) or states.dtype != DTYPE else states
        d, p_g = s[:, 0], s[:, 1]
        g1, g2, f3 = first_derivatives(self.objective, d, create_graph)
        f3_d0 = self.objective.f(3, torch.tensor([self.d0], dtype=DTYPE))
        return torch.stack([self.p_d * g1 + p_g * g2, f3 - f3_d0], dim=1)

    def rest_points(self) -> list:
        """Rest points as arrays (2,): D solves f3(D) = f3(D0), then dD/dt = 0 fixes p_g."""
        f3_d0 = float(self.objective.f(3, torch.tensor([self.d0], dtype=DTYPE))[0])
        roots = find_zeros(_np_fn(self.objective, lambda g1, g2, f3: (f3 - f3_d0, f3.abs() + abs(f3_d0))), domain_grid(self.objective.domain))
        if roots == [("all", 0)]:
            roots = [(self.d0, 0)]  # f3 is constant: G never moves; report the point above D0
        points = []
        for d, _ in roots:
            g1, g2, _ = first_derivatives(self.objective, torch.tensor([d], dtype=DTYPE))
            if abs(float(g2[0])) > 1e-300:
                points.append(np.array([d, -self.p_d * float(g1[0]) / float(g2[0])]))
        return points

    def velocity_fn(self):
        """A fast ``(D, p_g) -> (dD/dt, dp_g/dt)`` on Python floats, for long Euler loops.

        f1', f2' and f3 come from one traced autograd graph replayed on floats
        (see `gankit.dynamics._replay`); the last D is cached because an
        alternating step evaluates the field twice at the same D.
        """
        obj, p_d = self.objective, self.p_d

        def pieces(d):
            g1, g2 = torch.func.grad(lambda a, b: obj.f(1, a) + obj.f(2, b), argnums=(0, 1))(d, d)
            return g1, g2, obj.f(3, d)

        lo, hi = (0.05, 0.95) if obj.domain == "probability" else (self.d0 - 3.0, self.d0 + 3.0)
        fast = scalar_function(pieces, [self.d0, *np.linspace(lo, hi, 7)])
        f3_d0 = fast(self.d0)[2]
        cache = [None, None]

        def velocity(state: tuple) -> tuple:
            d, p_g = state
            if cache[0] != d:
                cache[0], cache[1] = d, fast(d)
            g1, g2, f3 = cache[1]
            return (p_d * g1 + p_g * g2, f3 - f3_d0)
        return velocity

    def is_correct(self, point: np.ndarray) -> bool:
        """True where p_g equals p_d at the rest point (the generator has learnt the data)."""
        return bool(abs(point[1] - self.p_d) <= 1e-6 * max(1.0, abs(self.p_d)))

    def default_box(self) -> tuple:
        """((D_lo, D_hi), (p_lo, p_hi)) framing the rest points, for plots and grids."""
        pts = self.rest_points() or [np.array([self.d0, self.p_d])]
        p_hi = max(1.0, 2.0 * max(p[1] for p in pts), 2.0 * self.p_d)
        if self.objective.domain == "probability":
            return (0.02, 0.98), (0.0, p_hi)
        ds = [p[0] for p in pts]
        return (min(ds) - 1.5, max(ds) + 1.5), (0.0, p_hi)


def point_field(objective: Objective, p_d: float, d0: Optional[float] = None) -> PointField:
    """The point-wise field of ``objective`` at data density ``p_d`` (>= 0).

    Example:
        >>> from gankit.objectives import get_objective
        >>> f = point_field(get_objective("minimax"), 0.2)
        >>> f.d0, [p.round(6).tolist() for p in f.rest_points()]
        (0.5, [[0.5, 0.2]])
    """
    if not (np.isfinite(p_d) and p_d >= 0):
        raise GankitError(f"the data density p_d must be a finite number >= 0, got {p_d}")
    if d0 is None:
        d0, note = find_d0(objective)
    else:
        if objective.domain == "probability" and not 0 < d0 < 1:
            raise GankitError(f"D0 must lie in (0, 1) for a probability-domain objective, got {d0}")
        note = "given"
    return PointField(objective, float(p_d), float(d0), note)
