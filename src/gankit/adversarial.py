"""The adversarial loss as a plug-in for any training loop: a discriminator as a learned critic.

    import gankit

    D = MyDiscriminator()                                       # D(x) -> logits (N,), or D(x, y) when conditional
    adv = gankit.AdversarialLoss("non-saturating", D, torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999)))
    for x in loader:
        x_hat = decoder(encoder(x))
        adv.d_step(x, x_hat)                                    # one update of D (x_hat is detached)
        loss = F.mse_loss(x_hat, x) + 0.01 * adv.g_term(x_hat)  # the generator-side term joins the user's loss
        loss.backward(); opt.step()

The objective is a gankit `Objective` (a catalogue name, or any ``Objective``), the same functions the trainer
uses: D minimises ``loss_d = -(mean f1(D(real)) + mean f2(D(fake)))``, the generator side is
``loss_g = -mean f3(D(fake))``. Without an optimizer, `d_step` returns D's loss (with its graph) for the caller
to back-propagate. `g_term` runs D with its parameters frozen, so the user's ``backward()`` leaves D's
gradients alone. A conditional D (gankit's concat/projection/AC discriminators, or any module whose forward
takes ``(x, y)``) is given ``labels``; an optional penalty (R1, R2, WGAN-GP) and weight clipping are the
trainer's own (`gankit.penalties`).
"""
from __future__ import annotations

import inspect
import math
from typing import Optional, Union

import torch
import torch.nn as nn

from .errors import GankitError
from .objectives import Objective, get_objective
from .penalties import clip_weights, penalty_fn


