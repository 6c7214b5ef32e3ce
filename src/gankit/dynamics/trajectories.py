"""Trajectories of a training field: discrete gradient steps, the continuous flow, Lyapunov checks.

Discrete training is explicit Euler on the field, with either *simultaneous*
updates (both players step from the same state) or *alternating* updates (D's
coordinates first, then G's from the new state, as gankit's trainer does).
The continuous flow is integrated by scipy's adaptive ``solve_ivp``. A
Lyapunov check measures the distance to a rest point along a trajectory, and
tests numerically whether a candidate function V decreases along the flow
(dV/dt = grad V . field < 0) on a grid of states. Works for any system of
`gankit.dynamics.linear` that also offers ``velocity_fn()``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp
from scipy.linalg import solve_continuous_lyapunov

from ..errors import GankitError
from ._autograd import DTYPE, grads
from .linear import jacobian

METHODS = ("simultaneous", "alternating")
_BLOW_UP = 1e12   # a coordinate beyond this counts as diverged


class _LeftDomain(Exception):
    """The field is not finite here (e.g. D left (0, 1) for a probability-domain objective)."""


@dataclass
class Trajectory:
    """Recorded states of one run. ``t`` (K,) is time (steps x lr for Euler); ``states`` (K, 2)."""

    t: np.ndarray
    states: np.ndarray
    method: str
    diverged: bool

    @property
    def final(self) -> np.ndarray:
        return self.states[-1]


def _check_start(start) -> tuple:
    s = tuple(float(v) for v in start)
    if len(s) != 2 or not all(np.isfinite(s)):
        raise GankitError(f"a start point needs two finite numbers, got {start}")
    return s


def euler(system, start, lr: float, steps: int, method: str = "simultaneous", record_every: int = 0) -> Trajectory:
    """Explicit Euler steps ``s <- s + lr * field(s)``.

    Args:
        system: a `PointField` or `DiracGAN`.
        start: the first state (2,).
        lr: learning rate (> 0), the Euler step.
        steps: number of steps (>= 1).
        method: ``"simultaneous"`` or ``"alternating"`` (D's coordinates first).
        record_every: keep every k-th state (0: about 1,000 states in all).
    Returns:
        a `Trajectory`; it stops early, with ``diverged=True``, once a state is
        not finite or exceeds 1e12.
    """
    if method not in METHODS:
        raise GankitError(f"unknown update method {method!r}; choose one of {', '.join(METHODS)}")
    if not (lr > 0 and np.isfinite(lr)) or steps < 1:
        raise GankitError(f"need lr > 0 and steps >= 1, got lr={lr}, steps={steps}")
    every = record_every or max(1, steps // 1000)
    velocity = system.velocity_fn()
    is_d = system.d_mask
    s = list(_check_start(start))
    ts, out, diverged = [0.0], [tuple(s)], False
    for k in range(1, steps + 1):
        v = velocity(tuple(s))
        if method == "simultaneous":
            s = [s[i] + lr * v[i] for i in range(2)]
        else:
            s = [s[i] + lr * v[i] if is_d[i] else s[i] for i in range(2)]
            v = velocity(tuple(s))
            s = [s[i] if is_d[i] else s[i] + lr * v[i] for i in range(2)]
        bad = not (abs(s[0]) < _BLOW_UP and abs(s[1]) < _BLOW_UP)   # also true for NaN
        if k % every == 0 or k == steps or bad:
            ts.append(k * lr)
            out.append(tuple(s))
        if bad:
            diverged = True
            break
    return Trajectory(np.array(ts), np.array(out, dtype=float), method, diverged)


def integrate(system, start, t_end: float, n_eval: int = 1000, method: str = "DOP853",
              rtol: float = 1e-10, atol: float = 1e-12) -> Trajectory:
    """The continuous flow ds/dt = field(s) by scipy's adaptive ``solve_ivp``.

    Args:
        start: (2,); t_end: final time (> 0); n_eval: recorded times, evenly spaced;
        method, rtol, atol: passed to ``solve_ivp`` (DOP853 is 8th order).
    Returns:
        a `Trajectory` at the ``n_eval`` times; if the field stops being finite
        or a coordinate exceeds 1e12, the accepted steps so far with ``diverged=True``.
    """
    if not (t_end > 0 and np.isfinite(t_end)):
        raise GankitError(f"the integration time must be a positive number, got {t_end}")
    velocity = system.velocity_fn()
    accepted = [(0.0, np.array(_check_start(start)))]

    def rhs(_t, y):
        v = np.array(velocity((float(y[0]), float(y[1]))))
        if not np.all(np.isfinite(v)):
            raise _LeftDomain
        return v

    def watch(t, y):  # called at every accepted step: keeps the record should the flow leave the domain
        accepted.append((float(t), y.copy()))
        return _BLOW_UP - np.max(np.abs(y))
    watch.terminal = True

    try:
        sol = solve_ivp(rhs, (0.0, t_end), accepted[0][1], method=method, rtol=rtol, atol=atol,
                        t_eval=np.linspace(0.0, t_end, n_eval), events=watch)
    except _LeftDomain:
        t, states = zip(*accepted)
        return Trajectory(np.array(t), np.array(states), "ode", True)
    states = sol.y.T
    diverged = sol.status != 0 or not np.all(np.isfinite(states))
    return Trajectory(sol.t, states, "ode", bool(diverged))


def distance_to(states: np.ndarray, point) -> np.ndarray:
    """Euclidean distance (K,) of each state (K, 2) to ``point`` (2,)."""
    return np.linalg.norm(np.asarray(states, dtype=float) - np.asarray(point, dtype=float)[None], axis=1)


def summarise(traj: Trajectory, point) -> dict:
    """Distances to ``point`` at the start and end, their ratio, and a one-word outcome.

    ``outcome`` from the ratio r = final / starting distance: ``"converges"``
    (r < 0.01), ``"approaches"`` (r < 0.8), ``"cycles"`` (0.8 <= r <= 1.25:
    bounded, neither approaching nor leaving), ``"diverges"`` (r > 1.25, or the
    run blew up).
    """
    dist = distance_to(traj.states, point)
    d0, d1 = float(dist[0]), float(dist[-1])
    ratio = d1 / d0 if d0 > 0 else float("nan")
    if traj.diverged or not np.isfinite(d1) or ratio > 1.25:
        outcome = "diverges"
    elif ratio < 0.01:
        outcome = "converges"
    elif ratio < 0.8:
        outcome = "approaches"
    else:
        outcome = "cycles"
    return {"start": traj.states[0].tolist(), "final": traj.final.tolist(), "distance_start": d0,
            "distance_end": d1, "distance_ratio": ratio, "distance_min": float(np.nanmin(dist)),
            "distance_max": float(np.nanmax(dist)), "diverged": traj.diverged, "outcome": outcome}


# ---- Lyapunov candidates and the numerical check ------------------------------------------
def squared_distance(point) -> Callable[[torch.Tensor], torch.Tensor]:
    """V(s) = |s - point|^2, for states (N, 2) -> (N,)."""
    p = torch.as_tensor(np.asarray(point, dtype=float), dtype=DTYPE)
    return lambda s: ((s - p) ** 2).sum(1)


def linearised_lyapunov(system, point) -> tuple:
    """(V, P, positive_definite): V(s) = (s-p)^T P (s-p) with J^T P + P J = -I at ``point``.

    When the Jacobian J is stable (all real parts < 0), P is positive definite
    and V is a Lyapunov function near the rest point. Otherwise the equation
    has no positive definite solution and ``(None, None, False)`` is returned.
    """
    J = jacobian(system, point)
    if not np.all(np.linalg.eigvals(J).real < 0):
        return None, None, False
    P = solve_continuous_lyapunov(J.T, -np.eye(2))
    P = 0.5 * (P + P.T)
    pd = bool(np.all(np.linalg.eigvalsh(P) > 0))
    Pt = torch.as_tensor(P, dtype=DTYPE)
    p = torch.as_tensor(np.asarray(point, dtype=float), dtype=DTYPE)
    return (lambda s: ((s - p) @ Pt * (s - p)).sum(1)), P, pd


def box_grid(point, radius: float, n: int = 20, domain: str = "real") -> np.ndarray:
    """States (n*n, 2) on a square of half-width ``radius`` around ``point`` (D kept in (0, 1)
    for the probability domain, p_g >= 0 for the point field is the caller's choice)."""
    x = np.linspace(point[0] - radius, point[0] + radius, n)
    y = np.linspace(point[1] - radius, point[1] + radius, n)
    if domain == "probability":
        x = np.clip(x, 1e-3, 1 - 1e-3)
    X, Y = np.meshgrid(x, y)
    return np.stack([X.ravel(), Y.ravel()], 1)


def lyapunov_check(system, V: Callable[[torch.Tensor], torch.Tensor], states: np.ndarray) -> dict:
    """Does V decrease along the flow at each of ``states`` (N, 2)?

    dV/dt = grad V(s) . field(s) by autograd. A value counts as zero when below
    1e-12 times the largest |grad V| |field| on the grid. Returns the fraction
    of states where dV/dt < 0 (``fraction_decreasing``) and <= 0
    (``fraction_nonincreasing``), the extreme values, and ``decreasing`` (all
    states strictly decreasing).
    """
    s = torch.as_tensor(np.asarray(states, dtype=float), dtype=DTYPE).requires_grad_(True)
    with torch.enable_grad():
        (gv,) = grads(V(s), [s])
    F = system.field(s.detach())
    dv = (gv * F).sum(1)
    ok = torch.isfinite(dv)
    scale = float((gv.norm(dim=1) * F.norm(dim=1))[ok].max()) if ok.any() else 0.0
    tol = 1e-12 * max(scale, 1e-300)
    dv = dv[ok].numpy()
    return {"n_states": int(ok.sum()), "fraction_decreasing": float(np.mean(dv < -tol)),
            "fraction_nonincreasing": float(np.mean(dv <= tol)), "max_dV_dt": float(dv.max()),
            "min_dV_dt": float(dv.min()), "decreasing": bool(np.all(dv < -tol))}
