"""The progressive mode: schedule, batches per resolution, the paper's network shapes at every stage, growth of
a 64x64 RGB folder end to end, exact resume in the middle of a fade, tools on a grown run, one-line errors."""
import json
import signal

import numpy as np
import pytest
import torch

from gankit import GankitError, resolve
from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.cli import main
from gankit.data import ImageData, to_tensor_images
from gankit.engine import Trainer, train
from gankit.modes.progressive import Schedule
from gankit.modes.sources import GrowingBatches
from gankit.nets import build_networks
from gankit.nets.progan import stage_channels

from conftest import make_tiny_images

QUIET = ("train.log_every=1", "train.progress=false", "train.tensorboard=false", "train.precision=fp32",
         "train.grid_size=8")


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")} for line in lines]


def _digits_like(n=48, seed=0) -> ImageData:
    return ImageData(to_tensor_images(make_tiny_images(n, seed=seed)), torch.zeros(n, dtype=torch.long), "tiny", [])


def _cfg(*extra, **direct):
    tiny = ("model.codes=0", "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=4", "grow.fade_images=12",
            "grow.stable_images=8")
    return resolve("mnist-progan", QUIET + tiny + extra, **direct)


# ---- the schedule and its batches -------------------------------------------------------------------------

def test_the_schedule_counts_stages_and_alpha_in_images():
    s = Schedule([4, 8, 16, 32], fade=10, stable=20, batch={8: 2}, default_batch=4)
    assert s.length == 20 + 3 * 30
    assert s.at(0) == (0, 1.0, 0) and s.at(19) == (0, 1.0, 0)
    assert s.at(20) == (1, 0.0, 1) and s.at(25) == (1, 0.5, 1) and s.at(30) == (1, 1.0, 2)
    assert s.at(50) == (2, 0.0, 3) and s.at(s.length) == (3, 1.0, 6) and s.at(10 ** 9) == (3, 1.0, 6)
    assert s.starts() == [20, 50, 80]
    assert [s.batch_size(i) for i in (0, 19, 20, 49, 50)] == [4, 4, 2, 2, 4]
    no_fade = Schedule([4, 8], fade=0, stable=5, batch={}, default_batch=4)
    assert no_fade.at(5) == (1, 1.0, 2) and no_fade.length == 10
    full = Schedule([4, 8, 16], fade=0, stable=0, batch={}, default_batch=4)  # no growing: the baseline
    assert full.at(0) == (2, 1.0, 4) and full.length == 0 and full.batch_size(0) == 4


