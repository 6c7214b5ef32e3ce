"""Exact resume: a run stopped at step k and resumed equals an uninterrupted run, bit for bit on CPU.

Every column of metrics.jsonl except the wall-clock speed is compared: losses, D outputs,
gradient norms, weight maxima, sample statistics and health flags.
"""
import hashlib
import json
import signal

import pytest
import torch

from gankit import GankitError, resolve
from gankit.cli import main
from gankit.engine import Trainer, train
from gankit.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from gankit.engine.rundir import install_signal_handlers as _install_signal_handlers
from gankit.engine.rundir import restore_signal_handlers as _restore_signal_handlers

from conftest import write_image_folder

TINY = ("model.codes=0",  # tiny data: fewer images than the preset's 100 codes
        "model.width_g=8", "model.width_d=8", "model.z_dim=8", "train.batch_size=16", "train.log_every=1",
        "train.progress=false", "train.tensorboard=false", "train.grid_size=16", "train.ema=0.9",
        "objective.penalty=none")


def _cfg(*extra, epochs=3):
    return resolve("mnist-dcgan", TINY + extra, **{"train.epochs": float(epochs)})


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")} for line in lines]


def _stop_after(trainer, k):
    """Deliver a stop (as the SIGINT handler does) during G step k; the loop finishes that step."""
    def hook(opt, args, kwargs):
        if trainer.progress.step == k - 1:
            trainer.stop_signal = signal.SIGINT
    trainer.parts.optimizers["G"].register_step_post_hook(hook)


def _snapshot(run_dir):
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("extra,k", [
    ((), 5),                                                                   # EMA, mid-epoch
    (("objective.name=wasserstein", "objective.penalty=gp", "train.n_critic=2"), 3),  # noise drawn by the penalty
    (("objective.penalty=r1", "objective.penalty_every=3", "train.log_every=3"), 7),  # lazy penalty, unlogged steps
    (("objective.clip=1e-9",), 8),  # health flags on across the stop: the monitors' history comes back too
    (("optim.decay=linear", "optim.decay_start=0.2"), 6),  # learning rates follow the progress
    (("model.codes=4", "model.code_kind=info", "objective.info_weight=1.0"), 4),  # InfoGAN code and loss
    (("model.codes=4",), 5),  # cluster codes: D told each image's cluster, the split read back on resume
])
def test_stopped_at_step_k_and_resumed_equals_an_uninterrupted_run(tmp_path, tiny_data, extra, k):
    train(_cfg(*extra), tmp_path / "full", data=tiny_data)
    t = Trainer(_cfg(*extra), tmp_path / "part", data=tiny_data)
    _stop_after(t, k)
    t.run()
    assert t.progress.step == k
    _, meta = load_checkpoint(latest_checkpoint(tmp_path / "part" / "checkpoints"))
    assert meta["progress"]["step"] == k
    resumed = Trainer(_cfg(*extra), tmp_path / "part", data=tiny_data, resume=True)
    assert resumed.progress.step == k
    resumed.run()
    full, part = _rows(tmp_path / "full"), _rows(tmp_path / "part")
    assert len(full) == len(part) >= 4
    assert part == full
    if extra == ("objective.clip=1e-9",):
        assert all(r["health/d_failing"] == 1.0 for r in full[k - 2:])


def test_rows_and_files_a_killed_run_left_after_its_checkpoint_are_dropped(tmp_path, tiny_data):
    train(_cfg(), tmp_path / "full", data=tiny_data)
    t = Trainer(_cfg(), tmp_path / "part", data=tiny_data)
    _stop_after(t, 6)
    t.run()
    run = tmp_path / "part"
    kept = (run / "metrics.jsonl").read_text()
    # what a process killed two steps after its checkpoint leaves: logged rows, a torn row, half-written files
    full_lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text(kept + "".join(full_lines[6:8]) + full_lines[8][:40])
    (run / "checkpoints" / ".ckpt-000000000128.json1x2y.tmp").write_bytes(b"{")
    (run / "checkpoints" / "ckpt-000000000128.safetensors").write_bytes(b"half")
    Trainer(_cfg(), run, data=tiny_data, resume=True).run()
    assert _rows(run) == _rows(tmp_path / "full")
    names = {p.name for p in (run / "checkpoints").iterdir()}
    assert not any(n.endswith(".tmp") for n in names)
    assert {p.stem for p in list_checkpoints(run / "checkpoints")} == {n[:-12] for n in names if n.endswith(".safetensors")}


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "imgs"
    write_image_folder(folder, 32)
    return folder


