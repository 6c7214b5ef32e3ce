"""A safe parser for objective expressions such as ``log(d)`` or ``-0.5*d**2``.

The text is parsed with Python's ``ast`` module and then *compiled into a tree
of closures*; nothing is ever handed to ``eval`` or ``exec``. Only numbers, the
variable ``d``, the constants ``pi`` and ``e``, arithmetic operators and a
whitelist of functions are accepted; anything else (attribute access, imports,
subscripts, keyword arguments, other names) is rejected with a `GankitError`.
"""
from __future__ import annotations

import ast
import math
from typing import Callable

from ..errors import GankitError, did_you_mean
from . import ops

MAX_LENGTH = 500
MAX_DEPTH = 40
# Powers are limited so that a config cannot ask for 9**9**9.
MAX_EXPONENT = 16.0

FUNCTIONS: dict[str, Callable] = {
    "log": ops.log, "exp": ops.exp, "sqrt": ops.sqrt, "softplus": ops.softplus,
    "sigmoid": ops.sigmoid, "relu": ops.relu, "abs": ops.abs_, "min": ops.minimum,
    "max": ops.maximum, "tanh": ops.tanh, "log1p": ops.log1p,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINOPS = {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.Pow: ops.pow_}


class Expression:
    """A parsed expression in ``d``, callable on tensors (or logit-carrying probabilities)."""

    def __init__(self, text: str):
        self.text = text
        self._fn = compile_expression(text)

    def __call__(self, d):
        return self._fn(d)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str) -> Callable:
    """Parse ``text`` into a function of ``d``; raise `GankitError` for anything unsafe."""
    if not isinstance(text, str):
        raise GankitError(f"objective expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise GankitError(f"objective expression is longer than {MAX_LENGTH} characters; shorten it")
    if not text.strip():
        raise GankitError("objective expression is empty; write a formula in d, e.g. 'log(d)'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise GankitError(f"objective expression {text!r} is not valid arithmetic: {exc.msg if hasattr(exc, 'msg') else exc}") from None
    except RecursionError:
        raise GankitError(f"objective expression {text!r} is nested too deeply") from None
    return _build(tree.body, text, 0)


def _reject(text: str, what: str):
    raise GankitError(
        f"objective expression {text!r}: {what} is not allowed; use numbers, d, + - * / **, "
        f"and the functions {', '.join(sorted(FUNCTIONS))}")


def _build(node: ast.AST, text: str, depth: int) -> Callable:
    if depth > MAX_DEPTH:
        raise GankitError(f"objective expression {text!r} is nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            _reject(text, f"the constant {node.value!r}")
        value = float(node.value)
        return lambda d: value
    if isinstance(node, ast.Name):
        if node.id == "d":
            return lambda d: d
        if node.id in CONSTANTS:
            value = CONSTANTS[node.id]
            return lambda d: value
        _reject(text, f'the name "{node.id}"{did_you_mean(node.id, ["d", *CONSTANTS, *FUNCTIONS])}')
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, text, depth + 1)
        if isinstance(node.op, ast.UAdd):
            return inner
        return lambda d: ops.neg(inner(d))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        op = _BINOPS[type(node.op)]
        left, right = _build(node.left, text, depth + 1), _build(node.right, text, depth + 1)
        if isinstance(node.op, ast.Pow):
            _check_exponent(node.right, text)
        return lambda d: op(left(d), right(d))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            _reject(text, "calling anything but a plain function name")
        name = node.func.id
        if name not in FUNCTIONS:
            _reject(text, f'the function "{name}"{did_you_mean(name, FUNCTIONS)}')
        if node.keywords:
            _reject(text, "keyword arguments")
        n_args = 2 if name in ("min", "max") else 1
        if len(node.args) != n_args:
            raise GankitError(f"objective expression {text!r}: {name}() takes {n_args} argument(s), got {len(node.args)}")
        args = [_build(a, text, depth + 1) for a in node.args]
        fn = FUNCTIONS[name]
        if n_args == 1:
            (a,) = args
            return lambda d: fn(a(d))
        a, b = args
        return lambda d: fn(a(d), b(d))
    if isinstance(node, ast.Attribute):
        _reject(text, "attribute access")
    _reject(text, f"the construct {type(node).__name__}")


def _check_exponent(node: ast.AST, text: str) -> None:
    """Allow only a literal exponent of modest size (or d itself)."""
    value = node
    sign = 1.0
    while isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(value.op, ast.USub) else sign
        value = value.operand
    if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        if abs(float(value.value)) > MAX_EXPONENT:
            raise GankitError(f"objective expression {text!r}: exponent {sign * value.value} is larger than {MAX_EXPONENT:g}")
        return
    if isinstance(value, ast.Name) and value.id == "d":
        return
    _reject(text, "an exponent other than a number or d")
