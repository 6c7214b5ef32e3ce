"""Point-wise field: D0, rest points, Jacobians and classes against hand-derived oracles."""
import math

import numpy as np
import pytest
import torch

from gankit.dynamics.field import find_d0, find_zeros, point_field
from gankit.dynamics.linear import analyse_point, classify, field_grid, jacobian
from gankit.errors import GankitError
from gankit.objectives import Objective, get_objective


def _only_rest(name, p_d=0.2):
    f = point_field(get_objective(name), p_d)
    (rest,) = f.rest_points()
    return f, rest, analyse_point(f, rest)


@pytest.mark.parametrize("name", ["minimax", "non-saturating"])
def test_probability_objectives_stable_focus_at_half(name):
    f, rest, info = _only_rest(name)
    assert f.d0 == pytest.approx(0.5, abs=1e-12)
    assert rest == pytest.approx([0.5, 0.2], abs=1e-12)
    # oracle: J = [[p_d f1'' + p_g f2'', f2'], [f3', 0]] = [[-1.6, -2], [2, 0]] -> -0.8 +- i sqrt(3.36)
    assert np.array(info["jacobian"]) == pytest.approx(np.array([[-1.6, -2.0], [2.0, 0.0]]), abs=1e-10)
    (re1, im1), (re2, im2) = info["eigenvalues"]
    assert (re1, re2) == pytest.approx((-0.8, -0.8), abs=1e-10)
    assert sorted([im1, im2]) == pytest.approx([-1.8330, 1.8330], abs=1e-4)
    assert sorted([im1, im2])[1] == pytest.approx(math.sqrt(3.36), abs=1e-10)
    assert info["classification"] == "stable focus"
    assert f.is_correct(rest)


def test_wasserstein_is_a_centre_with_d0_by_convention():
    f, rest, info = _only_rest("wasserstein")
    assert f.d0 == 0.0 and "every D" in f.d0_note
    assert rest == pytest.approx([0.0, 0.2], abs=1e-12)
    assert sorted(im for _, im in info["eigenvalues"]) == pytest.approx([-1.0, 1.0], abs=1e-12)
    assert [re for re, _ in info["eigenvalues"]] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert info["classification"] == "centre"


def test_quadratic_rest_point_at_one_is_locally_stable():
    f, rest, info = _only_rest("quadratic")
    assert rest == pytest.approx([1.0, 0.2], abs=1e-10)
    # oracle: J = [[-p_d, 1], [-1, 0]] -> -p_d/2 +- i sqrt(1 - p_d^2/4)
    assert [re for re, _ in info["eigenvalues"]] == pytest.approx([-0.1, -0.1], abs=1e-10)
    assert max(im for _, im in info["eigenvalues"]) == pytest.approx(math.sqrt(0.99), abs=1e-10)
    assert info["stable"] and info["classification"] == "stable focus"


def test_user_expressions_need_no_code():
    # a least-squares-like objective written by hand, targets 1 (real) and -1 (fake)
    obj = Objective.from_expressions("-(d - 1)**2", "-(d + 1)**2", "-(d - 1)**2", domain="real")
    f = point_field(obj, 0.5)
    assert f.d0 == pytest.approx(0.0, abs=1e-12)
    rests = f.rest_points()
    correct = [p for p in rests if f.is_correct(p)]
    assert len(correct) == 1 and correct[0] == pytest.approx([0.0, 0.5], abs=1e-10)
    info = analyse_point(f, correct[0])
    # oracle: J = [[-2 p_d - 2 p_g, f2'(0)], [f3'(0), 0]] = [[-2, -2], [2, 0]] -> -1 +- i sqrt(3)
    assert [re for re, _ in info["eigenvalues"]] == pytest.approx([-1.0, -1.0], abs=1e-10)
    assert max(im for _, im in info["eigenvalues"]) == pytest.approx(math.sqrt(3), abs=1e-10)


