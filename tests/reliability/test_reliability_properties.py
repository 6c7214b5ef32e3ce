"""Property-based tests: the config loader and the expression parser, on arbitrary and hostile input.

Each must return a valid result or raise `GankitError`, never another exception,
and must never run code: an audit hook records every attempt to import, execute,
open a file, spawn a process or connect while the input is handled.
"""
import math
import sys
from dataclasses import fields, is_dataclass

import pytest
import torch
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gankit import GankitError, RunConfig
from gankit.config import from_dict, parse_override, read_yaml, resolve, validate
from gankit.objectives import Expression
from gankit.build import build_objective
from gankit.health import check_objective

# What running hostile input would have to do to harm anything. (Not "exec"/"compile": the standard
# library evaluates its own type annotations that way; user text never reaches them.)
FORBIDDEN = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen", "socket.connect",
             "socket.bind", "ctypes.dlopen", "pickle.find_class", "os.remove", "os.rename",
             "os.rmdir", "shutil.rmtree", "os.chmod", "urllib.Request")
_WRITE = 0o1 | 0o2 | 0o100  # O_WRONLY | O_RDWR | O_CREAT
_watch = {"on": False, "seen": []}


def _audit(event, args):
    if not _watch["on"]:
        return
    if event in FORBIDDEN:
        _watch["seen"].append(event)
    elif event == "open" and (any(c in str(args[1] or "") for c in "wax+") or (args[2] or 0) & _WRITE):
        _watch["seen"].append(f"open {args[0]} for writing")


sys.addaudithook(_audit)  # hooks cannot be removed; this one only records while a test switches it on


class no_code_runs:
    """Switch the audit hook on; fail if anything forbidden happened inside the block."""

    def __enter__(self):
        _watch["on"], _watch["seen"] = True, []

    def __exit__(self, *exc):
        _watch["on"] = False
        assert not _watch["seen"], f"code ran: {_watch['seen']}"


SECTIONS = {f.name: [g.name for g in fields(f.type if isinstance(f.type, type) else getattr(RunConfig(), f.name))]
            for f in fields(RunConfig) if is_dataclass(getattr(RunConfig(), f.name))}
KEYS = ["name"] + [f"{s}.{k}" for s, names in SECTIONS.items() for k in names]
HOSTILE = ["!!python/object/apply:os.system ['touch PWNED']", "!!python/name:os.system", "!!binary aGk=",
           "&a [*a]", "*undefined", "!!set {a, b}", "2001-01-01", ".inf", "-.inf", ".nan", "1e999", "0x1F", "0o17",
           "1_000", "yes", "~", "null", "[1, [2, [3]]]", "{a: {b: c}}", "'quoted'", '"\\u0000"', "%TAG ! x",
           "--- !!map", "? complex key", "|\n  block", ">\n  folded", "\t", "\\", "`", "@"]
_plausible = st.sampled_from(["0", "1", "2", "3", "0.5", "64", "1e-4", "0.9", "true", "false", "none", "gp", "r1",
                              "hinge", "mlp", "dcgan", "batch", "relu", "cpu", "rollback", "stop", "mnist", "run2"])
_values = st.one_of(_plausible, _plausible, _plausible, st.sampled_from(HOSTILE), st.integers(-10**30, 10**30).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12))
_keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12),
                  st.sampled_from(KEYS).map(lambda k: k[:-1] if len(k) > 1 else k + "x"))


def _typed(key):
    """Values of the key's own type, mostly in range: these are the inputs that should give a config."""
    default = RunConfig().to_dict()
    for part in key.split("."):
        default = default[part]
    if isinstance(default, bool):
        return st.sampled_from(["true", "false"])
    if isinstance(default, int):
        return st.integers(0, 70).map(str)
    if isinstance(default, float):
        return st.floats(0.0, 1.0).map(repr)
    return st.just(yaml.safe_dump(default).split("\n...")[0].strip())


_pairs = st.one_of(*[st.sampled_from(KEYS).flatmap(lambda k: st.tuples(st.just(k), _typed(k)))] * 3,
                   st.tuples(_keys, _values))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pairs, max_size=4))
def test_overrides_give_a_valid_config_or_gankit_error(pairs):
    with no_code_runs():
        try:
            cfg = resolve("mnist-dcgan", tuple(f"{k}={v}" for k, v in pairs))
        except GankitError:
            event("GankitError")
            return
    event("valid config")
    _assert_valid(cfg)


def _yaml_document(tree) -> str:
    lines = []
    for section, body in tree.items():
        if isinstance(body, dict):
            lines.append(f"{section}:")
            lines += [f"  {k}: {v}" for k, v in body.items()]
        else:
            lines.append(f"{section}: {body}")
    return "\n".join(lines) + "\n"


def _typed_section(section):
    return st.dictionaries(st.sampled_from(SECTIONS[section]), st.just(None), max_size=3).flatmap(
        lambda names: st.fixed_dictionaries({n: _typed(f"{section}.{n}") for n in names}))


