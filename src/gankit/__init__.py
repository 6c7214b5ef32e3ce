"""gankit: train, evaluate and understand Generative Adversarial Networks."""
__version__ = "0.1.0"

from .config import RunConfig, resolve  # noqa: E402
from .errors import GankitError  # noqa: E402
from .objectives import OBJECTIVES, Objective, get_objective  # noqa: E402

__all__ = ["GankitError", "OBJECTIVES", "Objective", "RunConfig", "__version__", "get_objective", "resolve"]