def _cli_args(folder, run):
    sets = ["data.name=folder", "model.codes=0", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
            "train.batch_size=8",
            "train.progress=false", "train.grid_size=4", "train.log_every=1", "train.tensorboard=false"]
    return ["train", "mnist-dcgan", "--data-dir", str(folder), "--run-dir", str(run), "--device", "cpu",
            *[a for s in sets for a in ("--set", s)]]


def test_cli_resume_refuses_a_changed_config_then_continues_exactly(tmp_path, image_folder, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(_cli_args(image_folder, full) + ["--epochs", "2"]) == 0
    assert main(_cli_args(image_folder, part) + ["--epochs", "1"]) == 0
    before = _snapshot(part)
    capsys.readouterr()
    assert main(["train", "--resume", str(part), "--epochs", "2", "--set", "optim.lr_d=0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("gankit: error: config differs from the run being resumed: optim.lr_d: 0.001 -> 0.01; "
                   "train.epochs: 1.0 -> 2.0 (pass --force to resume anyway)")
    assert _snapshot(part) == before  # refused before anything was written
    assert main(["train", "--resume", str(part), "--epochs", "2", "--force"]) == 0
    assert _rows(part) == _rows(full)
    assert "train.epochs" not in capsys.readouterr().err
    assert main(["train", "--resume", str(part)]) == 0  # finished: nothing to do, nothing duplicated
    assert _rows(part) == _rows(full)


def test_forced_resume_uses_the_new_learning_rates(tmp_path, tiny_data):
    train(_cfg(epochs=1), tmp_path / "r", data=tiny_data)
    t = Trainer(_cfg("optim.lr_d=0.0003", "optim.lr_g=0.0004", epochs=2), tmp_path / "r", data=tiny_data,
                resume=True, force=True)
    assert [g["lr"] for g in t.parts.optimizers["D"].param_groups] == [0.0003]
    assert [g["lr"] for g in t.parts.optimizers["G"].param_groups] == [0.0004]


def test_a_damaged_latest_checkpoint_is_named_and_nothing_is_changed(tmp_path, tiny_data):
    train(_cfg(epochs=2), tmp_path / "r", data=tiny_data)
    latest = latest_checkpoint(tmp_path / "r" / "checkpoints")
    blob = latest.with_suffix(".safetensors")
    blob.write_bytes(blob.read_bytes()[:-10])
    before = _snapshot(tmp_path / "r")
    with pytest.raises(GankitError, match=f"{blob.name} do not match the SHA-256 in {latest.name}"):
        Trainer(_cfg(epochs=2), tmp_path / "r", data=tiny_data, resume=True)
    assert _snapshot(tmp_path / "r") == before


def test_a_second_signal_stops_at_once(tmp_path, tiny_data):
    t = Trainer(_cfg(epochs=1), tmp_path / "r", data=tiny_data)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup
    old = _install_signal_handlers(t)
    try:
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)
        assert t.stop_signal == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
    finally:
        _restore_signal_handlers(old)
    assert signal.getsignal(signal.SIGINT) is before


def test_resume_keeps_the_rollback_count_and_its_learning_rates(tmp_path, tiny_data):
    cfg = _cfg("train.on_nan=rollback", "train.rollback_lr_factor=0.25", epochs=1)
    t = train(cfg, tmp_path / "r", data=tiny_data)
    t.progress.rollbacks = 2  # as if two rollbacks had happened before this checkpoint
    t.save_checkpoint()
    resumed = Trainer(cfg, tmp_path / "r", data=tiny_data, resume=True)
    assert resumed.progress.rollbacks == 2
    assert resumed.parts.optimizers["G"].param_groups[0]["lr"] == cfg.optim.lr_g * 0.25 ** 2
    assert torch.equal(next(resumed.parts.modules["G"].parameters()), next(t.parts.modules["G"].parameters()))
