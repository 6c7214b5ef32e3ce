"""Understand training: point-wise fields, rest points, stability, Dirac-GAN and the discriminator's kernel.

Every field is derived by autograd from an `Objective`, the same one the
trainer uses. Computing (`field`, `dirac`, `linear`, `stepsize`, `kernel`,
`circling`), integrating (`trajectories`) and plotting (`plots`, which imports
matplotlib only when called) live in separate modules. The command line is
`gankit dynamics ...` (`cli.add_dynamics_parser`).

Example:
    >>> from gankit.objectives import get_objective
    >>> from gankit.dynamics import point_field, analyse_point
    >>> f = point_field(get_objective("minimax"), p_d=0.2)
    >>> info = analyse_point(f, f.rest_points()[0])
    >>> info["classification"], [round(v, 4) for v in info["eigenvalues"][1]]
    ('stable focus', [-0.8, 1.833])
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "CirclingConfig": "circling", "compare": "circling", "run_circling": "circling",
    "REGULARISERS": "dirac", "DiracGAN": "dirac",
    "PointField": "field", "find_d0": "field", "point_field": "field",
    "function_space_step": "kernel", "kernel_eigenvalues": "kernel", "load_discriminator": "kernel", "ntk": "kernel",
    "analyse_point": "linear", "classify": "linear", "field_grid": "linear", "jacobian": "linear",
    "analyse_stepsize": "stepsize", "largest_stable_lr": "stepsize", "spectral_radius": "stepsize",
    "update_matrix": "stepsize",
    "Trajectory": "trajectories", "euler": "trajectories", "integrate": "trajectories",
    "linearised_lyapunov": "trajectories", "lyapunov_check": "trajectories", "squared_distance": "trajectories",
    "summarise": "trajectories",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
