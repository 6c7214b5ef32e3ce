"""Latent tools: lerp/slerp maths, traversal, class interpolation, arithmetic and the CLI that saves them."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.latent import arithmetic, class_interpolation, interpolate, lerp, render, seed_code, slerp, traverse
from gankit.build import build_models
from gankit.engine import train

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "model.embed_dim=4", "train.batch_size=16",
        "train.progress=false", "train.tensorboard=false", "train.grid_size=8", "objective.penalty=none")


@given(seed=st.integers(0, 10_000), dim=st.integers(2, 64))
@settings(max_examples=40, deadline=None)
def test_slerp_hits_both_endpoints_and_interpolates_the_norm(seed, dim):
    g = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    t = torch.linspace(0, 1, 11)
    path = slerp(z0, z1, t)
    torch.testing.assert_close(path[0], z0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(path[-1], z1, rtol=1e-5, atol=1e-5)
    # the norm moves linearly from |z0| to |z1|; the direction stays in the plane of z0 and z1
    expected = (1 - t) * z0.norm() + t * z1.norm()
    torch.testing.assert_close(path.norm(dim=1), expected, rtol=1e-5, atol=1e-5)
    basis = torch.linalg.qr(torch.stack([z0, z1], 1).double())[0]
    in_plane = basis @ (basis.T @ path.double().T)
    torch.testing.assert_close(in_plane.T, path.double(), rtol=1e-5, atol=1e-5)


def test_slerp_of_equal_norm_codes_stays_on_the_sphere_and_lerp_does_not():
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    t = torch.linspace(0, 1, 9)
    torch.testing.assert_close(slerp(z0, z1, t).norm(dim=1), torch.full((9,), 3.0))
    mid = slerp(z0, z1, torch.tensor([0.5]))[0]
    torch.testing.assert_close(mid, torch.tensor([3 / math.sqrt(2), 3 / math.sqrt(2), 0.0]))
    assert lerp(z0, z1, torch.tensor([0.5]))[0].norm() == pytest.approx(3 / math.sqrt(2), rel=1e-6)
    # parallel codes fall back to lerp instead of dividing by sin(0)
    torch.testing.assert_close(slerp(z0, 2 * z0, t), lerp(z0, 2 * z0, t))


@pytest.fixture(params=["none", "projection"])
def G(request):
    torch.manual_seed(0)
    cfg = resolve("mnist-cdcgan", TINY + (f"model.conditional={request.param}",))
    return build_models(cfg, (1, 28, 28), n_classes=4)[0].eval()


def test_interpolation_ends_are_the_seed_images(G):
    label = 1 if getattr(G, "n_classes", 0) else None
    z0, z1 = seed_code(8, 1), seed_code(8, 2)
    for method in ("linear", "spherical"):
        images = interpolate(G, z0, z1, steps=6, method=method, label=label)
        assert images.shape == (6, 1, 28, 28)
        torch.testing.assert_close(images[0], render(G, z0[None], label)[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(images[-1], render(G, z1[None], label)[0], rtol=0, atol=1e-6)


def test_traversal_changes_only_one_coordinate(G):
    z = seed_code(8, 3)
    images = traverse(G, z, dim=5, values=[-2.0, 0.0, 2.0])
    codes = z[None].repeat(3, 1)
    codes[:, 5] = torch.tensor([-2.0, 0.0, 2.0])
    torch.testing.assert_close(images, render(G, codes), rtol=0, atol=1e-6)
    assert (images[0] - images[2]).abs().max() > 1e-4
    with pytest.raises(GankitError, match="--dim must be in 0..7"):
        traverse(G, z, dim=8, values=[0.0])


def test_arithmetic_on_averaged_codes(G):
    a, b, c = torch.randn(3, 8), torch.randn(2, 8), torch.randn(4, 8)
    images = arithmetic(G, a, b, c)
    expected = render(G, (a.mean(0) - b.mean(0) + c.mean(0))[None])[0]
    assert images.shape == (4, 1, 28, 28)
    torch.testing.assert_close(images[3], expected, rtol=0, atol=1e-6)


def test_class_interpolation_moves_between_the_two_classes():
    torch.manual_seed(0)
    G = build_models(resolve("mnist-cdcgan", TINY), (1, 28, 28), n_classes=4)[0].eval()
    z = seed_code(8, 1)
    images = class_interpolation(G, z, 0, 3, steps=5)
    torch.testing.assert_close(images[0], render(G, z[None], 0)[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(images[-1], render(G, z[None], 3)[0], rtol=0, atol=1e-6)
    assert (images[2] - images[0]).abs().max() > 1e-4 and (images[2] - images[-1]).abs().max() > 1e-4


def test_labels_are_refused_for_unconditional_generators():
    G = build_models(resolve("mnist-dcgan", TINY), (1, 28, 28))[0].eval()
    with pytest.raises(GankitError, match="--class needs a conditional run"):
        render(G, torch.randn(2, 8), label=1)
    with pytest.raises(GankitError, match="class interpolation needs a conditional run"):
        class_interpolation(G, torch.randn(8), 0, 1)


def test_latent_cli_writes_grids_and_gifs(tmp_path, tiny_data, capsys):
    run = tmp_path / "run"
    train(resolve("mnist-cdcgan", TINY, **{"train.epochs": 1.0}), run, data=tiny_data)
    r = str(run)
    assert main(["latent", "interpolate", r, "--seeds", "1,2,3", "--steps", "5", "--class", "b",
                 "--out", str(tmp_path / "i.png"), "--gif", str(tmp_path / "i.gif")]) == 0
    assert Image.open(tmp_path / "i.png").size == (5 * 30 + 2, 2 * 30 + 2)  # 2 rows of 5, 28 px + 2 padding
    gif = Image.open(tmp_path / "i.gif")
    assert gif.n_frames == 9 + 7  # seeds 1 -> 2 -> 3 once (9 frames), then back without repeating the ends
    assert main(["latent", "traverse", r, "--seed", "1", "--dim", "2", "--range=-2,2", "--steps", "4",
                 "--out", str(tmp_path / "t.png")]) == 0
    assert main(["latent", "classes", r, "--seeds", "1,2", "--from", "0", "--to", "d", "--steps", "6",
                 "--out", str(tmp_path / "c.png"), "--gif", str(tmp_path / "c.gif")]) == 0
    assert main(["latent", "arithmetic", r, "--a", "1,2", "--b", "3", "--c", "4,5", "--out",
                 str(tmp_path / "a.png")]) == 0
    assert Image.open(tmp_path / "a.png").size == (4 * 30 + 2, 32)
    capsys.readouterr()
    assert main(["latent", "interpolate", r, "--seeds", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "--seeds needs at least two seeds" in capsys.readouterr().err
