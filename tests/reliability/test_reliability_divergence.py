"""Divergence: NaN/Inf in a loss, gradient or weight is caught by the next logged step at the latest.

The run stops naming the step, the value and the last good checkpoint, or with
train.on_nan=rollback reloads that checkpoint at lower learning rates and goes on.
No checkpoint is ever written from non-finite weights.
"""
import json
import math

import pytest
import torch

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.engine import Trainer, train
from gankit.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint

from conftest import write_image_folder

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.progress=false",
        "train.tensorboard=false", "train.grid_size=16", "objective.penalty=none")


def _cfg(*extra, epochs=2):
    return resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)})


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")} for line in lines]


def _at_step(trainer, step, action):
    """Run ``action()`` right after G's update in G step ``step`` (1-based)."""
    def hook(opt, args, kwargs):
        if trainer.progress.step == step - 1:
            action()
    trainer.parts.optimizers["G"].register_step_post_hook(hook)


def _poison(module):
    with torch.no_grad():
        next(module.parameters()).view(-1)[0] = math.nan


def test_a_nan_weight_after_an_unlogged_step_is_caught_at_the_next_logged_step(tmp_path, tiny_data):
    t = Trainer(_cfg("train.log_every=4"), tmp_path / "r", data=tiny_data)  # 4 steps an epoch; logs at 4, 8
    _at_step(t, 5, lambda: _poison(t.parts.modules["G"]))
    with pytest.raises(GankitError) as info:
        t.run()
    last = tmp_path / "r" / "checkpoints" / "ckpt-000000000064.json"
    assert str(info.value) == (f"training diverged at step 8 (128 images): loss/d = nan; last good checkpoint: "
                               f"{last}; try a lower learning rate or a gradient penalty, or --set train.on_nan=rollback")
    assert latest_checkpoint(tmp_path / "r" / "checkpoints") == last
    assert _rows(tmp_path / "r")[-1]["loss/d"] == "nan"  # the bad row is logged, for the record
    assert "error: training diverged at step 8" in (tmp_path / "r" / "log.txt").read_text()


def test_a_nan_weight_is_caught_on_its_own_logged_step(tmp_path, tiny_data):
    t = Trainer(_cfg("train.log_every=4"), tmp_path / "r", data=tiny_data)
    _at_step(t, 4, lambda: _poison(t.parts.modules["G"]))  # after the losses and gradients of step 4 were measured
    with pytest.raises(GankitError, match=r"^training diverged at step 4 \(64 images\): weight_max/g = nan; "
                                          r"last good checkpoint: .*ckpt-000000000000\.json;"):
        t.run()


def test_an_infinite_gradient_is_named(tmp_path, tiny_data):
    t = Trainer(_cfg("train.log_every=2"), tmp_path / "r", data=tiny_data)
    first = next(t.parts.modules["D"].parameters())
    first.register_hook(lambda g: g * math.inf if t.progress.step == 3 else g)  # in G step 4
    with pytest.raises(GankitError, match=r"^training diverged at step 4 \(64 images\): grad_norm/d = inf;"):
        t.run()


def test_no_checkpoint_is_written_from_nan_weights(tmp_path, tiny_data):
    t = Trainer(_cfg("train.log_every=100"), tmp_path / "r", data=tiny_data)  # no logged step at all
    _at_step(t, 3, lambda: _poison(t.parts.modules["D"]))
    with pytest.raises(GankitError, match=r"^training diverged at step 4 \(64 images\): weight_max/d = nan; "
                                          r"last good checkpoint: .*ckpt-000000000000\.json"):
        t.run()
    assert [p.name for p in list_checkpoints(tmp_path / "r" / "checkpoints")] == ["ckpt-000000000000.json"]


def test_rollback_reloads_the_last_good_checkpoint_at_lower_learning_rates(tmp_path, tiny_data):
    lr, factor = 1e30, 1e-33
    diverging = ("objective.name=least-squares", "train.log_every=1", "train.on_nan=rollback")
    t = train(_cfg(*diverging, f"optim.lr_g={lr}", f"optim.lr_d={lr}", f"train.rollback_lr_factor={factor}"),
              tmp_path / "r", data=tiny_data)
    assert t.progress.rollbacks == 1 and t.progress.images == 128
    assert [g["lr"] for g in t.parts.optimizers["D"].param_groups] == [lr * factor]
    rows = _rows(tmp_path / "r")
    marks = [r for r in rows if "health/rollback" in r]
    assert marks == [{"step": 0, "images": 0, "health/rollback": 1.0, "optim/lr_g": lr * factor,
                      "optim/lr_d": lr * factor}]
    assert all(math.isfinite(r["loss/d"]) for r in rows if "loss/d" in r)
    log = (tmp_path / "r" / "log.txt").read_text()
    assert ("training diverged at step 1 (16 images): loss/g = nan; rolled back to ckpt-000000000000.json "
            "(step 0, 0 images) with learning rates x1e-33: lr_d=0.001, lr_g=0.001 (rollback 1 of 3)") in log
    # from the rollback on, the run is the one it would have been at the lowered rates from the start
    train(_cfg("objective.name=least-squares", "train.log_every=1", f"optim.lr_g={lr * factor!r}",
               f"optim.lr_d={lr * factor!r}"), tmp_path / "fresh", data=tiny_data)
    assert [r for r in rows if "health/rollback" not in r] == _rows(tmp_path / "fresh")
    _, meta = load_checkpoint(latest_checkpoint(tmp_path / "r" / "checkpoints"))
    assert meta["progress"]["rollbacks"] == 1


def test_rollbacks_are_capped(tmp_path, tiny_data):
    cfg = _cfg("objective.name=least-squares", "optim.lr_g=1e30", "optim.lr_d=1e30", "train.log_every=1",
               "train.on_nan=rollback", "train.max_rollbacks=2")
    with pytest.raises(GankitError, match=r"^training diverged at step 1 \(16 images\): loss/g = nan after 2 "
                                          r"rollbacks; last good checkpoint: .*ckpt-000000000000\.json; try a lower"):
        train(cfg, tmp_path / "r", data=tiny_data)
    assert (tmp_path / "r" / "log.txt").read_text().count("rolled back to ckpt-000000000000.json") == 2


def test_divergence_from_the_command_line_is_one_line_with_exit_2(tmp_path, capsys):
    folder = tmp_path / "imgs"
    write_image_folder(folder, 16)
    sets = ["data.name=folder", "model.codes=0", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
            "train.batch_size=8",
            "train.progress=false", "train.tensorboard=false", "train.grid_size=4", "optim.lr_d=1e30",
            "optim.lr_g=1e30", "objective.name=least-squares", "train.log_every=1"]
    argv = ["train", "mnist-dcgan", "--data-dir", str(folder), "--run-dir", str(tmp_path / "r"), "--device", "cpu",
            *[a for s in sets for a in ("--set", s)]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("gankit: error: training diverged at step 1 (8 images): ")
    assert "last good checkpoint: " + str(tmp_path / "r" / "checkpoints" / "ckpt-000000000000.json") in err
