"""Batch losses of every named objective against hand-written reference formulas."""
import math

import pytest
import torch

from gankit import GankitError, Objective, get_objective
from gankit.objectives import OBJECTIVES

L_REAL = torch.tensor([2.0, -1.0, 0.5, 3.0])
L_FAKE = torch.tensor([-2.0, 0.3, 1.5, -0.7])


def _ref(name, lr, lf):
    """(loss_d, loss_g) written out by hand from the papers' formulas."""
    sig = lambda l: 1 / (1 + math.exp(-l))  # noqa: E731
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    lr, lf = lr.tolist(), lf.tolist()
    if name == "minimax":
        return (-(mean([math.log(sig(l)) for l in lr]) + mean([math.log(1 - sig(l)) for l in lf])),
                mean([math.log(1 - sig(l)) for l in lf]))
    if name == "non-saturating":
        return (-(mean([math.log(sig(l)) for l in lr]) + mean([math.log(1 - sig(l)) for l in lf])),
                -mean([math.log(sig(l)) for l in lf]))
    if name == "wasserstein":
        return -(mean(lr) - mean(lf)), -mean(lf)
    if name == "least-squares":
        return (mean([0.5 * (l - 1) ** 2 for l in lr]) + mean([0.5 * l ** 2 for l in lf]),
                mean([0.5 * (l - 1) ** 2 for l in lf]))
    if name == "hinge":
        return mean([max(0, 1 - l) for l in lr]) + mean([max(0, 1 + l) for l in lf]), -mean(lf)
    if name == "quadratic":
        return -(mean([-0.5 * l ** 2 for l in lr]) + mean(lf)), mean(lf)
    raise KeyError(name)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_batch_losses_match_reference(name):
    obj = get_objective(name)
    ref_d, ref_g = _ref(name, L_REAL, L_FAKE)
    assert obj.loss_d(L_REAL, L_FAKE).item() == pytest.approx(ref_d, rel=1e-5, abs=1e-6)
    assert obj.loss_g(L_FAKE).item() == pytest.approx(ref_g, rel=1e-5, abs=1e-6)


def test_reference_covers_every_catalogue_entry():
    assert set(OBJECTIVES) == {"minimax", "non-saturating", "wasserstein", "least-squares", "hinge", "quadratic"}


@pytest.mark.parametrize("name", OBJECTIVES)
def test_saturated_logits_give_finite_losses_and_gradients(name):
    obj = get_objective(name)
    lr = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    lf = torch.tensor([-100.0, 100.0, 100.0, -100.0], requires_grad=True)
    loss_d, loss_g = obj.loss_d(lr, lf), obj.loss_g(lf)
    (loss_d + loss_g).backward()
    for t in (loss_d, loss_g, lr.grad, lf.grad):
        assert torch.isfinite(t).all()


def test_minimax_saturated_value_is_exact_not_clamped():
    # log(1 - sigmoid(100)) = -softplus(100) = -100 (to fp32 precision); a clamped version would give ~-16 or -inf.
    obj = get_objective("minimax")
    assert obj.loss_g(torch.tensor([100.0])).item() == pytest.approx(-100.0, rel=1e-6)
    assert obj.loss_d(torch.tensor([100.0]), torch.tensor([100.0])).item() == pytest.approx(100.0, rel=1e-6)


def test_non_saturating_gradient_survives_when_d_rejects_fakes():
    lf = torch.tensor([-100.0], requires_grad=True)
    get_objective("non-saturating").loss_g(lf).backward()
    assert lf.grad.item() == pytest.approx(-1.0, abs=1e-6)  # d/dl of softplus(-l) at -100 is -1


def test_user_expressions_equal_the_catalogue():
    custom = Objective.from_expressions("-0.5*d**2", "d", "-d", domain="real")
    ref = get_objective("quadratic")
    assert custom.loss_d(L_REAL, L_FAKE).item() == pytest.approx(ref.loss_d(L_REAL, L_FAKE).item(), rel=1e-7)
    assert custom.loss_g(L_FAKE).item() == pytest.approx(ref.loss_g(L_FAKE).item(), rel=1e-7)


def test_python_callables_are_objectives_too():
    obj = Objective("mine", lambda d: d, lambda d: -d, lambda d: d, domain="real")
    assert obj.loss_d(L_REAL, L_FAKE).item() == pytest.approx(-(L_REAL.mean() - L_FAKE.mean()).item(), rel=1e-6)


def test_probability_values_reach_analysis_tools_as_plain_tensors():
    obj = get_objective("minimax")
    d = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(obj.f(2, d).sum(), d)
    assert grad.item() == pytest.approx(-1 / 0.75, rel=1e-12)  # d/dD log(1 - D)


def test_unknown_objective_suggests_a_name():
    with pytest.raises(GankitError, match='did you mean "hinge"'):
        get_objective("hinje")


def test_bad_domain_is_rejected():
    with pytest.raises(GankitError, match="domain"):
        Objective.from_expressions("d", "d", "d", domain="complex")
