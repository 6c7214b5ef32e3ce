"""gankit: train, evaluate and understand Generative Adversarial Networks.

The public API is what this module exports; `gankit.api` documents the training and run functions, and the
``gankit`` command calls exactly them. Names are loaded on first use, so ``import gankit`` is instant and the
command line starts (and answers Ctrl-C) before torch is imported.
"""
from __future__ import annotations

from ._lazy import lazy_getattr
from ._version import __version__

_EXPORTS = {
    "train": "api", "sample": "api", "evaluate": "api",
    "AdversarialLoss": "adversarial",
    "RunConfig": "config", "resolve": "config",
    "GankitError": "errors",
    "Mode": "modes", "Part": "modes", "Phase": "modes", "Term": "modes", "register_mode": "modes",
    "OBJECTIVES": "objectives", "Objective": "objectives", "get_objective": "objectives",
    "Run": "run", "load_run": "run",
    "DiracGAN": "dynamics", "analyse_point": "dynamics", "ntk": "dynamics", "point_field": "dynamics",
}

__all__ = ["__version__", *sorted(_EXPORTS)]
__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__():
    return __all__
