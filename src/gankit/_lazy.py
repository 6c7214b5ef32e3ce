"""Package attributes loaded on first use (PEP 562), so importing a package does not import torch."""
from __future__ import annotations

import importlib
import sys


def lazy_getattr(package: str, exports: dict):
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a submodule) on first use."""
    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
