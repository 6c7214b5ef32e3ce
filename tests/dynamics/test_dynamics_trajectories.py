"""Euler steps, the adaptive ODE solver and Lyapunov checks on the point-wise field."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit.dynamics.field import point_field
from gankit.dynamics.trajectories import (box_grid, distance_to, euler, integrate, linearised_lyapunov,
                                          lyapunov_check, squared_distance, summarise)
from gankit.errors import GankitError
from gankit.objectives import get_objective

WASSERSTEIN = point_field(get_objective("wasserstein"), 0.2)


def test_minimax_100k_simultaneous_euler_steps_reach_the_rest_point_quickly():
    f = point_field(get_objective("minimax"), 0.2)
    traj = euler(f, (0.75, 0.9), lr=1e-3, steps=100_000, method="simultaneous")
    assert not traj.diverged
    assert traj.final == pytest.approx([0.5, 0.2], abs=1e-3)
    assert traj.t[-1] == pytest.approx(100.0, rel=1e-12)


def test_alternating_steps_also_converge_for_non_saturating():
    f = point_field(get_objective("non-saturating"), 0.2)
    traj = euler(f, (0.75, 0.9), lr=1e-2, steps=5_000, method="alternating")
    assert traj.final == pytest.approx([0.5, 0.2], abs=1e-6)
    assert summarise(traj, (0.5, 0.2))["outcome"] == "converges"


def test_wasserstein_simultaneous_euler_grows_exactly_as_the_linear_map_says():
    lr, steps = 1e-2, 500
    traj = euler(WASSERSTEIN, (0.75, 0.9), lr, steps, record_every=steps)
    r = distance_to(traj.states, (0.0, 0.2))
    # oracle: each step multiplies the distance by |1 + i lr| = sqrt(1 + lr^2)
    assert r[-1] / r[0] == pytest.approx((1 + lr ** 2) ** (steps / 2), rel=1e-10)


def test_wasserstein_alternating_steps_stay_bounded():
    traj = euler(WASSERSTEIN, (0.75, 0.9), 0.1, 2_000, method="alternating")
    r = distance_to(traj.states, (0.0, 0.2))
    assert r.max() / r[0] == pytest.approx(1.0, abs=0.06)
    assert r.min() / r[0] == pytest.approx(1.0, abs=0.06)
    assert summarise(traj, (0.0, 0.2))["outcome"] == "cycles"


@settings(max_examples=15, deadline=None)
@given(d=st.floats(-2.0, 2.0), p=st.floats(0.0, 2.0), p_d=st.floats(0.05, 1.5))
def test_wasserstein_flow_conserves_squared_distance(d, p, p_d):
    f = point_field(get_objective("wasserstein"), p_d)
    v0 = (d - f.d0) ** 2 + (p - p_d) ** 2
    traj = integrate(f, (d, p), t_end=10.0, n_eval=50)
    v = (traj.states[:, 0] - f.d0) ** 2 + (traj.states[:, 1] - p_d) ** 2
    assert np.max(np.abs(v - v0)) == pytest.approx(0.0, abs=1e-7 * (1 + v0))


def test_ode_reaches_the_stable_focus():
    f = point_field(get_objective("minimax"), 0.2)
    traj = integrate(f, (0.75, 0.9), 60.0)
    assert traj.final == pytest.approx([0.5, 0.2], abs=1e-9)


def test_divergence_is_detected_and_stops_the_run():
    f = point_field(get_objective("minimax"), 0.2)
    traj = euler(f, (0.75, 0.9), lr=5.0, steps=1000)  # overshoots out of (0, 1): log of a negative number
    assert traj.diverged and len(traj.t) < 1000
    assert summarise(traj, (0.5, 0.2))["outcome"] == "diverges"


def test_bad_arguments_are_user_errors():
    with pytest.raises(GankitError):
        euler(WASSERSTEIN, (0.0, 0.0), lr=-1.0, steps=10)
    with pytest.raises(GankitError):
        euler(WASSERSTEIN, (0.0, 0.0), lr=0.1, steps=10, method="leapfrog")
    with pytest.raises(GankitError):
        integrate(WASSERSTEIN, (0.0, float("nan")), 1.0)


def test_lyapunov_linearised_candidate_decreases_near_a_stable_focus():
    f = point_field(get_objective("minimax"), 0.2)
    V, P, pd = linearised_lyapunov(f, (0.5, 0.2))
    assert pd
    # J^T P + P J = -I with J = [[-1.6, -2], [2, 0]]
    J = np.array([[-1.6, -2.0], [2.0, 0.0]])
    assert J.T @ P + P @ J == pytest.approx(-np.eye(2), abs=1e-10)
    res = lyapunov_check(f, V, box_grid((0.5, 0.2), 0.05, 10, "probability"))
    assert res["decreasing"] and res["fraction_decreasing"] == 1.0


def test_lyapunov_distance_is_constant_along_the_wasserstein_flow():
    res = lyapunov_check(WASSERSTEIN, squared_distance((0.0, 0.2)), box_grid((0.0, 0.2), 0.5, 10))
    assert res["fraction_nonincreasing"] == 1.0 and res["fraction_decreasing"] == 0.0
    assert res["max_dV_dt"] == pytest.approx(0.0, abs=1e-12)
    assert linearised_lyapunov(WASSERSTEIN, (0.0, 0.2)) == (None, None, False)  # a centre has none


def test_lyapunov_check_finds_growth_near_an_unstable_point():
    from gankit.objectives import Objective

    # f3 increasing the "wrong" way round makes the rest point a saddle
    f = point_field(Objective.from_expressions("-0.5*d**2", "d", "d"), 0.2)
    res = lyapunov_check(f, squared_distance((1.0, 0.2)), box_grid((1.0, 0.2), 0.1, 10))
    assert 0.0 < res["fraction_decreasing"] < 1.0
    assert res["max_dV_dt"] > 0 > res["min_dV_dt"]
    assert math.isfinite(res["max_dV_dt"])
