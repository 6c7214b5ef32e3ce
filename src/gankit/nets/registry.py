"""Architectures by name, each with a dataclass of its own options that YAML and ``--set`` fill.

    register_architecture("mlp", MLPGenerator, MLPDiscriminator, MLPOptions)

``model.arch`` picks one; ``model.options`` holds its options (``--set model.options.widths=[256,512]``).
Options are checked against the dataclass when the config is resolved: an unknown key or a wrong type is one
line. G is built as ``G_cls(z_dim, image_shape, width=, norm=, act=, **options)`` and D as
``D_cls(image_shape, width=, norm=, act=, **options)``; an option only one of them takes is passed to that one.
"""
from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass, field

import yaml

from ..errors import GankitError, did_you_mean

ARCHITECTURES: dict = {}


@dataclass
class NoOptions:
    """An architecture without options of its own."""


def register_architecture(name: str, generator, discriminator, options=NoOptions) -> None:
    ARCHITECTURES[name] = (generator, discriminator, options)


def architecture(name: str) -> tuple:
    """(G class, D class, options dataclass) registered as ``name``."""
    if name not in ARCHITECTURES:
        raise GankitError(f"unknown architecture {name!r}{did_you_mean(name, ARCHITECTURES)}; "
                          f"choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def make_options(arch: str, raw: dict):
    """The options dataclass of ``arch`` filled from ``raw`` (a mapping; list values may be YAML text)."""
    cls = architecture(arch)[2]
    if not isinstance(raw, dict):
        raise GankitError(f"model.options must be a mapping of {arch} options, got {raw!r}")
    hints, names = typing.get_type_hints(cls), {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in names:
            known = ", ".join(sorted(names)) or "none"
            raise GankitError(f"unknown option model.options.{key} for architecture {arch}"
                              f"{did_you_mean(str(key), names)}; its options: {known}")
        values[key] = _coerce(value, hints[key], f"model.options.{key}")
    return cls(**values)


def _coerce(value, tp, key: str):
    origin = typing.get_origin(tp)
    if origin is list:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        item = typing.get_args(tp)[0]
        if not isinstance(value, list) or not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise GankitError(f"{key} must be a list of {item.__name__}s such as [1, 2, 4], got {value!r}")
        return list(value)
    if tp is bool and not isinstance(value, bool):
        raise GankitError(f"{key} must be true or false, got {value!r}")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise GankitError(f"{key} must be an integer, got {value!r}")
    if tp is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise GankitError(f"{key} must be a number, got {value!r}")
    return float(value) if tp is float else value


def split_options(options, cls) -> dict:
    """The options (a dataclass) that ``cls``'s constructor takes, as keyword arguments."""
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in dataclasses.asdict(options).items() if k in params}


def list_field(default: list):
    return field(default_factory=lambda: list(default))