class AdversarialLoss:
    """A discriminator and an objective, usable from any training loop (see the module's docstring).

    Args:
        objective: a name from `gankit.OBJECTIVES` ("non-saturating", "hinge", ...) or an `Objective`.
        discriminator: ``D(x) -> (N,)`` logits, or ``D(x, y)`` for a conditional D; a D with ``outputs(x, y)``
            returning ``(logits, class_logits)`` (gankit's conditional discriminators) works as well.
        optimizer: D's optimizer; with it `d_step` updates D, without it `d_step` returns the loss.
        penalty: "none", "r1", "r2" or "gp", added to D's loss times ``penalty_weight``.
        clip: WGAN weight clipping to [-clip, clip] after each update (0: off).
    """

    def __init__(self, objective: Union[str, Objective], discriminator: nn.Module,
                 optimizer: Optional[torch.optim.Optimizer] = None, penalty: str = "none",
                 penalty_weight: float = 10.0, clip: float = 0.0):
        if isinstance(objective, str):
            objective = get_objective(objective)
        if not isinstance(objective, Objective):
            raise GankitError(f"objective must be a name such as 'non-saturating' or a gankit.Objective, got "
                              f"{type(objective).__name__}")
        if not isinstance(discriminator, nn.Module):
            raise GankitError(f"discriminator must be a torch.nn.Module (D(x) -> logits), got "
                              f"{type(discriminator).__name__}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise GankitError(f"optimizer must be a torch.optim.Optimizer over D's parameters, got "
                              f"{type(optimizer).__name__}")
        for name, value in (("penalty_weight", penalty_weight), ("clip", clip)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise GankitError(f"{name} must be a finite number >= 0, got {value!r}")
        self.objective, self.D, self.optimizer = objective, discriminator, optimizer
        self.penalty = penalty_fn(penalty)
        self.penalty_weight, self.clip = float(penalty_weight), float(clip)
        self.labels = _label_use(discriminator)  # "required", "optional" (AC-GAN's D(x, y=None)) or "none"
        self.last: dict = {}  # the latest d_step's numbers: loss_d, d_real, d_fake (D's outputs, in its domain)

    # ---- D's side -------------------------------------------------------------------------
    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, labels: Optional[torch.Tensor] = None,
               fake_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """D's loss on a real and a generated batch (``fake`` is detached); ``fake_labels`` default to ``labels``."""
        real, fake = _images(real, "real"), _images(fake, "fake").detach()
        if real.shape[1:] != fake.shape[1:]:
            raise GankitError(f"real images {tuple(real.shape[1:])} and fake images {tuple(fake.shape[1:])} differ in "
                              f"shape; give D batches of the same image shape")
        fake_labels = labels if fake_labels is None else fake_labels
        d_real = self.logits(real, labels, "real")
        d_fake = self.logits(fake, fake_labels, "fake")
        loss = self.objective.loss_d(d_real, d_fake)
        if self.penalty is not None and self.penalty_weight > 0:
            critic = self.D if labels is None else (lambda x: self._call(x, labels))
            loss = loss + self.penalty_weight * self.penalty(critic, real.float(), fake.float(), None).mean()
        out = self.objective.to_output
        self.last = {"d_real": float(out(d_real.detach()).mean()), "d_fake": float(out(d_fake.detach()).mean())}
        return loss

    def d_step(self, real: torch.Tensor, fake: torch.Tensor, labels: Optional[torch.Tensor] = None,
               fake_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """With an optimizer: one update of D; returns its loss (detached). Without one: D's loss, to back-propagate.

        A NaN or Inf loss is refused before any update, so D's weights stay finite.
        """
        loss = self.d_loss(real, fake, labels, fake_labels)
        if not torch.isfinite(loss):
            raise GankitError(f"D's loss is {float(loss.detach())} (NaN/Inf) on this batch; check the images for "
                              f"NaN/Inf and lower D's learning rate; D was not updated")
        self.last["loss_d"] = float(loss.detach())
        if self.optimizer is None:
            return loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.clip > 0:
            clip_weights(self.D, self.clip)
        return loss.detach()

    # ---- the generator's side -------------------------------------------------------------
    def g_term(self, fake: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The generator-side loss ``-mean f3(D(fake))``: a scalar whose gradient reaches ``fake``, not D."""
        fake = _images(fake, "fake")
        frozen = [p for p in self.D.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            logits = self.logits(fake, labels, "fake")
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return self.objective.loss_g(logits)

    # ---- calling D --------------------------------------------------------------------------
    def logits(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None, what: str = "images") -> torch.Tensor:
        """D's logits (N,) in fp32 for images ``x`` (and ``labels`` for a conditional D)."""
        if self.labels == "required" and labels is None:
            raise GankitError(f"this discriminator ({type(self.D).__name__}) is conditional: pass labels= for the "
                              f"{what} images")
        if labels is not None:
            if self.labels == "none":
                raise GankitError(f"labels were given but {type(self.D).__name__} takes no labels (forward(x) only); "
                                  f"drop labels= or use a conditional discriminator")
            if not torch.is_tensor(labels) or labels.dim() != 1 or labels.shape[0] != x.shape[0]:
                shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
                raise GankitError(f"labels for the {what} images must be a tensor of shape ({x.shape[0]},), one per "
                                  f"image, got {shape}")
            if labels.is_floating_point():
                raise GankitError(f"labels for the {what} images must be integer class indices, got {labels.dtype}")
        shape = getattr(self.D, "image_shape", None)  # gankit's networks say what they take
        if shape is not None and tuple(x.shape[1:]) != tuple(shape):
            raise GankitError(f"the discriminator was built for images {tuple(shape)}, got {what} images "
                              f"{tuple(x.shape[1:])}; resize them or build D for this shape")
        out = self._call(x, labels)
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (x.shape[0],):
            raise GankitError(f"the discriminator returned shape {tuple(out.shape)} for {x.shape[0]} images; it must "
                              f"return one logit per image, shape ({x.shape[0]},)")
        return out.float()

    def _call(self, x: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        try:
            if hasattr(self.D, "outputs"):  # gankit's conditional/coded discriminators: (logits, class logits)
                out = self.D.outputs(x, labels) if labels is not None else self.D.outputs(x)
                return out[0] if isinstance(out, tuple) else out
            out = self.D(x, labels) if labels is not None else self.D(x)
        except (RuntimeError, IndexError) as exc:  # shape or label range: one line naming the cause
            first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise GankitError(f"the discriminator failed on images of shape {tuple(x.shape)} ({first}); give it "
                              f"images of the shape it was built for (and labels in its class range)") from None
        return out[0] if isinstance(out, tuple) else out


def _images(x, what: str) -> torch.Tensor:
    if not torch.is_tensor(x):
        raise GankitError(f"{what} images must be a torch.Tensor (N, C, H, W), got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise GankitError(f"{what} images must be a non-empty batch (N, ...), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise GankitError(f"{what} images must be floating point (e.g. in [-1, 1]), got {x.dtype}")
    return x


def _label_use(D: nn.Module) -> str:
    """Whether D's forward takes labels as its second positional parameter: "required", "optional" (a default,
    as AC-GAN's ``D(x, y=None)``) or "none"."""
    try:
        params = list(inspect.signature(D.forward).parameters.values())
    except (TypeError, ValueError):
        return "none"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return "none"
    return "required" if positional[1].default is inspect.Parameter.empty else "optional"


__all__ = ["AdversarialLoss"]
