"""Config resolution: presets, overrides, validation and round trips."""
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit import GankitError
from gankit.config import RunConfig, from_dict, parse_override, preset_names, resolve


def test_every_preset_resolves():
    names = preset_names()
    assert {"digits-dcgan", "mnist-dcgan", "mnist-mlp", "fashion-dcgan", "cifar10-dcgan"} <= set(names)
    for name in names:
        cfg = resolve(name)
        assert cfg.name == name


def test_yaml_round_trip(tmp_path):
    cfg = resolve("mnist-dcgan", ("objective.name=hinge", "train.n_critic=2", "optim.beta1_d=0.0"))
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    again = resolve(str(path))
    assert again == cfg
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_overrides_apply_in_order():
    cfg = resolve("mnist-dcgan", ("train.epochs=3",), **{"train.epochs": 7.0, "data.data_dir": "/x"})
    assert cfg.train.epochs == 7.0 and cfg.data.data_dir == "/x"


@pytest.mark.parametrize("override,match", [
    ("train.epohcs=3", 'unknown config key train.epohcs .did you mean "epochs"'),
    ("trian.epochs=3", 'did you mean "train"'),
    ("train.batch_size=big", "must be an integer"),
    ("train.batch_size=0", "at least 1"),
    ("train.ema=1.5", r"\[0, 1\)"),
    ("train.progress=3", "true or false"),
    ("optim.lr_g=-1", "positive"),
    ("objective.name=custom", "needs objective.f1"),
    ("noequals", "key=value"),
])
def test_bad_overrides(override, match):
    with pytest.raises(GankitError, match=match):
        resolve("mnist-dcgan", (override,))


def test_unknown_preset_suggests():
    with pytest.raises(GankitError, match='did you mean "mnist-dcgan"'):
        resolve("mnist-dcgn")


def test_parse_override_types():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=0.5") == ("a.b", 0.5)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.f1=-0.5*d**2") == ("a.f1", "-0.5*d**2")
    assert parse_override("a.b=null") == ("a.b", None)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=8))
_trees = st.recursive(_scalars, lambda c: st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "data", "model", "objective", "optim", "train", "zzz"]),
                       _trees, max_size=4))
def test_arbitrary_mappings_give_a_config_or_gankit_error(data):
    try:
        cfg = from_dict(data)
    except GankitError:
        return
    assert isinstance(cfg, RunConfig)
