"""Small autograd helpers shared by the dynamics modules.

The dynamics tools never write a derivative by hand: they evaluate the same
`Objective` functions the trainer uses and ask torch.autograd for f', f''. Two
details need care and live here: a function that is constant in ``d`` (an
expression such as ``"1"``) has no graph, so its derivative must come back as
zeros instead of an autograd error; and probability-domain functions of a
logit are evaluated through `Prob`, exactly as the trainer does, so that
``log(sigmoid(t))`` stays finite for large ``|t|``.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..objectives import Objective, Prob

DTYPE = torch.float64


def grads(y: torch.Tensor, inputs: Sequence[torch.Tensor], create_graph: bool = False,
          retain_graph: bool = False) -> list:
    """d(sum y)/d(input) for each input; zeros where y does not depend on an input.

    Args:
        y: any tensor (summed before differentiating).
        inputs: tensors that require grad, each of any shape.
        create_graph: keep the graph so the result can be differentiated again.
        retain_graph: keep the graph of ``y`` for another call (implied by create_graph).
    Returns:
        a list of tensors shaped like ``inputs``.
    """
    if not (torch.is_tensor(y) and y.requires_grad):
        return [torch.zeros_like(x) for x in inputs]
    out = torch.autograd.grad(y.sum(), list(inputs), create_graph=create_graph,
                              retain_graph=retain_graph or create_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, out)]


def leaves(states: torch.Tensor, create_graph: bool) -> list:
    """The columns of ``states`` (N, k) as k tensors (N,) that autograd can differentiate by.

    With ``create_graph`` and a ``states`` that already requires grad (an outer
    Jacobian is being taken), the columns stay attached to ``states``; otherwise
    they are fresh leaves.
    """
    if create_graph and states.requires_grad:
        return [states[:, i] for i in range(states.shape[1])]
    return [states[:, i].detach().clone().requires_grad_(True) for i in range(states.shape[1])]


def on_logits(objective: Objective, i: int, t: torch.Tensor) -> torch.Tensor:
    """f_i applied to D's output when the network's logit is ``t`` (shape kept).

    Probability-domain objectives receive ``sigmoid(t)`` as a `Prob`, so the
    trainer's stable evaluation is used; real-domain objectives receive ``t``.
    """
    fn = (objective.f1, objective.f2, objective.f3)[i - 1]
    out = fn(Prob(t) if objective.domain == "probability" else t)
    if isinstance(out, Prob):
        out = out.value
    if not torch.is_tensor(out):
        out = torch.full_like(t, float(out))
    return out


def as_states(x, dim: int = 2) -> torch.Tensor:
    """A float64 tensor (N, dim) from one point (dim,) or a batch (N, dim)."""
    s = torch.as_tensor(x, dtype=DTYPE)
    if s.dim() == 1:
        s = s[None]
    if s.dim() != 2 or s.shape[1] != dim:
        raise ValueError(f"states must have shape (N, {dim}) or ({dim},), got {tuple(s.shape)}")
    return s
