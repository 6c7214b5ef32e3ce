"""Dirac-GAN: eigenvalues at equilibrium against Mescheder et al.'s formulas, and trajectory outcomes."""
import cmath

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit.dynamics.dirac import DiracGAN
from gankit.dynamics.linear import analyse_point, eigenvalues_of
from gankit.dynamics.trajectories import euler, summarise
from gankit.errors import GankitError
from gankit.objectives import Objective, get_objective

# |f'(0)|: derivative with respect to the logit at 0 of G's reward (h3) and of D's fake reward (h2 = -h3')
FPRIME = {"minimax": 0.5, "non-saturating": 0.5, "wasserstein": 1.0}


def _eigs(name, reg="none", gamma=0.0):
    lam = eigenvalues_of(analyse_point(DiracGAN(get_objective(name), reg, gamma), (0.0, 0.0)))
    return np.sort_complex(lam)


@pytest.mark.parametrize("name", sorted(FPRIME))
def test_unregularised_eigenvalues_are_plus_minus_i_fprime(name):
    lam = _eigs(name)
    assert lam.real == pytest.approx([0.0, 0.0], abs=1e-12)
    assert lam.imag == pytest.approx([-FPRIME[name], FPRIME[name]], abs=1e-12)
    assert analyse_point(DiracGAN(get_objective(name)), (0, 0))["classification"] == "centre"


@settings(max_examples=12, deadline=None)
@given(gamma=st.floats(0.01, 4.0), name=st.sampled_from(sorted(FPRIME)), reg=st.sampled_from(["r1", "r2"]))
def test_r1_r2_eigenvalues_follow_mescheder(gamma, name, reg):
    f = FPRIME[name]
    root = cmath.sqrt(gamma ** 2 / 4 - f ** 2)
    expected = np.sort_complex(np.array([-gamma / 2 - root, -gamma / 2 + root]))
    assert _eigs(name, reg, gamma) == pytest.approx(expected, abs=1e-9)


def test_consensus_eigenvalues_are_those_of_j_minus_gamma_jtj():
    gamma = 0.3
    J = np.array([[0.0, 0.5], [-0.5, 0.0]])  # minimax at (theta, psi) = 0
    expected = np.sort_complex(np.linalg.eigvals(J - gamma * J.T @ J))
    assert _eigs("minimax", "consensus", gamma) == pytest.approx(expected, abs=1e-10)


def test_instance_noise_damps_psi_by_sigma_squared_times_h_second_derivatives():
    sigma = 0.5
    # oracle: d(dpsi/dt)/dpsi = sigma^2 (h1''(0) + h2''(0)) = sigma^2 * (-1/4 - 1/4) for minimax
    J = np.array([[0.0, 0.5], [-0.5, -sigma ** 2 / 2]])
    assert _eigs("minimax", "noise", sigma) == pytest.approx(np.sort_complex(np.linalg.eigvals(J)), abs=1e-10)
    # a linear objective is blind to symmetric noise
    assert _eigs("wasserstein", "noise", sigma).imag == pytest.approx([-1.0, 1.0], abs=1e-10)


def test_field_matches_hand_derivation_away_from_equilibrium():
    g = DiracGAN(get_objective("minimax"), "r1", 0.4)
    theta, psi = 0.7, -1.3
    s = 1 / (1 + np.exp(-psi * theta))
    # h2 = log(1 - sigmoid), h3 = -log(1 - sigmoid): dpsi = -theta s - gamma psi, dtheta = psi s
    expected = [psi * s, -theta * s - 0.4 * psi]
    assert g.field(torch.tensor([[theta, psi]], dtype=torch.float64))[0].tolist() == pytest.approx(expected, rel=1e-12)


def test_equilibrium_is_a_rest_point_for_every_regulariser():
    for reg in ("none", "r1", "r2", "gp", "noise", "consensus"):
        info = analyse_point(DiracGAN(get_objective("non-saturating"), reg, 0.3), (0.0, 0.0))
        assert info["residual"] == pytest.approx(0.0, abs=1e-12)


def test_simultaneous_diverges_alternating_cycles_r1_converges():
    obj = get_objective("minimax")
    sim = summarise(euler(DiracGAN(obj), (1.0, 1.0), 0.2, 500, "simultaneous"), (0, 0))
    alt = summarise(euler(DiracGAN(obj), (1.0, 1.0), 0.2, 500, "alternating"), (0, 0))
    r1 = summarise(euler(DiracGAN(obj, "r1", 0.3), (1.0, 1.0), 0.2, 500, "alternating"), (0, 0))
    assert sim["outcome"] == "diverges" and sim["distance_ratio"] > 2.0
    assert alt["outcome"] == "cycles" and alt["distance_ratio"] == pytest.approx(1.0, abs=0.1)
    assert r1["outcome"] == "converges" and r1["distance_end"] == pytest.approx(0.0, abs=1e-4)


def test_simultaneous_growth_per_step_matches_linearisation_for_wasserstein():
    lr, steps = 0.05, 200
    traj = euler(DiracGAN(get_objective("wasserstein")), (0.3, 0.4), lr, steps, record_every=steps)
    r = np.linalg.norm(traj.states, axis=1)
    assert r[-1] / r[0] == pytest.approx((1 + lr ** 2) ** (steps / 2), rel=1e-10)  # linear field: exact


def test_user_objective_and_bad_regulariser():
    obj = Objective.from_expressions("-0.5*d**2", "d", "-d")  # f2'(0) = 1, f3'(0) = -1
    assert _eigs_custom(obj).imag == pytest.approx([-1.0, 1.0], abs=1e-12)
    with pytest.raises(GankitError, match="regulariser"):
        DiracGAN(obj, "r3")
    with pytest.raises(GankitError, match="gamma"):
        DiracGAN(obj, "r1", -1.0)


def _eigs_custom(obj):
    return np.sort_complex(eigenvalues_of(analyse_point(DiracGAN(obj), (0.0, 0.0))))
