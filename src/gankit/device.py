"""Pick the training device: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""
from __future__ import annotations

import torch

from .errors import GankitError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device {name} asked for but CUDA is not available; use --device auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GankitError(f"device {name} asked for but MPS is not available; use --device auto or cpu")
    return device
