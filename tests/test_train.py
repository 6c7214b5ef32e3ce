"""End-to-end training on tiny synthetic data: run folder, determinism, resume, sampling."""
import json

import numpy as np
import pytest
import torch

from gankit import GankitError, resolve
from gankit.checkpoint import load_checkpoint
from gankit.engine import Trainer, train
from gankit.checkpoint import latest_checkpoint

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.log_every=1",
        "train.progress=false", "train.grid_size=16", "train.ema=0.9", "objective.penalty=none")


def _cfg(*extra, epochs=2):
    return resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)})


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["images"], r["loss/d"], r["loss/g"]) for r in rows]


def test_writes_the_whole_run_folder(tmp_path, tiny_data):
    t = train(_cfg(), tmp_path / "run", data=tiny_data)
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file()
    assert list(run.glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8  # 64 images / 16 per batch * 2 epochs, logged every step
    for key in ("loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g", "speed/images_per_s"):
        assert np.isfinite(rows[-1][key]), key
    assert 0 <= rows[-1]["d/real"] <= 1
    ck = latest_checkpoint(run / "checkpoints")
    tensors, meta = load_checkpoint(ck)
    assert meta["progress"]["images"] == 128 and t.progress.epoch == 2
    assert any(k.startswith("G_ema.") for k in tensors) and any(k.startswith("opt_d.state") for k in tensors)
    assert meta["config"] == t.cfg.to_dict()


def test_same_seed_same_losses(tmp_path, tiny_data):
    train(_cfg(), tmp_path / "a", data=tiny_data)
    train(_cfg(), tmp_path / "b", data=tiny_data)
    train(_cfg("train.seed=1"), tmp_path / "c", data=tiny_data)
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert _losses(tmp_path / "a") != _losses(tmp_path / "c")


@pytest.mark.parametrize("extra", [
    ("objective.name=minimax",), ("objective.name=least-squares",), ("objective.name=hinge",),
    ("objective.name=quadratic",), ("objective.name=wasserstein", "objective.penalty=gp"),
    ("objective.name=wasserstein", "objective.clip=0.01", "train.n_critic=2"),
    ("objective.name=custom", "objective.f1=-0.5*d**2", "objective.f2=d", "objective.f3=-d"),
    ("objective.penalty=r1", "objective.penalty_weight=5", "objective.penalty_every=2"),
    ("model.arch=mlp", "model.norm_d=spectral"),
])
def test_objectives_and_options_train(tmp_path, tiny_data, extra):
    t = train(_cfg(*extra, epochs=1), tmp_path / "r", data=tiny_data)
    assert all(np.isfinite(v) for row in _losses(tmp_path / "r") for v in row)
    assert t.progress.images == 64


def test_clipping_keeps_weights_in_range(tmp_path, tiny_data):
    t = train(_cfg("objective.name=wasserstein", "objective.clip=0.02", epochs=1), tmp_path / "r", data=tiny_data)
    assert max(p.abs().max().item() for p in t.parts.modules["D"].parameters()) <= 0.02 + 1e-7


def test_resume_reproduces_an_uninterrupted_run(tmp_path, tiny_data):
    train(_cfg(epochs=3), tmp_path / "full", data=tiny_data)
    train(_cfg(epochs=1), tmp_path / "part", data=tiny_data)
    # resume the same config with a longer duration
    Trainer(_cfg(epochs=3), tmp_path / "part", data=tiny_data, resume=True, force=True).run()
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")


def test_resume_with_changed_config_is_refused(tmp_path, tiny_data):
    train(_cfg(epochs=1), tmp_path / "r", data=tiny_data)
    with pytest.raises(GankitError, match=r"train.epochs: 1.0 -> 2.0.*--force"):
        Trainer(_cfg(epochs=2), tmp_path / "r", data=tiny_data, resume=True)


def test_new_run_refuses_to_overwrite_checkpoints(tmp_path, tiny_data):
    train(_cfg(epochs=1), tmp_path / "r", data=tiny_data)
    with pytest.raises(GankitError, match="already holds checkpoints"):
        train(_cfg(epochs=1), tmp_path / "r", data=tiny_data)


def test_divergence_stops_with_a_message(tmp_path, tiny_data):
    with pytest.raises(GankitError, match=r"training diverged at step \d+ \(\d+ images\): loss/[dg] = nan; last good checkpoint"):
        train(_cfg("optim.lr_d=1e30", "optim.lr_g=1e30", "objective.name=least-squares", epochs=2),
              tmp_path / "r", data=tiny_data)


def test_duration_in_images(tmp_path, tiny_data):
    t = train(_cfg("train.images=48"), tmp_path / "r", data=tiny_data)
    assert t.progress.images == 48
    assert (tmp_path / "r" / "samples" / "final.png").is_file()


def test_sample_network_is_ema_when_on(tmp_path, tiny_data):
    t = train(_cfg(epochs=1), tmp_path / "r", data=tiny_data)
    g, e = dict(t.parts.modules["G"].named_parameters()), dict(t.sample_network().named_parameters())
    assert any(not torch.equal(g[k], e[k]) for k in g)


def test_a_new_run_starts_fresh_metrics_and_checkpoints_its_start(tmp_path, tiny_data):
    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "images": 16, "loss/d": 9.0}\n')  # a run that never checkpointed
    train(_cfg("train.keep_checkpoints=10", epochs=1), run, data=tiny_data)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["images"] for r in rows] == [16, 32, 48, 64] and rows[0]["loss/d"] != 9.0
    assert [p.name for p in sorted((run / "checkpoints").glob("*.json"))] == [
        "ckpt-000000000000.json", "ckpt-000000000064.json"]
    _, meta = load_checkpoint(run / "checkpoints" / "ckpt-000000000000.json")
    assert meta["progress"]["images"] == 0 and meta["progress"]["rollbacks"] == 0


