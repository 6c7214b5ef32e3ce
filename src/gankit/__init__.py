"""gankit: train, evaluate and understand Generative Adversarial Networks.

The public API is what this module re-exports; `gankit.api` documents the training and run functions, and the
``gankit`` command calls exactly them.
"""
from ._version import __version__  # noqa: E402

# The subpackage gankit.train is loaded first, so that the function gankit.train below is what the name means
# afterwards (a subpackage imported later would replace the package attribute of the same name).
from . import train as _engine  # noqa: E402,F401
from .api import config, evaluate, sample, train  # noqa: E402
from .config import RunConfig, resolve  # noqa: E402
from .dynamics import DiracGAN, analyse_point, ntk, point_field  # noqa: E402
from .errors import GankitError  # noqa: E402
from .modes import Mode, Part, Phase, Term, register_mode  # noqa: E402
from .objectives import OBJECTIVES, Objective, get_objective  # noqa: E402
from .run import Run, load_run  # noqa: E402

__all__ = ["DiracGAN", "GankitError", "Mode", "OBJECTIVES", "Objective", "Part", "Phase", "Run", "RunConfig", "Term",
           "__version__", "analyse_point", "config", "evaluate", "get_objective", "load_run", "ntk", "point_field",
           "register_mode", "resolve", "sample", "train"]
