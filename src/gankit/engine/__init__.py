"""Training: the run engine, its stepper, parts, hooks, checkpoints of the training state and reporting."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .trainer import Trainer
from .hooks import Hook, LinearDecay
from .progress import Progress

__all__ = ["Hook", "LinearDecay", "Progress", "Trainer", "train"]


def train(cfg, run_dir: Optional[Path] = None, data=None, resume: bool = False, force: bool = False,
          hooks: tuple = (), sinks: tuple = ()) -> Trainer:
    """Train from a resolved config; returns the finished `Trainer`."""
    trainer = Trainer(cfg, Path(run_dir) if run_dir else Path("runs") / cfg.name, data, resume, force, hooks, sinks)
    trainer.run()
    return trainer
