"""Turn a resolved `RunConfig` into objects: names are resolved here and nowhere else."""
from __future__ import annotations

from .config import RunConfig
from .errors import GankitError
from .nets import build_networks
from .nets.coded import build_coded
from .nets.conditional import build_conditional
from .objectives import Objective, get_objective


def build_objective(cfg: RunConfig) -> Objective:
    o = cfg.objective
    if o.name == "custom":
        return Objective.from_expressions(o.f1, o.f2, o.f3, domain=o.domain or "real", name="custom")
    if o.f1 or o.f2 or o.f3 or o.domain:
        raise GankitError(f"objective.f1/f2/f3/domain are only used with objective.name=custom "
                          f"(got name={o.name!r})")
    return get_objective(o.name)


def build_models(cfg: RunConfig, image_shape: tuple, n_classes: int = 0):
    """(G, D) for the config; conditional models get ``model.n_classes`` labels, or ``n_classes`` (the data's).

    Coded models (``model.codes``) wrap the base pair as `gankit.nets.coded.build_coded` does.
    """
    m = cfg.model

    def build(z_dim: int, shape: tuple):
        return build_networks(m.arch, z_dim, shape, m.width_g, m.width_d, m.norm_g, m.norm_d, m.act_g, m.act_d,
                              depth_d=m.depth_d, options=m.options)

    if m.codes:
        return build_coded(build, m.code_kind, m.codes, m.z_dim, tuple(image_shape), m.norm_d)
    if m.conditional == "none":
        return build(m.z_dim, image_shape)
    return build_conditional(build, m.conditional, m.n_classes or n_classes, m.embed_dim,
                             cfg.objective.ac_weight > 0, m.z_dim, tuple(image_shape), m.norm_d)
