"""The 64 and 128 px networks: dcgan64 (PyTorch's CelebA DCGAN) and the SNGAN-style resnet, trained a few
steps at every size they support on tiny generated data, with their shapes checked."""
import json

import numpy as np
import pytest
import torch

from gankit import GankitError, resolve
from gankit.data import ImageData, to_uint8_tensor
from gankit.engine import train
from gankit.nets import build_networks
from gankit.run import load_generator

from conftest import make_tiny_images

SMALL = ("model.width_g=4", "model.width_d=4", "model.z_dim=8", "train.batch_size=4", "train.log_every=1",
         "train.progress=false", "train.tensorboard=false", "train.grid_size=4", "train.images=8",
         "train.n_critic=1", "train.precision=fp32")


def _data(size, n=8):
    x = to_uint8_tensor(make_tiny_images(n, size=size, channels=3))
    return ImageData(x, torch.arange(n) % 2, "tiny", ["a", "b"])


@pytest.mark.parametrize("preset,size,extra", [
    ("folder-dcgan64", 64, ()),
    ("folder-resnet128", 32, ()), ("folder-resnet128", 64, ()), ("folder-resnet128", 128, ()),
    ("folder-resnet128", 64, ("model.conditional=projection",)),
    ("folder-resnet128", 32, ("model.options.channels_g=[2,1,1]", "model.options.channels_d=[1,2,2,2]")),
])
def test_trains_a_few_steps_at_each_size(tmp_path, monkeypatch, preset, size, extra):
    monkeypatch.setattr("gankit.health.SAMPLES", 16)  # health statistics of 256 samples at 128 px take seconds
    cfg = resolve(preset, SMALL + (f"data.image_size={size}",) + extra)
    t = train(cfg, tmp_path / "r", data=_data(size))
    assert t.progress.step == 2
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["loss/d"]) and np.isfinite(r["loss/g"]) for r in rows)
    G, _ = load_generator(tmp_path / "r", device="cpu")
    z = torch.randn(3, 8)
    y = torch.tensor([0, 1, 0])
    x = G(z, y) if "projection" in "".join(extra) else G(z)
    assert x.shape == (3, 3, size, size) and x.min() >= -1 and x.max() <= 1
    D = t.parts.modules["D"]
    logits = D(x, y) if "projection" in "".join(extra) else D(x)
    assert logits.shape == (3,)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_resnet_blocks_and_widths(size):
    G, D = build_networks("resnet", 16, (3, size, size), 8, 8, "batch", "spectral", "relu", "relu")
    n_blocks = {32: 3, 64: 4, 128: 5}[size]
    assert len(G.blocks) == n_blocks and len(D.blocks) == n_blocks + 1
    assert D.feature_dim == 8 * {32: 2, 64: 16, 128: 16}[size]
    assert all(hasattr(m, "parametrizations") for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    x = G(torch.randn(2, 16))
    assert x.shape == (2, 3, size, size) and D.features(x).shape == (2, D.feature_dim)


def test_dcgan64_is_pytorchs_example():
    G, D = build_networks("dcgan64", 100, (3, 64, 64), 64, 64, "batch", "batch", "relu", "leaky_relu")
    # the parameter counts the example prints for CelebA (nz=100, ngf=ndf=64, nc=3)
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert abs(torch.cat([c.weight.flatten() for c in convs]).std().item() - 0.02) < 0.002


@pytest.mark.parametrize("arch,size,words", [
    ("resnet", 28, "resnet supports square images of 32, 64, 128"), ("resnet", 256, "32, 64, 128"),
    ("dcgan64", 32, "dcgan64 is for 64x64 images"),
])
def test_unsupported_sizes_are_one_line(arch, size, words):
    with pytest.raises(GankitError, match=words):
        build_networks(arch, 16, (3, size, size), 8, 8, "batch", "spectral", "relu", "relu")


def test_channel_multipliers_are_checked():
    with pytest.raises(GankitError, match=r"channels_g at 64 px needs 4 positive integers"):
        build_networks("resnet", 16, (3, 64, 64), 8, 8, "batch", "spectral", "relu", "relu",
                       options={"channels_g": [1, 2]})
    with pytest.raises(GankitError, match="unknown option model.options.channel_g"):
        resolve("folder-resnet128", ("model.options.channel_g=[1,2]",))
