"""Spectral radius of discrete updates and the largest stable learning rate."""
import numpy as np
import pytest

from gankit.dynamics.field import point_field
from gankit.dynamics.linear import jacobian
from gankit.dynamics.stepsize import analyse_stepsize, largest_stable_lr, spectral_radius, update_matrix
from gankit.dynamics.trajectories import euler
from gankit.objectives import get_objective

MINIMAX = point_field(get_objective("minimax"), 0.2)
J_MINIMAX = np.array([[-1.6, -2.0], [2.0, 0.0]])


def test_simultaneous_limit_is_minus_two_re_over_modulus_squared():
    lr = largest_stable_lr(jacobian(MINIMAX, (0.5, 0.2)), "simultaneous", MINIMAX.d_mask)
    # oracle: |1 + lr*lambda| < 1  <=>  lr < -2 Re(lambda) / |lambda|^2 = 1.6 / 4
    assert lr == pytest.approx(0.4, abs=1e-9)


def test_alternating_limit_matches_jury_criterion():
    lr = largest_stable_lr(jacobian(MINIMAX, (0.5, 0.2)), "alternating", MINIMAX.d_mask)
    # oracle: det M = 1 - 1.6 lr, tr M = 2 - 1.6 lr - 4 lr^2; |tr| < 1 + det gives 4 lr^2 + 3.2 lr - 4 < 0
    assert lr == pytest.approx((-3.2 + np.sqrt(3.2 ** 2 + 64)) / 8, abs=1e-9)


def test_wasserstein_never_stable_but_alternating_stays_bounded_below_two():
    f = point_field(get_objective("wasserstein"), 0.2)
    J = jacobian(f, (0.0, 0.2))
    assert largest_stable_lr(J, "simultaneous", f.d_mask) is None
    assert largest_stable_lr(J, "simultaneous", f.d_mask, bounded=True) is None
    assert largest_stable_lr(J, "alternating", f.d_mask) is None
    assert largest_stable_lr(J, "alternating", f.d_mask, bounded=True) == pytest.approx(2.0, abs=1e-8)
    assert spectral_radius(J, 0.5, "alternating", f.d_mask) == pytest.approx(1.0, abs=1e-12)
    assert spectral_radius(J, 0.5, "simultaneous", f.d_mask) == pytest.approx(np.sqrt(1.25), abs=1e-12)


@pytest.mark.parametrize("method", ["simultaneous", "alternating"])
def test_update_matrix_is_the_jacobian_of_one_euler_step(method):
    lr, h = 0.3, 1e-6
    M = update_matrix(jacobian(MINIMAX, (0.5, 0.2)), lr, method, MINIMAX.d_mask)
    cols = []
    for e in np.eye(2):
        plus = euler(MINIMAX, np.array([0.5, 0.2]) + h * e, lr, 1, method).final
        minus = euler(MINIMAX, np.array([0.5, 0.2]) - h * e, lr, 1, method).final
        cols.append((plus - minus) / (2 * h))
    assert M == pytest.approx(np.stack(cols, 1), abs=1e-6)


def test_analyse_stepsize_curves():
    lrs = np.array([0.1, 0.39, 0.41, 0.6, 0.7])
    res = analyse_stepsize(MINIMAX, (0.5, 0.2), lrs)
    sim = np.array(res["simultaneous"]["spectral_radius"])
    assert list(sim < 1) == [True, True, False, False, False]
    alt = np.array(res["alternating"]["spectral_radius"])
    assert list(alt < 1) == [True, True, True, True, False]
    assert res["jacobian"] == pytest.approx(J_MINIMAX, abs=1e-10)