def test_growing_batches_change_size_at_stage_starts_and_take_each_image_once_per_epoch():
    x = torch.zeros(50, 1, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(50, dtype=torch.uint8)  # image i says i
    data = ImageData(x, torch.zeros(50, dtype=torch.long), "ids", [])
    size = lambda images: 4 if images < 30 else 8  # noqa: E731
    walked, images = [], 0
    source = GrowingBatches(data, size, [30], seed=3)
    for epoch in range(3):
        ids = []
        for index in range(source.iterations(epoch)):
            batch = source.take(epoch, index)
            assert batch.images == size(images)
            images += batch.images
            ids += batch.x[0][:, 0, 0, 0].add(1).mul(127.5).round().long().tolist()
            walked.append((epoch, index, batch.x[0]))
        assert len(set(ids)) == len(ids)  # no image twice in an epoch
        assert len(ids) == 48
    # epoch 0: 8 batches of 4 (the 8th starts at 28 < 30), then 2 of 8 (48 images; 8 more do not fit in 50)
    assert [source.iterations(e) for e in range(3)] == [10, 6, 6]
    assert source.epoch_fraction(8, 0) == 32 / 50 and source.epoch_fraction(10, 0) == 1.0
    fresh = GrowingBatches(data, size, [30], seed=3)  # a resumed run asks straight for a late iteration
    epoch, index, x = walked[-3]
    assert torch.equal(fresh.take(epoch, index).x[0], x)
    with pytest.raises(GankitError, match="does not fit"):
        GrowingBatches(data, lambda i: 64, [], seed=0).iterations(0)


# ---- networks ---------------------------------------------------------------------------------------------

def test_the_networks_have_the_papers_shapes_at_every_stage_of_a_64px_rgb_model():
    width, z = 32, 16
    G, D = build_networks("progan", z, (3, 64, 64), width, width, "none", "none", "leaky_relu", "leaky_relu")
    C = {r: stage_channels(width, r) for r in (4, 8, 16, 32, 64)}
    assert C == {4: 32, 8: 32, 16: 32, 32: 32, 64: 16}  # the paper's 512 ... 512, 256 at 64, scaled to 32
    assert G.dense.weight.shape == (C[4] * 16, z) and G.blocks[0].conv.weight.shape == (C[4], C[4], 3, 3)
    assert D.blocks[0][0].conv.weight.shape == (C[4], C[4] + 1, 3, 3)  # + the minibatch std channel
    assert D.blocks[0][1].conv.weight.shape == (C[4], C[4], 4, 4) and D.head.weight.shape == (1, C[4])
    zs = torch.randn(5, z)
    for k, r in enumerate((4, 8, 16, 32, 64)):
        if k:
            assert G.blocks[k][0].conv.weight.shape == (C[r], C[r // 2], 3, 3)
            assert G.blocks[k][1].conv.weight.shape == (C[r], C[r], 3, 3)
            assert D.blocks[k][0].conv.weight.shape == (C[r], C[r], 3, 3)
            assert D.blocks[k][1].conv.weight.shape == (C[r // 2], C[r], 3, 3)
        assert G.to_rgb[k].weight.shape == (3, C[r], 1, 1) and D.from_rgb[k].weight.shape == (C[r], 3, 1, 1)
        for alpha in ((0.3, 1.0) if k else (1.0,)):
            G.set_growth(k, alpha)
            D.set_growth(k, alpha)
            x = G(zs, native=True)
            assert x.shape == (5, 3, r, r) and G(zs).shape == (5, 3, 64, 64)
            assert D(x).shape == (5,) and D(G(zs)).shape == (5,)


def test_at_full_size_the_networks_have_the_papers_parameter_counts():
    """Table 2 of the paper: 23.1M parameters in G and in D at 1024x1024 (one toRGB / fromRGB counted)."""
    G, D = build_networks("progan", 512, (3, 1024, 1024), 512, 512, "none", "none", "leaky_relu", "leaky_relu")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    g = count(G) - count(G.to_rgb) + count(G.to_rgb[-1])
    d = count(D) - count(D.from_rgb) + count(D.from_rgb[-1])
    assert round(g / 1e6, 1) == 23.1 and round(d / 1e6, 1) == 23.1


def test_a_fade_starts_where_the_previous_stage_ended():
    """At alpha 0 the grown G draws what the smaller one drew (upsampled), and D says what it said."""
    G, D = build_networks("progan", 8, (1, 28, 28), 8, 8, "none", "none", "leaky_relu", "leaky_relu")
    z = torch.randn(4, 8)
    G.set_growth(1, 1.0)
    D.set_growth(1, 1.0)
    before, verdict = G(z), D(G(z, native=True))
    G.set_growth(2, 0.0)
    D.set_growth(2, 0.0)
    assert torch.allclose(G(z), before, atol=1e-6)
    assert torch.allclose(D(G(z, native=True)), verdict, atol=1e-5)


# ---- training ---------------------------------------------------------------------------------------------

def test_a_64px_rgb_folder_grows_through_every_stage_with_labelled_grids_and_a_timeline(tmp_path, capsys):
    from PIL import Image

    from conftest import write_image_folder

    folder = write_image_folder(tmp_path / "faces", 24, size=64, channels=3)
    run = tmp_path / "run"
    sets = [a for s in (*QUIET, "data.name=folder", "data.image_size=64", "data.channels=3", "model.codes=0",
                        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=4", "grow.fade_images=8",
                        "grow.stable_images=8", "grow.batch_sizes={64: 2}") for a in ("--set", s)]
    assert main(["train", "mnist-progan", "--data-dir", str(folder), "--run-dir", str(run), *sets]) == 0
    rows = _rows(run)
    assert sorted({r["resolution"] for r in rows}) == [4, 8, 16, 32, 64]
    assert [r["stage"] for r in rows] == sorted(r["stage"] for r in rows)
    assert any(0 < r["alpha"] < 1 for r in rows)
    assert rows[-1]["images"] == 8 + 4 * 16 and rows[-1]["images"] - rows[-2]["images"] == 2  # batch 2 at 64
    timeline = Image.open(run / "samples" / "timeline.png")
    row = Image.open(run / "samples" / "stage_4.png")
    assert timeline.size == (row.width, 5 * row.height) and row.width == 2 + 8 * 66
    grid = Image.open(run / "samples" / "final.png" if (run / "samples" / "final.png").exists() else
                      sorted((run / "samples").glob("epoch_*.png"))[-1])
    assert grid.height == 14 + 2 + 4 * 66  # the label strip over 4 rows of 2 images of 64 px (2 px padding)
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        assert f["images"].shape[1:] == (64, 64, 3)
    assert main(["report", str(run)]) == 0
    assert "Growth" in (run / "report.html").read_text()


def test_stopped_in_the_middle_of_a_fade_and_resumed_equals_an_uninterrupted_run(tmp_path):
    extra = ("grow.batch_sizes={8: 2}",)  # the fade into 8x8 also changes the batch size
    data = _digits_like(40)
    train(_cfg(*extra), tmp_path / "full", data=data)
    t = Trainer(_cfg(*extra), tmp_path / "part", data=_digits_like(40))
    k = 5  # 2 iterations of 4 at 4x4, then 8x8 fading in with batches of 2: alpha 4/12 after step 5
    t.parts.optimizers["G"].register_step_post_hook(
        lambda *a: setattr(t, "stop_signal", signal.SIGINT) if t.progress.step == k - 1 else None)
    t.run()
    tensors, meta = load_checkpoint(latest_checkpoint(tmp_path / "part" / "checkpoints"))
    assert meta["progress"]["step"] == k and meta["mode_state"] == {"phase": 1}
    stage, alpha = tensors["G.growth"].tolist()
    assert stage == 1 and 0 < alpha < 1
    Trainer(_cfg(*extra), tmp_path / "part", data=_digits_like(40), resume=True).run()
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    assert part == full and len(full) > k + 3
    assert [r["resolution"] for r in full][:k + 1] == [4, 4, 8, 8, 8, 8]
    assert "loss/drift" in full[0] and "loss/penalty" in full[0]
    with pytest.raises(GankitError, match="cannot change on resume: grow.fade_images: 12 -> 6"):
        Trainer(_cfg(*extra, "grow.fade_images=6"), tmp_path / "part", data=_digits_like(40), resume=True,
                force=True)


def test_the_optimisers_state_is_cleared_when_a_fade_starts_and_ends(tmp_path):
    cleared = []
    t = Trainer(_cfg(), tmp_path / "run", data=_digits_like(40))
    opt = t.parts.optimizers["D"]
    t.parts.optimizers["D"].register_step_pre_hook(lambda *a: cleared.append(len(opt.state) == 0))
    t.run()
    # stage 0: 2 steps; fade: 3; stable: 2; ...: the first step of each phase starts from an empty state
    assert cleared[:8] == [True, False, True, False, False, True, False, True]


@pytest.mark.parametrize("codes", [0, 4])
def test_tools_use_the_grown_run_at_the_datas_size_with_the_padding_cropped(tmp_path, capsys, codes):
    import gankit

    train(_cfg(f"model.codes={codes}"), tmp_path / "run", data=_digits_like(40))
    run = gankit.load_run(tmp_path / "run")
    grown = [m for m in run.network().modules() if hasattr(m, "set_growth")]
    assert [m.stage for m in grown] == [3] and gankit.sample(run, 5).shape == (5, 1, 28, 28)
    assert (tmp_path / "run" / "clusters.safetensors").is_file() == bool(codes)
    assert main(["latent", "interpolate", str(tmp_path / "run"), "--out", str(tmp_path / "i.png")]) == 0
    assert main(["sample", str(tmp_path / "run"), "--n", "20", "--out", str(tmp_path / "x.npz")]) == 0  # export
    with np.load(tmp_path / "x.npz") as f:
        assert f["images"].shape == (20, 28, 28)


# ---- errors -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sets, message", [
    (("mode=progressive", "model.arch=dcgan", "model.options={}"), "set model.arch=progan"),
    (("mode=gan",), "use it with mode=progressive"),
    (("grow.batch_sizes.33=4",), "keys are resolutions"),
    (("grow.batch_sizes.8=0",), "keys are resolutions"),
    (("grow.stable_images=0",), "grow.stable_images must be at least 1"),
    (("grow.fade_images=-1",), "grow.fade_images must not be negative"),
    (("train.compile=true",), "set train.compile=false"),
    (("model.norm_g=batch",), "set model.norm_g=none"),
    (("model.options.start=3",), "must be a power of two"),
    (("model.conditional=concat",), "set model.conditional=none"),
    (("grow.batch_sizes.64=4",), "never train at"),
    (("grow.batch_sizes.16=64",), "fewer than the largest batch"),
])
def test_settings_that_cannot_grow_are_one_line(tmp_path, capsys, sets, message):
    folder = tmp_path / "d"
    from conftest import write_image_folder

    write_image_folder(folder, 40, size=28)
    args = ["train", "mnist-progan", "--data-dir", str(folder), "--run-dir", str(tmp_path / "r"),
            "--set", "data.name=folder", "--set", "model.codes=0", "--set", "model.width_g=8", "--set", "model.width_d=8",
            "--set", "train.batch_size=4"]
    assert main(args + [a for s in sets for a in ("--set", s)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_without_growing_every_layer_trains_at_full_resolution_from_the_first_image(tmp_path):
    """grow.fade_images=0 grow.stable_images=0: the baseline of docs/progressive.md, same networks, no stages."""
    train(_cfg("grow.fade_images=0", "grow.stable_images=0", **{"train.images": 16}), tmp_path / "run",
          data=_digits_like(40))
    rows = _rows(tmp_path / "run")
    assert len(rows) == 4 and {(r["stage"], r["resolution"], r["alpha"]) for r in rows} == {(3, 32, 1.0)}
    assert sorted(p.name for p in (tmp_path / "run" / "samples").glob("stage_*.png")) == ["stage_3.png"]
