"""The named objectives. Each is written once, as expressions in ``d``.

| name | d | f1 | f2 | f3 |
|---|---|---|---|---|
| minimax | probability | log d | log(1-d) | -log(1-d) |
| non-saturating | probability | log d | log(1-d) | log d |
| wasserstein | real | d | -d | d |
| least-squares | real | -(d-1)^2/2 | -d^2/2 | -(d-1)^2/2 |
| hinge | real | -relu(1-d) | -relu(1+d) | d |
| quadratic | real | -d^2/2 | d | -d |
"""
from __future__ import annotations

from ..errors import GankitError, did_you_mean
from ._objective import Objective

_SPECS = {
    # Goodfellow et al. 2014, the zero-sum game; G's gradient vanishes when D wins.
    "minimax": ("log(d)", "log(1 - d)", "-log(1 - d)", "probability", False),
    # Same paper's practical fix: G maximises log D(G(z)).
    "non-saturating": ("log(d)", "log(1 - d)", "log(d)", "probability", False),
    # Arjovsky et al. 2017: needs a Lipschitz critic (clipping or gradient penalty).
    "wasserstein": ("d", "-d", "d", "real", True),
    # Mao et al. 2017 with targets a=0 (fake), b=1 (real), c=1 (G's target).
    "least-squares": ("-0.5*(d - 1)**2", "-0.5*d**2", "-0.5*(d - 1)**2", "real", False),
    # Lim & Ye 2017 / Miyato et al. 2018.
    "hinge": ("-relu(1 - d)", "-relu(1 + d)", "d", "real", False),
    # An f-family example whose rest point is d = 1.
    "quadratic": ("-0.5*d**2", "d", "-d", "real", False),
}

OBJECTIVES = tuple(_SPECS)


def get_objective(name: str) -> Objective:
    """The named objective from the catalogue; `GankitError` with a suggestion otherwise."""
    if name not in _SPECS:
        raise GankitError(f"unknown objective {name!r}{did_you_mean(name, _SPECS)}; "
                          f"choose one of {', '.join(OBJECTIVES)} or give f1/f2/f3 expressions")
    f1, f2, f3, domain, lip = _SPECS[name]
    return Objective.from_expressions(f1, f2, f3, domain=domain, name=name, needs_lipschitz=lip)