def test_linear_decay_holds_then_brings_both_learning_rates_to_zero(tmp_path, tiny_data):
    sets = ("model.arch=mlp", "model.width_g=16", "model.width_d=16", "model.z_dim=4", "train.batch_size=8",
            "train.images=320", "train.log_every=1", "train.progress=false", "train.tensorboard=false",
            "train.grid_size=4", "optim.decay=linear", "optim.decay_start=0.5", "optim.lr_g=0.001",
            "optim.lr_d=0.002")
    train(resolve(None, sets), tmp_path / "run", data=tiny_data)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lr_g = [r["optim/lr_g"] for r in rows]  # step i (0-based) runs at min(1, (1 - 8i/320) / 0.5)
    assert len(lr_g) == 40 and lr_g[:21] == [0.001] * 21
    assert lr_g[21] == pytest.approx(0.001 * 0.95) and lr_g[-1] == pytest.approx(0.001 * 0.05)
    assert all(a > b for a, b in zip(lr_g[20:], lr_g[21:]))
    assert [r["optim/lr_d"] for r in rows] == pytest.approx([2 * v for v in lr_g])


def test_top_k_g_step_learns_only_from_the_fakes_d_rates_highest():
    from gankit.modes.gan import _topk_loss
    from gankit.objectives import get_objective

    torch.manual_seed(0)
    G = torch.nn.Linear(3, 2)
    D = torch.nn.Linear(2, 1, bias=False)  # D(x) = 3 x0 - 2 x1: a linear critic, fixed
    D.weight.data.copy_(torch.tensor([[3.0, -2.0]]))
    objective = get_objective("non-saturating")
    z = torch.randn(8, 3)
    logits = D(G(z)).squeeze(1)
    got = torch.autograd.grad(_topk_loss(objective.loss_g, 0.25, logits), list(G.parameters()))
    top = logits.topk(2).indices  # 0.25 of 8
    expected = torch.autograd.grad(objective.loss_g(D(G(z)).squeeze(1)[top]), list(G.parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(got, expected))
    everything = torch.autograd.grad(objective.loss_g(D(G(z)).squeeze(1)), list(G.parameters()))
    assert not torch.allclose(got[0], everything[0])


def test_the_g_phase_uses_top_k_when_asked(tmp_path, tiny_data):
    """train.g_topk < 1 changes G's update and nothing else; 1 leaves the plain loss."""
    runs = {k: train(_cfg(f"train.g_topk={k}", "train.images=64", "train.log_every=1"), tmp_path / str(k),
                     data=tiny_data) for k in (1.0, 0.25)}
    rows = {k: [json.loads(x) for x in (tmp_path / str(k) / "metrics.jsonl").read_text().splitlines()] for k in runs}
    assert rows[1.0][0]["loss/d"] == rows[0.25][0]["loss/d"]  # the first D step sees the same batches
    assert rows[1.0][0]["loss/g"] != rows[0.25][0]["loss/g"]  # G's loss is the top-k one


def test_g_topk_out_of_range_is_refused():
    with pytest.raises(GankitError, match=r"train.g_topk must be in \(0, 1\]"):
        resolve("mnist-dcgan", ("train.g_topk=0",))
