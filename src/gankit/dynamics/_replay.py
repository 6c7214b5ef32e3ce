"""Fast scalar replay of an autograd computation, for long Euler loops.

A trajectory of 100,000 Euler steps needs f1', f2', f3 at one D per step. A
torch call costs microseconds of dispatch each and the autograd engine far
more, so evaluating autograd afresh every step is slow on a CPU. Instead the
autograd computation is traced once (``make_fx`` of a ``torch.func.grad``
function): the result is the forward-and-backward graph as plain aten
operations, the same arithmetic autograd performs. That graph is replayed here
on float64 numpy scalars, with a numpy twin for common operations and the torch
operation itself for any other. The replay is checked against eager torch on
given points; on any mismatch or tracing failure (for example a Python
objective that branches on the value of ``d``) the eager function is used.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

aten = torch.ops.aten


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


_NUMPY = {
    aten.log.default: np.log, aten.exp.default: np.exp, aten.log1p.default: np.log1p,
    aten.sqrt.default: np.sqrt, aten.tanh.default: np.tanh, aten.sigmoid.default: _sigmoid,
    aten.neg.default: np.negative, aten.reciprocal.default: np.reciprocal, aten.abs.default: np.abs,
    aten.sgn.default: np.sign, aten.relu.default: lambda x: np.maximum(x, 0.0),
    aten.mul.Tensor: np.multiply, aten.mul.Scalar: np.multiply,
    aten.div.Tensor: np.true_divide, aten.div.Scalar: np.true_divide,
    aten.add.Tensor: lambda a, b, alpha=1: a + alpha * b, aten.add.Scalar: lambda a, b, alpha=1: a + alpha * b,
    aten.sub.Tensor: lambda a, b, alpha=1: a - alpha * b, aten.sub.Scalar: lambda a, b, alpha=1: a - alpha * b,
    aten.rsub.Scalar: lambda a, b, alpha=1: b - alpha * a,
    aten.pow.Tensor_Scalar: np.power, aten.pow.Tensor_Tensor: np.power,
    aten.maximum.default: np.maximum, aten.minimum.default: np.minimum,
    aten.where.self: np.where,
    aten.eq.Scalar: np.equal, aten.eq.Tensor: np.equal, aten.gt.Tensor: np.greater, aten.gt.Scalar: np.greater,
    aten.lt.Tensor: np.less, aten.lt.Scalar: np.less, aten.ge.Scalar: np.greater_equal,
    aten.le.Scalar: np.less_equal,
    aten.ones_like.default: lambda x, **kw: np.float64(1.0),
    aten.zeros_like.default: lambda x, **kw: np.float64(0.0),
    aten.full_like.default: lambda x, v, **kw: np.float64(v),
    aten.threshold_backward.default: lambda g, x, th: np.where(x <= th, 0.0, g),
    aten.sigmoid_backward.default: lambda g, y: g * y * (1.0 - y),
    aten.tanh_backward.default: lambda g, y: g * (1.0 - y * y),
    aten._to_copy.default: lambda x, **kw: x, aten.lift_fresh_copy.default: lambda x: x,
    aten.clone.default: lambda x, **kw: x, aten.alias.default: lambda x: x, aten.detach.default: lambda x: x,
}


class _Slot:
    """A reference to an earlier node's value in the replay environment."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i


def _torch_fallback(op) -> Callable:
    """Run one aten op in torch on values that the numpy replay holds."""
    def run(*args, **kwargs):
        conv = [torch.as_tensor(a, dtype=torch.float64) if isinstance(a, (np.ndarray, np.generic)) else a for a in args]
        return op(*conv, **kwargs).numpy()[()]
    return run


def _compile(gm: torch.fx.GraphModule) -> Callable[[float], tuple]:
    slots, program, outputs = {}, [], None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            slots[node] = len(slots)
        elif node.op == "call_function":
            if any(isinstance(a, (list, tuple)) for a in node.args):
                raise NotImplementedError(f"list arguments in {node.target}")
            args = tuple(_Slot(slots[a]) if isinstance(a, torch.fx.Node) else a for a in node.args)
            fn = _NUMPY.get(node.target) or _torch_fallback(node.target)
            program.append((fn, args, dict(node.kwargs)))
            slots[node] = len(slots)
        elif node.op == "output":
            result = node.args[0]
            outputs = [slots[r] for r in (result if isinstance(result, (list, tuple)) else [result])]
        else:
            raise NotImplementedError(f"graph node {node.op}")

    def replay(x: float) -> tuple:
        env = [np.float64(x)]
        for fn, args, kwargs in program:
            env.append(fn(*[env[a.i] if isinstance(a, _Slot) else a for a in args], **kwargs))
        return tuple(float(env[i]) for i in outputs)
    return replay


def _agree(a: tuple, b: tuple) -> bool:
    for u, v in zip(a, b):
        if math.isnan(u) and math.isnan(v):
            continue
        if not (u == v or abs(u - v) <= 1e-9 * max(1.0, abs(u), abs(v))):
            return False
    return len(a) == len(b)


def scalar_function(fn: Callable[[torch.Tensor], tuple], check_points: Sequence[float]) -> Callable[[float], tuple]:
    """A fast float -> tuple-of-floats version of ``fn`` (0-dim float64 tensor -> tuple of 0-dim tensors).

    Returns the numpy replay of ``fn``'s traced graph when it agrees with eager
    ``fn`` on every check point (to 1e-9 relative), otherwise eager ``fn``.
    """
    def eager(x: float) -> tuple:
        return tuple(float(t) for t in fn(torch.tensor(float(x), dtype=torch.float64)))

    try:
        gm = make_fx(fn)(torch.tensor(float(check_points[0]), dtype=torch.float64))
        gm.graph.eliminate_dead_code()
        fast = _compile(gm)
        with np.errstate(all="ignore"):
            ok = all(_agree(fast(x), eager(x)) for x in check_points)
    except Exception:  # any tracing or replay failure: the eager path is always correct
        return eager
    if not ok:
        return eager

    def guarded(x: float) -> tuple:
        with np.errstate(all="ignore"):
            return fast(x)
    return guarded
