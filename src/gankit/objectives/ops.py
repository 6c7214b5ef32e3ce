"""Functions for writing objectives that stay finite on saturated discriminators.

A probability-domain objective is written in terms of ``d = sigmoid(logit)``.
The trainer passes a `Prob`, which keeps the logit, so that ``log(d)`` becomes
``-softplus(-logit)`` and ``log(1 - d)`` becomes ``-softplus(logit)``: finite
values and gradients even at logits of +-100. Every other use of ``d`` turns
it into the plain tensor ``sigmoid(logit)``. On plain tensors (the dynamics
tools) these functions are ordinary torch functions, so autograd gives f'.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Prob:
    """A probability held as its logit: ``value = sigmoid(logit)``."""

    __slots__ = ("logit",)

    def __init__(self, logit: torch.Tensor):
        self.logit = logit

    @property
    def value(self) -> torch.Tensor:
        return torch.sigmoid(self.logit)

    def complement(self) -> "Prob":
        """1 - sigmoid(l) == sigmoid(-l): stays exact in the logit."""
        return Prob(-self.logit)


def _t(x):
    return x.value if isinstance(x, Prob) else x


def _is_one(x) -> bool:
    return isinstance(x, (int, float)) and float(x) == 1.0


def add(a, b):
    return _t(a) + _t(b)


def sub(a, b):
    if _is_one(a) and isinstance(b, Prob):
        return b.complement()
    return _t(a) - _t(b)


def mul(a, b):
    return _t(a) * _t(b)


def _numbers(a, b) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float))


def div(a, b):
    a, b = _t(a), _t(b)
    if _numbers(a, b):  # IEEE arithmetic, as on tensors: 1/0 is inf, not a ZeroDivisionError
        return _tensor(a) / _tensor(b)
    return a / b


def pow_(a, b):
    a, b = _t(a), _t(b)
    if _numbers(a, b):  # (-8)**0.5 is nan, not a Python complex number
        return _tensor(a) ** _tensor(b)
    return torch.pow(torch.as_tensor(a), b) if not torch.is_tensor(a) else a ** b


def neg(a):
    return -_t(a)


def _tensor(x):
    x = _t(x)
    return x if torch.is_tensor(x) else torch.tensor(float(x), dtype=torch.float64)


def log(x):
    if isinstance(x, Prob):
        return F.logsigmoid(x.logit)
    return torch.log(_tensor(x))


def exp(x):
    return torch.exp(_tensor(x))


def sqrt(x):
    return torch.sqrt(_tensor(x))


def softplus(x):
    return F.softplus(_tensor(x))


def sigmoid(x):
    return torch.sigmoid(_tensor(x))


def relu(x):
    return torch.relu(_tensor(x))


def tanh(x):
    return torch.tanh(_tensor(x))


def log1p(x):
    if isinstance(x, Prob):
        # log(1 + sigmoid(l)) has no cancellation; compute it directly.
        return torch.log1p(x.value)
    return torch.log1p(_tensor(x))


def abs_(x):
    return torch.abs(_tensor(x))


def _pair(a, b):
    a, b = _tensor(a), _tensor(b)
    dtype = torch.result_type(a, b)
    return a.to(dtype), b.to(dtype)


def minimum(a, b):
    return torch.minimum(*_pair(a, b))


def maximum(a, b):
    return torch.maximum(*_pair(a, b))
