"""Training: the run engine, its stepper, parts, hooks, checkpoints of the training state and reporting."""
from .trainer import Trainer, train
from .hooks import Hook, LinearDecay
from .progress import Progress

__all__ = ["Hook", "LinearDecay", "Progress", "Trainer", "train"]
