"""The cyclegan mode: networks, pools, unpaired batches, exact resume with pools mid-epoch and mid-decay,
two folders of images end to end (train, grids, translate, evaluate), and one-line errors."""
import json

import numpy as np
import pytest
import torch

from gankit import GankitError, resolve
from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.cli import main
from gankit.data import ImageData
from gankit.engine import Trainer, train
from gankit.modes.cyclegan import ImagePool
from gankit.modes.sources import UnpairedBatches
from gankit.nets import build_networks
from gankit.nets.translate import patch_layers


def _shapes(folder, n, kind, seed, size=16):
    """``n`` RGB images of random-coloured discs or squares on random-coloured backgrounds."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 80, 3)))
        draw, colour = ImageDraw.Draw(im), tuple(int(v) for v in rng.integers(120, 256, 3))
        r, cx, cy = rng.integers(3, 6), rng.integers(5, size - 5), rng.integers(5, size - 5)
        box = [cx - r, cy - r, cx + r, cy + r]
        (draw.ellipse if kind == "disc" else draw.rectangle)(box, fill=colour)
        im.save(folder / f"{kind}{i:02d}.png")


@pytest.fixture
def shapes(tmp_path):
    """discs (A) and squares (B) in the reference's trainA/trainB/testA/testB layout."""
    root = tmp_path / "discs2squares"
    for split, n in (("train", 12), ("test", 4)):
        _shapes(root / f"{split}A", n, "disc", seed=n)
        _shapes(root / f"{split}B", n + 2, "square", seed=n + 1)
    return root


TINY = ("data.name=folder", "data.domain_b=", "data.limit=0", "data.channels=3", "data.image_size=16",
        "model.width_g=4", "model.width_d=4", "model.options.blocks=1", "model.options.downsamples=1",
        "train.batch_size=4", "train.log_every=1", "train.progress=false", "train.tensorboard=false",
        "train.grid_size=12", "train.pool_size=3", "train.precision=fp32")


def _cfg(root, *extra, epochs=3):
    return resolve("digits2mnist-cyclegan", TINY + (f"data.data_dir={root}",) + extra,
                   **{"train.epochs": float(epochs)})


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")} for line in lines]


# ---- networks, pool, batches -------------------------------------------------------------------------
@pytest.mark.parametrize("size,layers", [(16, 1), (28, 2), (32, 2), (64, 3), (256, 3)])
def test_the_patch_discriminator_fits_its_depth_to_the_image_size(size, layers):
    assert patch_layers(size) == layers
    G, D = build_networks("cyclegan", 0, (3, size, size), 8, 8, "instance", "instance", "relu", "leaky_relu",
                          options={"blocks": 1, "downsamples": 2 if size % 4 == 0 else 1})
    x = torch.randn(2, 3, size, size)
    y = G(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    out = D(x)
    assert out.dim() == 4 and out.shape[1] == 1 and min(out.shape[2:]) >= 1


def test_translator_options_that_do_not_fit_are_one_line():
    with pytest.raises(GankitError, match="cannot be downsampled 3 times"):
        build_networks("cyclegan", 0, (1, 28, 28), 8, 8, "instance", "instance", "relu", "leaky_relu",
                       options={"downsamples": 3})
    with pytest.raises(GankitError, match="leaves no patch"):
        build_networks("cyclegan", 0, (1, 28, 28), 8, 8, "instance", "instance", "relu", "leaky_relu",
                       options={"layers": 4})


def test_the_pool_stores_until_full_then_swaps_half_of_the_time():
    pool, g = ImagePool(4), torch.Generator().manual_seed(0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first, g), first) and pool.count == 3
    out = pool.query(torch.full((40, 1, 1, 1), 9.0), g)
    assert pool.count == 4
    old = (out != 9).sum().item()
    assert 0 < old < 40  # some stored fakes came back, some new ones went through
    assert ImagePool(0).query(first, g) is first


