"""Health monitors: small pure functions of logged statistics that say what looks wrong.

The history is the list of rows of ``metrics.jsonl`` (oldest first, the current
step last), so a resumed run rebuilds exactly the state an uninterrupted run
had. The loop calls `assess` on logged steps, writes its flags as ``health/*``
scalars and reports `messages` (rate-limited) through the `Reporter`. A monitor
knows the objective only through its domain: ``"probability"`` (D's output is a
probability, 0.5 = undecided) or ``"real"`` (a critic value with no fixed
scale), never through its name. Thresholds are deliberately loose: a warning is
a hint to look at the samples, not a verdict. `first_nonfinite` finds the NaN/Inf
that stops (or rolls back) a run; `check_objective` tries an objective once before
training, so that a broken user formula is one clear error instead of a traceback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .data import to_float
from .errors import GankitError
from .objectives import Objective
from .objectives.ops import Prob

WINDOW = 5             # logged rows a condition must hold for before it is flagged
REPEAT = 50            # while a flag stays on, repeat its message every REPEAT logged rows
HISTORY = 256          # rows the loop keeps (and reloads on resume)
SAMPLES = 256          # fixed-noise samples the loop draws for the sample statistics
PER_CLASS = 20         # samples per class needed before missing classes are counted
NEAR_ZERO = 0.05       # D(G(z)) below this: D rejects every sample
VANISHED = 0.1         # G's gradient norm below this fraction of its peak: vanished
UNDECIDED = 0.02       # |D - 0.5| below this: D cannot tell real from fake
FLAT = 1e-6            # relative spread of loss/d below this over WINDOW rows: D is not learning
COLLAPSED = 0.5        # sample diversity below this fraction of both its peak and the data's
EARLY = 0.25           # "early": the first quarter of the run (in images)
FLAGS = ("health/d_winning", "health/d_failing", "health/mode_collapse")


# What a NaN/Inf is looked for in; the first bad value in the order a step computed them is nearest the cause.
CHECKED = ("loss/", "grad_norm/", "weight_max/")


def first_nonfinite(values: dict, prefixes=CHECKED) -> Optional[tuple]:
    """The first (key, value) of ``values`` (in their order) under one of ``prefixes`` that is NaN or Inf."""
    for key, value in values.items():
        if key.startswith(prefixes) and not math.isfinite(value):
            return key, value
    return None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _values(history: list, key: str) -> list:
    return [r[key] for r in history if _finite(r.get(key))]


def _recent(history: list, keys: tuple, n: int = WINDOW) -> Optional[list]:
    """The last ``n`` rows holding all ``keys`` with finite values, or None when there are fewer."""
    rows = []
    for r in reversed(history):
        if all(_finite(r.get(k)) for k in keys):
            rows.append(r)
            if len(rows) == n:
                return rows[::-1]
    return None


def d_winning(history: list, domain: str) -> bool:
    """D(G(z)) near 0 while G's gradient has vanished (below 10% of its peak), for WINDOW logged rows.

    Only probability-valued discriminators have a "near 0"; a real-valued critic's scale is arbitrary.
    """
    rows = _recent(history, ("d/fake", "grad_norm/g"))
    if domain != "probability" or rows is None:
        return False
    peak = max(_values(history, "grad_norm/g"))
    return all(r["d/fake"] < NEAR_ZERO and r["grad_norm/g"] < VANISHED * peak for r in rows)


def d_failing(history: list, domain: str, fraction_done: float) -> bool:
    """D cannot tell real from fake: its loss is flat, or (probability D, first quarter of the run,
    after 2 x WINDOW logs) D(x) and D(G(z)) both stay within 0.02 of 0.5."""
    rows = _recent(history, ("loss/d",))
    if rows is None:
        return False
    losses = [r["loss/d"] for r in rows]
    if max(losses) - min(losses) <= FLAT * (1.0 + abs(sum(losses) / len(losses))):
        return True
    if domain != "probability" or fraction_done > EARLY:
        return False
    rows = _recent(history, ("d/real", "d/fake"), 2 * WINDOW)  # give D a few logs to start separating
    return rows is not None and all(abs(r["d/real"] - 0.5) < UNDECIDED and abs(r["d/fake"] - 0.5) < UNDECIDED
                                    for r in rows[-WINDOW:])


def mode_collapse(history: list, fraction_done: float) -> bool:
    """Sample diversity fell below half its peak and half the data's, or (after the first quarter of
    the run) classes stayed missing from the samples, for WINDOW logged rows."""
    rows = _recent(history, ("samples/diversity",))
    if rows is not None:
        peak = max(_values(history, "samples/diversity"))
        if all(r["samples/diversity"] < COLLAPSED * min(peak, 1.0) for r in rows):
            return True
    rows = _recent(history, ("samples/classes_missing",))
    return rows is not None and fraction_done > EARLY and all(r["samples/classes_missing"] >= 1 for r in rows)


def assess(history: list, domain: str, fraction_done: float) -> dict:
    """The ``health/*`` flags (0.0 or 1.0) for the newest row of ``history``."""
    flags = (d_winning(history, domain), d_failing(history, domain, fraction_done),
             mode_collapse(history, fraction_done))
    return {k: float(v) for k, v in zip(FLAGS, flags)}


_ADVICE = {
    "health/d_winning": "D rejects every sample and G's gradient has vanished; try a non-saturating f3, a lower "
                        "optim.lr_d or a gradient penalty",
    "health/d_failing": "D is not separating real from fake (flat loss or D(x) = D(G(z)) = 0.5); check optim.lr_d, "
                        "objective.clip and the data",
    "health/mode_collapse": "sample diversity fell or classes are missing from the samples; look at samples/, "
                            "try a lower learning rate or a gradient penalty",
}


def messages(history: list) -> list:
    """Warnings for the newest row: when a flag turns on, then every REPEAT rows while it stays on."""
    row, out = history[-1], []
    for flag in FLAGS:
        run = 0
        for r in reversed(history):
            if r.get(flag) != 1.0:
                break
            run += 1
        if run % REPEAT == 1:
            out.append(f"health: {flag[7:].replace('_', ' ')} at step {row['step']} ({row['images']} images): "
                       f"{_ADVICE[flag]}{_details(row)}")
    return out


def _details(row: dict) -> str:
    shown = [f"{k}={row[k]:.3g}" for k in ("d/real", "d/fake", "grad_norm/g", "loss/d", "samples/diversity",
                                            "samples/classes_missing") if _finite(row.get(k))]
    return f" ({', '.join(shown)})" if shown else ""


def check_objective(objective: Objective) -> Objective:
    """Evaluate the objective once as training will, so that a user formula which raises, is not finite
    (``1/0``, ``(-8)**0.5``), overflows float32 or ignores d is one clear error, not a traceback or a NaN."""
    logits = torch.linspace(-4.0, 4.0, 9, requires_grad=True)
    parts = {n: (lambda fn=getattr(objective, n): fn(objective.d_value(logits))) for n in ("f1", "f2", "f3")}
    parts.update({"loss_d": lambda: objective.loss_d(logits, logits), "loss_g": lambda: objective.loss_g(logits)})
    for name, evaluate in parts.items():
        try:
            out = evaluate()
        except (ArithmeticError, TypeError, ValueError, RuntimeError) as exc:
            raise GankitError(f"objective {objective.describe()}: {name} cannot be evaluated "
                              f"({type(exc).__name__}: {exc}); fix the formula") from None
        if isinstance(out, complex) or (torch.is_tensor(out) and out.is_complex()):
            raise GankitError(f"objective {objective.describe()}: {name} gives complex numbers (a negative "
                              f"number to a fractional power?); fix the formula")
        value = out.value if isinstance(out, Prob) else out
        bad = ~torch.isfinite(torch.as_tensor(value, dtype=torch.float32).detach())
        if bad.any():
            at = "" if bad.ndim == 0 else f" at D logit {logits[bad.nonzero()[0, 0]].item():g}"
            raise GankitError(f"objective {objective.describe()}: {name} is not finite{at} (a division by zero, "
                              f"the log or square root of a negative number?); fix the formula")
        if name.startswith("loss") and not out.requires_grad:
            raise GankitError(f"objective {objective.describe()}: {name} does not depend on d, so it gives "
                              f"no gradient; use d in the formulas")
    return objective


# ---- statistics of samples -------------------------------------------------------------------
@dataclass
class Reference:
    """Real images the sample statistics compare with: a fixed, strided subset of the data."""

    x: torch.Tensor        # (M, C, H, W), M <= 1000, for nearest-neighbour labels
    y: torch.Tensor        # (M,)
    n_classes: int         # distinct labels in y
    diversity: float       # mean pairwise distance of up to 256 of them

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, size: int = 1000) -> "Reference":
        """Every (N // size)-th image: no RNG is drawn, so training is the same with or without it."""
        stride = max(1, len(x) // size)
        x, y = to_float(x[::stride][:size]), y[::stride][:size]
        sub = x[::max(1, len(x) // 256)][:256]
        return cls(x, y, int(torch.unique(y).numel()), diversity(sub) if len(sub) >= 2 else 0.0)


def sample_stats(x: torch.Tensor, ref: Reference) -> dict:
    """``samples/diversity`` (relative to the data's) and ``samples/classes_missing`` of samples ``x``.

    Classes are the labels of the nearest real images; they are counted only with at least PER_CLASS
    samples per class: with 64 samples of 10 classes a healthy generator missed one class for 5 logs in a row
    (pixel-space labels are uneven, and fixed noise repeats the same samples), with 256 it did not.
    """
    out = {}
    if x.shape[0] >= 2 and ref.diversity > 0:
        out["samples/diversity"] = diversity(x) / ref.diversity
    if ref.n_classes >= 2 and x.shape[0] >= PER_CLASS * ref.n_classes:
        out["samples/classes_missing"] = float(classes_missing(nearest_labels(x, ref.x, ref.y), ref.n_classes))
    return out


def diversity(x: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the images ``x`` (N, ...), N >= 2."""
    return torch.pdist(x.detach().flatten(1).cpu().double()).mean().item()  # float64: not on every device


def nearest_labels(x: torch.Tensor, x_ref: torch.Tensor, y_ref: torch.Tensor) -> torch.Tensor:
    """The label of each image's nearest reference image in pixel space: (N,) from (N, ...), (M, ...), (M,)."""
    return y_ref[torch.cdist(x.flatten(1).float(), x_ref.flatten(1).float()).argmin(dim=1)]


def classes_missing(labels: torch.Tensor, n_classes: int) -> int:
    """How many of classes 0..n_classes-1 do not occur in ``labels``."""
    return int(n_classes - torch.unique(labels).numel())
