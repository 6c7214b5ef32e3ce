"""Turn a resolved `RunConfig` into objects: names are resolved here and nowhere else."""
from __future__ import annotations

import torch

from ..config import RunConfig
from ..errors import GankitError
from ..nets import build_networks
from ..objectives import Objective, get_objective


def build_objective(cfg: RunConfig) -> Objective:
    o = cfg.objective
    if o.name == "custom":
        return Objective.from_expressions(o.f1, o.f2, o.f3, domain=o.domain or "real", name="custom")
    if o.f1 or o.f2 or o.f3 or o.domain:
        raise GankitError(f"objective.f1/f2/f3/domain are only used with objective.name=custom "
                          f"(got name={o.name!r})")
    return get_objective(o.name)


def build_models(cfg: RunConfig, image_shape: tuple):
    m = cfg.model
    return build_networks(m.arch, m.z_dim, image_shape, m.width_g, m.width_d, m.norm_g, m.norm_d, m.act_g, m.act_d)


def build_optimizers(cfg: RunConfig, G: torch.nn.Module, D: torch.nn.Module, device: torch.device):
    o = cfg.optim
    # foreach kernels update all parameters of a network in a few launches.
    kw = {"foreach": True}
    b1g = o.beta1 if o.beta1_g is None else o.beta1_g
    b1d = o.beta1 if o.beta1_d is None else o.beta1_d
    opt_g = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=(b1g, o.beta2), **kw)
    opt_d = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=(b1d, o.beta2), **kw)
    return opt_g, opt_d
