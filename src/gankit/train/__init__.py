"""Training: step functions, the loop, EMA, checkpoints and reporting."""
from .build import build_models, build_objective, build_optimizers
from .checkpoint import latest_checkpoint, load_checkpoint
from .device import pick_device
from .loop import Progress, Trainer, train
from .steps import StepContext, d_step, g_step, sample_z, train_iteration

__all__ = ["Progress", "StepContext", "Trainer", "build_models", "build_objective", "build_optimizers", "d_step",
           "g_step", "latest_checkpoint", "load_checkpoint", "pick_device", "sample_z", "train", "train_iteration"]
