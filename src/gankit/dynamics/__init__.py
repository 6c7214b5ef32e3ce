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
from .circling import CirclingConfig, compare, run_circling
from .dirac import REGULARISERS, DiracGAN
from .field import PointField, find_d0, point_field
from .kernel import function_space_step, kernel_eigenvalues, load_discriminator, ntk
from .linear import analyse_point, classify, field_grid, jacobian
from .stepsize import analyse_stepsize, largest_stable_lr, spectral_radius, update_matrix
from .trajectories import (Trajectory, euler, integrate, linearised_lyapunov, lyapunov_check, squared_distance,
                           summarise)

__all__ = ["CirclingConfig", "DiracGAN", "PointField", "REGULARISERS", "Trajectory", "analyse_point",
           "analyse_stepsize", "classify", "compare", "euler", "field_grid", "find_d0", "function_space_step",
           "integrate", "jacobian", "kernel_eigenvalues", "largest_stable_lr", "linearised_lyapunov",
           "load_discriminator", "lyapunov_check", "ntk", "point_field", "run_circling", "spectral_radius",
           "squared_distance", "summarise", "update_matrix"]
