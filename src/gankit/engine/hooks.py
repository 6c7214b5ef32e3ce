"""Hooks: schedules and observers a mode, a tool or a user adds to a run without touching the engine.

A hook may act before each iteration (``before_iteration``: a fade-in weight, a stage change, read from the
progress so that resume stays exact), scale every part's learning rate (``lr_scale``, computed afresh from the
progress each iteration), act after each iteration (``after_iteration``) and once when training ends
(``finished``: not when a signal stopped it). A mode adds its own through `Mode.hooks`.
Sinks, the other kind of observer, receive every reported value and message (`gankit.engine.reporting`).
"""
from __future__ import annotations


class Hook:
    """Does nothing; subclasses override what they need."""

    def before_iteration(self, trainer) -> None:
        pass

    def lr_scale(self, trainer) -> float:
        return 1.0

    def after_iteration(self, trainer) -> None:
        pass

    def finished(self, trainer) -> None:
        pass


class LinearDecay(Hook):
    """lr x 1 until ``start`` (a fraction of the run's images), then linearly to 0 at its end."""

    def __init__(self, start: float):
        self.start = start

    def lr_scale(self, trainer) -> float:
        done = trainer.progress.images / trainer.total_images
        return min(1.0, (1.0 - done) / (1.0 - self.start))


def config_hooks(cfg) -> list:
    """The hooks a config asks for (``optim.decay``)."""
    return [LinearDecay(cfg.optim.decay_start)] if cfg.optim.decay == "linear" else []
