"""Games the run engine can play, registered by name; ``mode:`` in a config picks one (``gan`` by default).

A new game is one file: subclass `Mode`, decorate it with `register_mode`, and import the file before
training (built-in modes are imported here; a user's mode registers itself when its module is imported).
"""
from __future__ import annotations

from . import cyclegan, gan, progressive  # noqa: F401  (register the built-in modes)
from .base import Context, Mode, Panel, Part, Phase, Term
from .registry import MODES, get_mode, register_mode
from .sources import Batch, GrowingBatches, ImageBatches, UnpairedBatches

__all__ = ["Batch", "Context", "GrowingBatches", "ImageBatches", "MODES", "Mode", "Panel", "Part", "Phase", "Term", "UnpairedBatches",
           "get_mode", "register_mode"]
