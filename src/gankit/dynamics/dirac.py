"""The Dirac-GAN (Mescheder et al. 2018) for any gankit objective and regulariser.

Data is a point mass at 0, the generator a point mass at theta, and the
discriminator linear, with logit ``t = psi * x``. D's output is ``t`` itself
for a real-domain objective and ``sigmoid(t)`` for a probability-domain one,
exactly as in the trainer (`Prob`). Notation, with h_i(t) = f_i(output(t))::

    J(theta, psi) = h1(psi * 0) + h2(psi * theta) - (gamma/2) R(psi, theta)    D ascends J in psi
    I(theta, psi) = h3(psi * theta)                                            G ascends I in theta

so the field on the state (theta, psi) is (dI/dtheta, dJ/dpsi), by autograd.
The unique equilibrium is (0, 0). Regularisers (``reg``):

| reg | what changes | reference |
|---|---|---|
| r1 | R = ||grad_x D||^2 on data (gankit.penalties.r1) | Mescheder et al. 2018 |
| r2 | R = ||grad_x D||^2 on the generator's point (penalties.r2) | Mescheder et al. 2018 |
| gp | R = (||grad_x D|| - 1)^2 between them (penalties.gradient_penalty) | Gulrajani et al. 2017 |
| noise | x_real, x_fake get N(0, gamma^2) noise; expectations by Gauss-Hermite | Sønderby et al. 2017 |
| consensus | v <- v - gamma * grad(|v|^2 / 2) for both players | Mescheder et al. 2017 |

Without regularisation the Jacobian at (0, 0) is [[0, h3'(0)], [h2'(0), 0]],
eigenvalues +-i f'(0) when h3'(0) = -h2'(0) = f'(0); with R1 they become
-gamma/2 +- sqrt(gamma^2/4 - f'(0)^2) (these formulas are test oracles only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .. import penalties
from ..errors import GankitError, did_you_mean
from ..objectives import Objective
from ._autograd import DTYPE, grads, leaves, on_logits
from ._names import REGULARISERS

_NOISE_NODES = 32   # Gauss-Hermite nodes for instance noise; exact for polynomials up to degree 63


@dataclass(frozen=True)
class DiracGAN:
    """The Dirac-GAN field for ``objective`` with regulariser ``reg`` of strength ``gamma``.

    States are (N, 2) float64: column 0 is theta (G), column 1 is psi (D). For
    ``reg="noise"`` gamma is the noise standard deviation.
    """

    objective: Objective
    reg: str = "none"
    gamma: float = 0.0
    names: ClassVar[tuple] = ("theta", "psi")
    d_mask: ClassVar[tuple] = (False, True)

    def __post_init__(self):
        if self.reg not in REGULARISERS:
            raise GankitError(f"unknown Dirac-GAN regulariser {self.reg!r}{did_you_mean(self.reg, REGULARISERS)}; "
                              f"choose one of {', '.join(REGULARISERS)}")
        if not (np.isfinite(self.gamma) and self.gamma >= 0):
            raise GankitError(f"gamma must be a finite number >= 0, got {self.gamma}")

    def payoffs(self, theta: torch.Tensor, psi: torch.Tensor) -> tuple:
        """(J, I), each (N,): D's and G's objectives at each state (theta, psi each (N,))."""
        h = lambda i, t: on_logits(self.objective, i, t)  # noqa: E731
        if self.reg == "noise" and self.gamma > 0:
            nodes, weights = np.polynomial.hermite_e.hermegauss(_NOISE_NODES)
            eps = torch.as_tensor(nodes * self.gamma, dtype=DTYPE)[None]          # (1, K)
            w = torch.as_tensor(weights / weights.sum(), dtype=DTYPE)[None]      # (1, K)
            t_real, t_fake = psi[:, None] * eps, psi[:, None] * (theta[:, None] + eps)
            J = (w * (h(1, t_real) + h(2, t_fake))).sum(1)
            return J, (w * h(3, t_fake)).sum(1)
        x_real = torch.zeros_like(theta)[:, None]                                  # (N, 1)
        x_fake = theta[:, None]
        J = h(1, psi * x_real[:, 0]) + h(2, psi * theta)
        if self.reg in ("r1", "r2", "gp") and self.gamma > 0:
            def D(x):  # the linear discriminator of every state at once: (N, 1) -> logits (N,)
                return psi * x[:, 0]
            if self.reg == "r1":
                R = penalties.r1(D, x_real)
            elif self.reg == "r2":
                R = penalties.r2(D, x_fake)
            else:  # the interpolation point does not matter for a linear D; the seed makes it reproducible
                R = penalties.gradient_penalty(D, x_real, x_fake, generator=torch.Generator().manual_seed(0))
            J = J - 0.5 * self.gamma * R
        return J, h(3, psi * theta)

    def _plain_field(self, theta, psi, create_graph: bool) -> tuple:
        J, I = self.payoffs(theta, psi)
        (dpsi,) = grads(J, [psi], create_graph, retain_graph=True)   # J and I may share a graph
        (dtheta,) = grads(I, [theta], create_graph)
        return dtheta, dpsi

    def field(self, states: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """(dtheta/dt, dpsi/dt) at each state: (N, 2) -> (N, 2), float64."""
        states = torch.as_tensor(states, dtype=DTYPE)
        consensus = self.reg == "consensus" and self.gamma > 0
        with torch.enable_grad():
            theta, psi = leaves(states, create_graph)
            dtheta, dpsi = self._plain_field(theta, psi, create_graph or consensus)
            if consensus:
                gt, gp = grads(0.5 * (dtheta ** 2 + dpsi ** 2), [theta, psi], create_graph)
                dtheta, dpsi = dtheta - self.gamma * gt, dpsi - self.gamma * gp
        out = torch.stack([dtheta, dpsi], 1)
        return out if create_graph else out.detach()

    def velocity_fn(self):
        """``(theta, psi) -> (dtheta/dt, dpsi/dt)`` on Python floats (eager autograd per call)."""
        def velocity(state: tuple) -> tuple:
            v = self.field(torch.tensor([state], dtype=DTYPE))[0]
            return float(v[0]), float(v[1])
        return velocity

    def rest_points(self) -> list:
        """The equilibrium (theta, psi) = (0, 0): the generator sits on the data, D is flat."""
        return [np.zeros(2)]

    def is_correct(self, point: np.ndarray) -> bool:
        """True where the generator's point mass is on the data (theta = 0)."""
        return bool(abs(point[0]) <= 1e-9)

    def default_box(self) -> tuple:
        """((theta_lo, theta_hi), (psi_lo, psi_hi)) for plots."""
        return (-2.0, 2.0), (-2.0, 2.0)
