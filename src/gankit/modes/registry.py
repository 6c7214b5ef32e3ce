"""The modes by name: ``mode:`` in a config picks one (``gan`` by default)."""
from __future__ import annotations

from ..errors import GankitError, did_you_mean
from .base import Mode

MODES: dict = {}


def register_mode(cls):
    """Class decorator: make ``cls`` (a `Mode` subclass with a ``name``) available as ``mode: <name>``."""
    if not (isinstance(cls, type) and issubclass(cls, Mode) and cls.name):
        raise TypeError("register_mode takes a Mode subclass with a non-empty name")
    MODES[cls.name] = cls
    return cls


def get_mode(name: str):
    """The registered `Mode` class called ``name``."""
    if name not in MODES:
        raise GankitError(f"unknown mode {name!r}{did_you_mean(str(name), MODES)}; choose one of {', '.join(MODES)}")
    return MODES[name]