def _data(n, value, seed=0):
    x = torch.full((n, 1, 4, 4), float(value)) + torch.arange(n).view(n, 1, 1, 1) / 1000
    return ImageData(x, torch.zeros(n, dtype=torch.long), "x", ["0"])


def test_unpaired_batches_depend_only_on_seed_and_epoch_and_cycle_the_smaller_domain():
    a, b = _data(10, 0), _data(25, 1)
    s1, s2 = UnpairedBatches(a, b, 4, seed=3), UnpairedBatches(a, b, 4, seed=3)
    assert s1.iterations_per_epoch == 6 and s1.images_per_epoch == 48
    s1.take(0, 0)
    for e, k in ((1, 2), (0, 5), (1, 2)):
        x1, x2 = s1.take(e, k), s2.take(e, k)
        assert all(torch.equal(u, v) for u, v in zip(x1.x, x2.x))
    assert not torch.equal(s1.take(0, 1).x[0], s1.take(1, 1).x[0])
    seen = torch.cat([s1.take(0, k).x[0] for k in range(6)]).flatten(1)[:, 0]
    assert len(set(seen.tolist())) == 10  # the 10 A images run through twice (24 slots) in fresh orders
    crops = UnpairedBatches(_data(8, 0), _data(8, 1), 4, seed=0, crop=3, flip=True)
    assert crops.take(0, 0).x[0].shape == (4, 1, 3, 3)
    assert torch.equal(crops.take(0, 1).x[1], UnpairedBatches(_data(8, 0), _data(8, 1), 4, 0, 3, True).take(0, 1).x[1])


# ---- training on two folders -------------------------------------------------------------------------
def test_stopped_mid_epoch_and_mid_decay_and_resumed_equals_an_uninterrupted_run_pools_included(tmp_path, shapes):
    import signal

    extra = ("data.load_size=20", "data.flip=true", "optim.decay=linear", "optim.decay_start=0.3")
    train(_cfg(shapes, *extra), tmp_path / "full")
    t = Trainer(_cfg(shapes, *extra), tmp_path / "part")
    assert t.source.iterations_per_epoch == 3 and t.total_images == 72  # 9 iterations of 4 + 4 images
    k = 5  # in epoch 2, with the learning rates decaying since step 3, each pool full and swapping
    t.parts.optimizers["G_AB"].register_step_post_hook(
        lambda *a: setattr(t, "stop_signal", signal.SIGINT) if t.progress.step == k - 1 else None)
    t.run()
    tensors, meta = load_checkpoint(latest_checkpoint(tmp_path / "part" / "checkpoints"))
    assert meta["progress"]["step"] == k and meta["progress"]["batch"] == 2
    assert meta["mode_state"]["pool_counts"] == {"a": 3, "b": 3}
    assert tensors["mode.pool_a"].shape == (3, 3, 16, 16)
    Trainer(_cfg(shapes, *extra), tmp_path / "part", resume=True).run()
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    assert len(full) == 9 and part == full
    assert full[k]["optim/lr_g_ab"] < full[0]["optim/lr_g_ab"]
    for name in ("g_ab", "g_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b"):
        assert f"loss/{name}" in full[0]


