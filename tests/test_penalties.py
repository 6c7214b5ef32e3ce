"""Penalties against closed forms on a linear critic D(x) = <w, x> + b."""
import pytest
import torch

from gankit import GankitError
from gankit.penalties import clip_weights, gradient_penalty, penalty_fn, r1, r2


def _linear_critic(w):
    return lambda x: x.flatten(1) @ w


def test_r1_r2_of_linear_critic_is_squared_weight_norm():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])
    D = _linear_critic(w)
    x = torch.randn(5, 1, 2, 2)
    assert r1(D, x).tolist() == pytest.approx([25.0] * 5, rel=1e-6)
    assert r2(D, x).tolist() == pytest.approx([25.0] * 5, rel=1e-6)


def test_gradient_penalty_of_linear_critic():
    w = torch.tensor([0.6, 0.8, 0.0, 2.0])  # ||w|| = sqrt(5)
    gp = gradient_penalty(_linear_critic(w), torch.randn(6, 4), torch.randn(6, 4))
    assert gp.shape == (6,)
    assert gp.tolist() == pytest.approx([(5 ** 0.5 - 1) ** 2] * 6, rel=1e-5)


def test_penalties_backpropagate_to_parameters():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    D = lambda x: net(x).squeeze(1)  # noqa: E731
    r1(D, torch.randn(3, 1, 2, 2)).mean().backward()
    # every weight shapes grad_x D; the output bias does not, so it gets no gradient
    for layer in (net[1], net[3]):
        assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
        assert layer.weight.grad.abs().sum() > 0
    assert net[3].bias.grad is None


def test_clip_weights():
    lin = torch.nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.mul_(100)
    clip_weights(lin, 0.01)
    assert lin.weight.abs().max().item() == pytest.approx(0.01, rel=1e-6)


def test_unknown_penalty():
    with pytest.raises(GankitError, match='did you mean "gp"'):
        penalty_fn("gpp")
