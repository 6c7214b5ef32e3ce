"""Shape contracts of every network and option: G(z) -> (N, C, H, W) in [-1, 1]; D(x) -> (N,)."""
import re

import pytest
import torch

from gankit import GankitError
from gankit.nets import ACTIVATIONS, NORMS, build_networks

SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", NORMS)
def test_shapes_per_norm(arch, shape, norm):
    G, D = build_networks(arch, 16, shape, 8, 8, norm, norm, "relu", "leaky_relu")
    x = G(torch.randn(5, 16))
    assert x.shape == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (5,)
    assert D.features(x).shape == (5, D.feature_dim)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_shapes_per_activation(arch, act):
    G, D = build_networks(arch, 10, (1, 28, 28), 8, 8, "batch", "none", act, act)
    assert D(G(torch.randn(3, 10))).shape == (3,)


def test_dcgan_d_first_layer_has_no_batchnorm():
    _, D = build_networks("dcgan", 10, (1, 28, 28), 8, 8, "batch", "batch", "relu", "leaky_relu")
    first_two = list(D.body)[:2]
    assert isinstance(first_two[0], torch.nn.Conv2d) and not isinstance(first_two[1], torch.nn.BatchNorm2d)


def test_spectral_norm_bounds_the_layer():
    _, D = build_networks("dcgan", 10, (1, 28, 28), 8, 8, "batch", "spectral", "relu", "leaky_relu")
    D.train()
    for _ in range(30):  # power iteration converges during forward passes
        D(torch.randn(4, 1, 28, 28))
    w = D.head.weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_wrong_input_shape_is_caught_at_the_boundary():
    G, D = build_networks("dcgan", 10, (1, 28, 28), 8, 8, "batch", "batch", "relu", "leaky_relu")
    with pytest.raises(AssertionError):
        G(torch.randn(3, 11))
    with pytest.raises(AssertionError):
        D(torch.randn(3, 1, 32, 32))


@pytest.mark.parametrize("kw,match", [({"arch": "gan"}, "architecture"), ({"norm": "btach"}, "batch"),
                                      ({"act": "relux"}, "relu"), ({"shape": (1, 30, 30)}, "image sizes")])
def test_bad_choices(kw, match):
    args = {"arch": "dcgan", "norm": "batch", "act": "relu", "shape": (1, 28, 28), **kw}
    with pytest.raises(GankitError, match=match):
        build_networks(args["arch"], 4, args["shape"], 8, 8, args["norm"], args["norm"], args["act"], args["act"])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("depth", [1, 2])
def test_dcgan_d_depth_adds_3x3_blocks_at_the_lowest_resolution(shape, depth):
    _, D0 = build_networks("dcgan", 10, shape, 8, 8, "batch", "spectral", "relu", "leaky_relu")
    _, D = build_networks("dcgan", 10, shape, 8, 8, "batch", "spectral", "relu", "leaky_relu", depth_d=depth)
    convs = [m for m in D.body if isinstance(m, torch.nn.Conv2d)]
    extra = convs[-depth:]
    assert len(convs) == len([m for m in D0.body if isinstance(m, torch.nn.Conv2d)]) + depth
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.in_channels == c.out_channels for c in extra)
    assert D.feature_dim == D0.feature_dim and D(torch.randn(3, *shape)).shape == (3,)


def test_depth_d_is_refused_for_the_mlp():
    with pytest.raises(GankitError, match="model.depth_d applies to dcgan only"):
        build_networks("mlp", 4, (1, 28, 28), 8, 8, "none", "none", "relu", "relu", depth_d=1)


def test_architecture_options_come_from_yaml_and_set_and_are_checked(tmp_path):
    from gankit import GankitError
    from gankit.api import resolve_config as config
    from gankit.build import build_models

    cfg = config("mnist-mlp", ["model.options.widths=[32,48]"])
    assert cfg.model.options == {"widths": [32, 48]}
    G, D = build_models(cfg, (1, 28, 28))
    assert [m.out_features for m in G.net if isinstance(m, torch.nn.Linear)] == [32, 48, 784]
    assert [m.out_features for m in D.body if isinstance(m, torch.nn.Linear)] == [48, 32]
    path = tmp_path / "c.yaml"
    path.write_text("model: {arch: mlp, options: {depth: 1}}\n")
    G, _ = build_models(config(str(path)), (1, 28, 28))
    assert len([m for m in G.net if isinstance(m, torch.nn.Linear)]) == 2
    for bad, message in ((["model.options.widht=3"], 'unknown option model.options.widht for architecture mlp '
                                                      '(did you mean "widths"?)'),
                         (["model.options.widths=[a]"], "must be a list of ints"),
                         (["model.arch=dcgan", "model.options.depth=2"], "for architecture dcgan; its options: none"),
                         (["model.options=3"], "model.options must be a mapping")):
        with pytest.raises(GankitError, match=re.escape(message)):
            config("mnist-mlp", bad)


def test_wrappers_say_what_a_base_network_lacks():
    from gankit import GankitError
    from gankit.nets.conditional import ProjectionDiscriminator

    with pytest.raises(GankitError, match="Linear cannot serve as the base of a projection D: it has no "
                                          "image_shape, feature_dim, head, features"):
        ProjectionDiscriminator(torch.nn.Linear(2, 1), 3)