def test_two_folders_train_translate_and_evaluate_from_the_command_line(tmp_path, shapes, capsys):
    from PIL import Image

    run = tmp_path / "run"
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["train", "digits2mnist-cyclegan", "--data-dir", str(shapes), "--run-dir", str(run), "--epochs", "1",
                 *sets, "--set", "objective.lambda_identity=0"]) == 0
    rows = _rows(run)
    assert "loss/idt_a" not in rows[0] and "loss/cycle_a" in rows[0]
    grid = Image.open(run / "samples" / "epoch_001.png")
    assert grid.size == (2 + 2 * 18, 2 + 6 * 18)  # 2 columns (12 // 6), 6 rows of 16 px with 2 px padding
    out = tmp_path / "squares"
    assert main(["translate", str(run), "--direction", "a2b", "--in", str(shapes / "testA"), "--out", str(out)]) == 0
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["source"] for r in manifest] == [f"disc{i:02d}.png" for i in range(4)]
    assert manifest[0]["direction"] == "a2b" and manifest[0]["checkpoint"].endswith(".json")
    assert Image.open(out / "disc00.png").size == (16, 16)
    np.savez(tmp_path / "x.npz", images=np.zeros((3, 30, 30), np.uint8))  # grey, another size: fitted
    assert main(["translate", str(run), "--direction", "b2a", "--in", str(tmp_path / "x.npz"),
                 "--out", str(tmp_path / "y.npz")]) == 0
    with np.load(tmp_path / "y.npz") as f:
        assert f["images"].shape == (3, 16, 16, 3)
    assert len((tmp_path / "y.manifest.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["a2b"]) >= {"cycle_l1", "source", "target"} and 0 <= result["b2a"]["cycle_l1"] <= 1
    assert result["a2b"]["source"] == "folder test (4 images)"
    assert any("no FID" in n for n in result["notes"])
    assert main(["sample", str(run), "--out", str(tmp_path / "s")]) == 2
    assert "use gankit translate" in capsys.readouterr().err
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "Translations" in page and "G_AB(A)" in page and "could not be loaded" not in page


def test_named_domains_report_fid_and_label_agreement_next_to_the_raw_sources(tmp_path, cache, capsys):
    from gankit.metrics.translation import evaluate_translation

    cfg = resolve("digits2mnist-cyclegan", ("data.domain_b=digits", "data.limit=0", "model.width_g=4",
                                            "model.width_d=4", "model.options.blocks=1", "train.batch_size=4",
                                            "train.progress=false", "train.tensorboard=false", "train.images=32"))
    train(cfg, tmp_path / "run")
    result = evaluate_translation(tmp_path / "run", n=50, split="all", directions=("a2b",), n_boot=2)
    r = result["a2b"]
    assert r["source"] == "digits all (50 images)" and r["target"] == "digits test (180 images)"
    for key in ("fid", "raw_fid", "label_agreement", "raw_label_agreement", "cycle_l1"):
        assert np.isfinite(r[key])
    assert r["fid_ci_low"] <= r["fid"] <= r["fid_ci_high"] and "b2a" not in result


@pytest.mark.parametrize("preset,sets,message", [
    ("digits-dcgan", ("mode=cyclegan", "data.domain_b=mnist"), "needs an image-to-image architecture"),
    ("digits2mnist-cyclegan", ("data.domain_b=",), "no domain B is named"),
    ("digits2mnist-cyclegan", ("data.domain_b=mnsit",), 'did you mean "mnist"'),
    ("digits2mnist-cyclegan", ("train.n_critic=2",), "train.n_critic=1"),
    ("digits2mnist-cyclegan", ("objective.penalty=gp",), "objective.penalty=none"),
    ("digits2mnist-cyclegan", ("mode=gan",), "translates images"),
])
def test_settings_the_mode_cannot_use_are_refused_in_one_line_before_data_loads(tmp_path, capsys, preset, sets,
                                                                                message):
    args = [a for s in sets for a in ("--set", s)]
    assert main(["train", preset, "--run-dir", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_config_ranges_and_missing_folders_are_one_line(tmp_path, capsys):
    from gankit.modes.cyclegan import CycleGanMode

    for sets, message in ((("objective.lambda_cycle=-1",), "must not be negative"),
                          (("train.pool_size=-2",), "train.pool_size"),
                          (("data.load_size=10",), "data.load_size")):
        with pytest.raises(GankitError, match=message):
            CycleGanMode.validate(resolve("digits2mnist-cyclegan", sets))
        assert main(["train", "digits2mnist-cyclegan", "--run-dir", str(tmp_path / "r"), "--set", sets[0]]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "only").mkdir()
    assert main(["train", "digits2mnist-cyclegan", "--run-dir", str(tmp_path / "r"), "--set", "data.name=folder",
                 "--set", "data.domain_b=", "--data-dir", str(tmp_path / "only")]) == 2
    assert "has no trainA/ and trainB/ folders" in capsys.readouterr().err
