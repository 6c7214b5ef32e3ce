"""Checks of a config's conditioning and codes (labels, projection/AC heads, cluster and InfoGAN codes),
kept beside `gankit.config` so that module stays short."""
from __future__ import annotations

from .errors import GankitError, did_you_mean

CONDITIONINGS = ("none", "concat", "projection", "ac")
CODE_KINDS = ("clusters", "info")


def validate_conditional(cfg) -> None:
    """The conditioning and code settings of a resolved config: one line naming the problem and the fix."""
    m, ac = cfg.model, cfg.objective.ac_weight
    if m.conditional not in CONDITIONINGS:
        raise GankitError(f"model.conditional must be one of {', '.join(CONDITIONINGS)}, got {m.conditional!r}"
                          f"{did_you_mean(m.conditional, CONDITIONINGS)}")
    if cfg.train.fake_labels not in ("uniform", "data"):
        raise GankitError(f"train.fake_labels must be uniform or data, got {cfg.train.fake_labels!r}")
    if m.n_classes < 0 or m.embed_dim < 1:
        raise GankitError("model.n_classes must not be negative (0: from the data) and model.embed_dim must be "
                          "at least 1")
    if ac < 0:
        raise GankitError("objective.ac_weight must not be negative (0 turns the auxiliary classifier off)")
    if m.conditional == "ac" and ac == 0:
        raise GankitError("model.conditional=ac needs a class loss: set objective.ac_weight (e.g. 1.0)")
    if ac > 0 and m.conditional in ("none", "concat"):
        hint = ("a concat D sees the label it would predict; use model.conditional=projection or ac"
                if m.conditional == "concat" else "set model.conditional=ac or projection")
        raise GankitError(f"objective.ac_weight={ac} needs a class head on D: {hint}")
    info = cfg.objective.info_weight
    if m.codes < 0 or m.codes == 1 or info < 0:
        raise GankitError("model.codes must be 0 (off) or at least 2, and objective.info_weight must not be "
                          "negative")
    if m.code_kind not in CODE_KINDS:
        raise GankitError(f"model.code_kind must be one of {', '.join(CODE_KINDS)}, got {m.code_kind!r}"
                          f"{did_you_mean(m.code_kind, CODE_KINDS)}")
    if m.codes and m.conditional != "none":
        raise GankitError("model.codes is for unconditional models (the code stands in for labels); "
                          "set model.codes=0 or model.conditional=none")
    if m.codes and m.z_dim < 2:
        raise GankitError("model.codes reads the code from z's first coordinate and needs model.z_dim >= 2")
    info_codes = bool(m.codes) and m.code_kind == "info"
    if info_codes != (info > 0):
        raise GankitError("model.code_kind=info and objective.info_weight go together: an InfoGAN code needs the "
                          "loss that makes G use it (e.g. model.codes=10 model.code_kind=info "
                          "objective.info_weight=1.0), and the loss needs such a code")