_sections = st.one_of(st.sampled_from(["name", *SECTIONS]), st.text(max_size=8))
_fields = st.sampled_from([k for ks in SECTIONS.values() for k in ks])
_bodies = st.one_of(_values, st.dictionaries(st.one_of(_fields, st.text(max_size=8)), _values, max_size=3))
_typed_documents = st.dictionaries(st.sampled_from(list(SECTIONS)), st.just(None), max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({n: _typed_section(n) for n in names}))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_typed_documents.map(_yaml_document), _typed_documents.map(_yaml_document),
                 st.dictionaries(_sections, _bodies, max_size=3).map(_yaml_document), st.text(max_size=200)))
def test_config_files_give_a_valid_config_or_gankit_error(text):
    with no_code_runs():
        try:
            cfg = from_dict(read_yaml(text, "f.yaml"))
        except GankitError:
            event("GankitError")
            return
    event("valid config")
    _assert_valid(cfg)


def _assert_valid(cfg):
    """What the trainer relies on: the checks pass again, numbers are finite, the YAML round trip is exact."""
    assert isinstance(cfg, RunConfig) and validate(cfg) is cfg
    for section in SECTIONS:
        for value in vars(getattr(cfg, section)).values():
            assert not isinstance(value, float) or math.isfinite(value)
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


_clean = st.recursive(st.sampled_from(["d", "pi", "e", "0", "1", "2.5", "1e308", "1e-320"]), lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["+", "-", "*", "/", "**"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
    st.tuples(st.sampled_from(["log", "exp", "sqrt", "softplus", "sigmoid", "relu", "abs", "tanh", "log1p"]),
              c).map(lambda t: f"{t[0]}({t[1]})"),
    st.tuples(st.sampled_from(["min", "max"]), c, c).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    c.map(lambda s: f"-{s}"), c.map(lambda s: f"{s}**16")), max_leaves=10)
_atoms = st.one_of(st.sampled_from(["d", "pi", "e", "0", "1", "2.5"]),
                   st.sampled_from(["__import__", "open", "eval", "exec", "os", "sys", "globals", "getattr",
                                    "__builtins__", "torch", "self", "D", "lambda: 0", "'s'", "b'x'", "None", "True",
                                    "...", "[d]", "{d}", "(d,)", "f'{d}'", "(x := 1)", "*d", "d[0]", "d.__class__",
                                    "().__class__.__bases__[0].__subclasses__()", "__import__('os').system('x')"]))
_funcs = st.sampled_from(["log", "exp", "sqrt", "softplus", "sigmoid", "relu", "abs", "tanh", "log1p", "min",
                          "max", "lgo", "print", "getattr", "__import__"])
_hostile = st.recursive(_atoms, lambda c: st.one_of(
    st.tuples(c, st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "@", "<", "==", " and ", " if d else ",
                                  ".", "(", ","]), c).map("".join),
    st.tuples(_funcs, st.lists(c, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
    c.map(lambda s: f"-({s})"), c.map(lambda s: f"({s})**17"),
), max_leaves=12)
_expressions = st.one_of(_clean, _hostile)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_expressions, st.text(max_size=80)))
def test_expressions_parse_or_raise_gankit_error_and_never_run_code(text):
    with no_code_runs():
        try:
            fn = Expression(text)
        except GankitError as exc:
            event("GankitError")
            assert "\n" not in str(exc)
            return
    event("parsed")
    assert callable(fn)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_clean, _clean, _hostile), st.one_of(_clean, _clean, _hostile), st.one_of(_clean, _clean, _hostile),
       st.sampled_from(["real", "probability"]))
def test_custom_objectives_are_ready_to_train_or_gankit_error(f1, f2, f3, domain):
    """What ``gankit train`` builds from f1/f2/f3: an objective whose losses are real numbers, or one clear line."""
    overrides = ("objective.name=custom", f"objective.domain={domain}")
    with no_code_runs():
        try:
            cfg = resolve("mnist-dcgan", overrides, **{"objective.f1": f1, "objective.f2": f2, "objective.f3": f3})
            objective = check_objective(build_objective(cfg))
        except GankitError as exc:
            event("GankitError")
            assert "\n" not in str(exc)
            return
        event("ready to train")
        logits = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0], requires_grad=True)
        loss = objective.loss_d(logits, logits) + objective.loss_g(logits)
        loss.backward()
    assert loss.dtype == torch.float32 and logits.grad.shape == (5,)


def test_the_audit_hook_does_catch_code_running():
    with pytest.raises(AssertionError, match="code ran"):
        with no_code_runs():
            __import__("os").system("true")


def test_deeply_nested_yaml_is_a_gankit_error():
    with pytest.raises(GankitError):
        read_yaml("train: " + "[" * 5000, "f.yaml")


def test_constant_division_by_zero_in_an_expression_evaluates():
    out = Expression("d + 1/0")(torch.tensor([0.5], dtype=torch.float64))
    assert torch.isinf(out).all()


def test_a_deeply_nested_override_stays_text():
    assert parse_override("train.run_name=" + "[" * 5000) == ("train.run_name", "[" * 5000)


def test_a_negative_constant_to_a_fractional_power_is_nan_not_complex():
    out = Expression("d + (-8)**0.5")(torch.tensor([0.5], dtype=torch.float64))
    assert torch.isnan(out).all()