def test_least_squares_second_rest_point_is_an_incorrect_saddle():
    f = point_field(get_objective("least-squares"), 0.2)
    rests = sorted(f.rest_points(), key=lambda p: p[0])
    assert len(rests) == 2
    assert rests[1] == pytest.approx([1.5, -0.2 / 3], abs=1e-10)  # f3(D) = f3(0.5) again at D = 1.5
    assert not f.is_correct(rests[1])
    assert analyse_point(f, rests[1])["classification"] == "saddle"


def test_hinge_plateau_gives_d0_at_its_midpoint():
    d0, note = find_d0(get_objective("hinge"))
    assert d0 == pytest.approx(0.0, abs=1e-9)


def test_no_optimal_d_is_a_user_error():
    with pytest.raises(GankitError, match="no zero"):
        point_field(Objective.from_expressions("d", "d", "d"), 0.2)
    with pytest.raises(GankitError, match="p_d"):
        point_field(get_objective("minimax"), -1.0)
    assert point_field(Objective.from_expressions("d", "d", "d"), 0.2, d0=0.3).d0 == 0.3


def test_field_values_match_oracle_and_jacobian_matches_finite_differences():
    f = point_field(get_objective("minimax"), 0.3)
    s = torch.tensor([[0.7, 0.4]], dtype=torch.float64)
    d, p = 0.7, 0.4
    expected = [0.3 / d - p / (1 - d), -math.log(1 - d) + math.log(0.5)]
    assert f.field(s)[0].tolist() == pytest.approx(expected, rel=1e-12)
    J = jacobian(f, [0.7, 0.4])
    h = 1e-6
    fd = np.stack([(f.field(s + h * e).numpy()[0] - f.field(s - h * e).numpy()[0]) / (2 * h)
                   for e in torch.eye(2, dtype=torch.float64)], 1)
    assert J == pytest.approx(fd, abs=1e-7)


def test_fast_velocity_agrees_with_batched_field():
    for name in ("minimax", "non-saturating", "wasserstein", "quadratic", "hinge"):
        f = point_field(get_objective(name), 0.3)
        v = f.velocity_fn()
        for state in [(0.3, 0.1), (0.6, 0.5), (0.9, 1.2)]:
            ref = f.field(torch.tensor([state], dtype=torch.float64))[0].tolist()
            assert list(v(state)) == pytest.approx(ref, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("eigs,expected", [
    ([-1 + 2j, -1 - 2j], "stable focus"), ([1 + 2j, 1 - 2j], "unstable focus"), ([2j, -2j], "centre"),
    ([-1, -3], "stable node"), ([1, 3], "unstable node"), ([-1, 2], "saddle"), ([0, -1], "degenerate"),
])
def test_classify(eigs, expected):
    assert classify(np.array(eigs, dtype=complex)) == expected


def test_find_zeros_reports_slopes():
    roots = find_zeros(lambda x: (np.cos(x), np.ones_like(x)), np.linspace(0.1, 6.0, 101))
    assert [r for r, _ in roots] == pytest.approx([math.pi / 2, 3 * math.pi / 2], abs=1e-12)
    assert [s for _, s in roots] == [-1, 1]
    assert find_zeros(lambda x: (0 * x, np.ones_like(x)), np.linspace(0, 1, 5)) == [("all", 0)]


def test_rest_point_of_a_rapidly_growing_f3_is_found():
    # exp(d) overflows at the ends of the scan; the root of exp(D) = exp(D0) must still be D0 = 0
    f = point_field(Objective.from_expressions("d", "-d", "exp(d)"), 0.2)
    (rest,) = f.rest_points()
    assert rest == pytest.approx([0.0, 0.2], abs=1e-12)


def test_field_grid_shapes_follow_streamplot_layout():
    f = point_field(get_objective("wasserstein"), 0.2)
    g = field_grid(f, (-1, 1), (0, 2), n=7)
    assert g["u"].shape == (7, 7) and g["x"].shape == (7,)
    # u = p_d - p_g depends on the row (y), v = D depends on the column (x)
    assert g["u"][:, 0] == pytest.approx(0.2 - g["y"], abs=1e-12)
    assert g["v"][0, :] == pytest.approx(g["x"], abs=1e-12)
