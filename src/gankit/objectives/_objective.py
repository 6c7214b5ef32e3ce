"""The `Objective` type: a GAN objective as three scalar functions of D's output.

Sign convention (the same everywhere in gankit)::

    D maximises  J = E_{x~p_data} f1(D(x)) + E_{z~p_z} f2(D(G(z)))
    G maximises  I = E_{z~p_z} f3(D(G(z)))

``domain`` says what ``d = D(x)`` is: ``"probability"`` (d = sigmoid(logit),
higher means "more real") or ``"real"`` (d = logit, an unbounded critic value,
higher means "more real"). Networks always return logits; the objective maps
them to ``d``. The trainer minimises ``loss_d = -J`` and ``loss_g = -I``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import GankitError
from ._expr import Expression
from .ops import Prob

DOMAINS = ("probability", "real")
Fn = Callable[[object], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """Three functions of ``d`` plus the domain of ``d``.

    Args:
        name: a short label for logs and plots.
        f1: D's reward on data, ``f1(d_real)``.
        f2: D's reward on generated samples, ``f2(d_fake)``.
        f3: G's reward on generated samples, ``f3(d_fake)``.
        domain: ``"probability"`` or ``"real"``.
        needs_lipschitz: True for critics whose objective is unbounded without a
            Lipschitz constraint (Wasserstein); the trainer warns if none is set.
        formulas: the three functions as text, where known (for configs and plots).

    Example:
        >>> import torch
        >>> from gankit.objectives import get_objective
        >>> obj = get_objective("non-saturating")
        >>> loss_d, loss_g = obj.loss_d(torch.zeros(4), torch.zeros(4)), obj.loss_g(torch.zeros(4))
        >>> round(loss_d.item(), 4), round(loss_g.item(), 4)
        (1.3863, 0.6931)
    """

    name: str
    f1: Fn
    f2: Fn
    f3: Fn
    domain: str = "real"
    needs_lipschitz: bool = False
    formulas: tuple = field(default=(), compare=False)

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise GankitError(f"objective domain must be one of {DOMAINS}, got {self.domain!r}")
        for n in ("f1", "f2", "f3"):
            if not callable(getattr(self, n)):
                raise GankitError(f"objective {self.name!r}: {n} must be callable or an expression string")

    @classmethod
    def from_expressions(cls, f1: str, f2: str, f3: str, domain: str = "real", name: str = "custom",
                         needs_lipschitz: bool = False) -> "Objective":
        """Build an objective from three safe expressions in ``d`` (see `gankit.objectives.ops`)."""
        return cls(name, Expression(f1), Expression(f2), Expression(f3), domain, needs_lipschitz, (f1, f2, f3))

    # ---- the trainer's view: batch losses from logits -------------------------------------
    def d_value(self, logits: torch.Tensor):
        """What the f's receive for these logits: a `Prob` (probability domain) or the logits."""
        return Prob(logits) if self.domain == "probability" else logits

    def _apply(self, fn: Fn, logits: torch.Tensor) -> torch.Tensor:
        out = fn(self.d_value(logits))
        if isinstance(out, Prob):
            out = out.value
        if not torch.is_tensor(out):  # a constant function
            out = torch.full_like(logits, float(out))
        return out.to(torch.float32)

    def loss_d(self, d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
        """``-J``: minus the batch mean of f1 on real plus f2 on fake (shapes (N,) -> scalar)."""
        return -(self._apply(self.f1, d_real_logits).mean() + self._apply(self.f2, d_fake_logits).mean())

    def loss_g(self, d_fake_logits: torch.Tensor) -> torch.Tensor:
        """``-I``: minus the batch mean of f3 on fake (shape (N,) -> scalar)."""
        return -self._apply(self.f3, d_fake_logits).mean()

    def to_output(self, logits: torch.Tensor) -> torch.Tensor:
        """D's output in the objective's domain (probabilities or critic values), for reports."""
        return torch.sigmoid(logits) if self.domain == "probability" else logits

    # ---- the analysis tools' view: plain functions of d -----------------------------------
    def f(self, i: int, d: torch.Tensor) -> torch.Tensor:
        """f_i evaluated on a plain tensor ``d`` (a probability or a real value), for autograd."""
        fn = (self.f1, self.f2, self.f3)[i - 1]
        out = fn(d)
        return out if torch.is_tensor(out) else torch.full_like(d, float(out))

    def describe(self) -> str:
        if self.formulas:
            f1, f2, f3 = self.formulas
            return f"{self.name} ({self.domain}): f1={f1}, f2={f2}, f3={f3}"
        return f"{self.name} ({self.domain})"
