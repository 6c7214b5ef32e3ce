"""The circling experiment's measurements on known curves, and a tiny end-to-end run."""
import math

import numpy as np
import pytest
import torch

from gankit.dynamics.circling import (CirclingConfig, kde, mixture_density, predicted_rotation, run_circling,
                                      sample_mixture, winding)
from gankit.errors import GankitError


def test_winding_of_a_circle_and_a_straight_approach():
    t = np.linspace(0, 4 * math.pi, 801)
    circle = np.stack([np.cos(t), 3 * np.sin(t)], 1) + np.array([0.5, 1.0])  # two turns, anisotropic axes
    w = winding(circle, np.array([0.5, 1.0]), smooth=1)
    assert w["turns"] == pytest.approx(2.0, abs=1e-9)
    assert w["rotation_index"] == pytest.approx(1.0, abs=1e-3)
    assert w["radial_index"] == pytest.approx(0.0, abs=1e-2)
    line = np.stack([np.linspace(1, 0.01, 100), np.linspace(2, 0.02, 100)], 1)
    w = winding(line, np.zeros(2), smooth=1)
    assert w["turns"] == pytest.approx(0.0, abs=1e-12)
    assert w["radial_index"] == pytest.approx(-1.0, abs=1e-9)
    assert w["distance_ratio"] == pytest.approx(np.linalg.norm(line[-10:], axis=1).mean() / np.linalg.norm(line[0]),
                                                rel=1e-12)


def test_clockwise_spiral_has_negative_turns():
    t = np.linspace(0, 6 * math.pi, 2000)
    spiral = np.exp(-0.1 * t)[:, None] * np.stack([np.cos(-t), np.sin(-t)], 1)
    w = winding(spiral, np.zeros(2), smooth=3)
    assert w["turns"] == pytest.approx(-3.0, abs=0.01)
    assert w["rotation_index"] == pytest.approx(-1 / math.sqrt(1.01), abs=0.02)  # sin of the spiral's angle


def test_mixture_density_and_kde():
    x = torch.linspace(-2, 2, 4001, dtype=torch.float64)
    for smooth in (0.0, 0.05):
        assert float(torch.trapezoid(mixture_density(x, smooth), x)) == pytest.approx(1.0, abs=1e-6)
    samples = sample_mixture(20000, torch.Generator().manual_seed(0))[:, 0].double()
    est = kde(samples, torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64), 0.05)
    ref = mixture_density(torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64), 0.05)
    assert est.numpy() == pytest.approx(ref.numpy(), abs=0.08)


def test_predicted_rotation_of_the_point_field():
    # non-saturating: lambda^2 + 8 p_d lambda + 4 = 0, so lambda = -4 p_d +- 2i sqrt(1 - 4 p_d^2) for p_d < 1/2
    # and |Im| / |lambda| = sqrt(1 - 4 p_d^2); for p_d > 1/2 the rest point is a node
    assert predicted_rotation("non-saturating", 0.36)["rotation_index"] == pytest.approx(math.sqrt(1 - 4 * 0.36 ** 2),
                                                                                         abs=1e-9)
    node = predicted_rotation("non-saturating", 1.5)
    assert node["classification"] == "stable node" and node["rotation_index"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("norm,act", [("none", "relu"), ("batch", "tanh")])
def test_short_run_end_to_end(norm, act):
    res = run_circling(CirclingConfig(norm=norm, activation=act, steps=30, kde_samples=256, probes=(-0.5, 0.5)))
    assert res["record"]["d"].shape == (31, 2) and res["record"]["p_g"].shape == (31, 2)
    assert np.all(np.isfinite(res["record"]["p_g"])) and np.all(res["record"]["p_g"] >= 0)
    assert set(res["summary"]) == {"mean_abs_turns", "mean_rotation_index", "mean_radial_index",
                                   "median_distance_ratio", "mean_predicted_rotation_index"}
    again = run_circling(CirclingConfig(norm=norm, activation=act, steps=30, kde_samples=256, probes=(-0.5, 0.5)))
    assert again["record"]["p_g"] == pytest.approx(res["record"]["p_g"], abs=1e-6)  # seeded: reproducible


def test_bad_architecture_names_are_user_errors():
    with pytest.raises(GankitError, match="normalisation"):
        run_circling(CirclingConfig(norm="group", steps=1))
    with pytest.raises(GankitError, match="activation"):
        run_circling(CirclingConfig(activation="swish", steps=1))
