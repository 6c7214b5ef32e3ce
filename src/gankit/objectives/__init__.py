"""GAN objectives: the `Objective` type, the named catalogue and safe expressions."""
from ._expr import Expression, compile_expression
from ._objective import DOMAINS, Objective
from .catalogue import OBJECTIVES, get_objective
from .ops import Prob

__all__ = ["DOMAINS", "Expression", "OBJECTIVES", "Objective", "Prob", "compile_expression", "get_objective"]
