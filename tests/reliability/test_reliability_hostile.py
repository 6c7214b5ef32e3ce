"""Hostile use, by class of failure: two writers, drift from a checkpoint, non-atomic outputs, wrongly guessed
image encodings, values that crash later or never finish, and Ctrl-C at any moment.

Each case asserts the exact outcome: the exit status, the one line, and the files left as they were.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gankit import GankitError
from gankit.cli import main

from conftest import ctrl_c_reaches_child, write_image_folder

SETS = ["data.name=folder", "model.codes=0", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
        "train.batch_size=8", "train.progress=false", "train.tensorboard=false", "train.grid_size=4",
        "train.log_every=1", "train.precision=fp32"]


def _train_args(data, run, *sets, preset="mnist-dcgan"):
    return ["train", preset, "--data-dir", str(data), "--run-dir", str(run), "--device", "cpu",
            *[a for s in (*SETS, *sets) for a in ("--set", s)]]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys, fragment: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gankit: error: ") and fragment in err, err
    return err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = tmp_path_factory.mktemp("hostile")
    write_image_folder(w / "imgs", 32)
    assert main(_train_args(w / "imgs", w / "run", "train.epochs=1")) == 0
    return w


def _cli(*args, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "gankit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=ctrl_c_reaches_child, **kw)


# ---- 1. two processes on one run folder ------------------------------------------------------------------

def test_two_trainers_on_one_folder_the_second_is_refused_at_once_naming_the_first(tmp_path):
    write_image_folder(tmp_path / "imgs", 64)
    args = _train_args(tmp_path / "imgs", tmp_path / "run", "train.epochs=8")
    procs = [_cli(*args)]
    time.sleep(0.1)
    procs.append(_cli(*args))
    start = time.monotonic()
    ended = {}
    while len(ended) < 2:  # whichever takes the folder first trains; the other is refused at once
        for p in procs:
            if p.pid not in ended and p.poll() is not None:
                ended[p.pid] = time.monotonic() - start
        assert time.monotonic() - start < 300
        time.sleep(0.02)
    outputs = {p.pid: p.communicate() for p in procs}
    winner, loser = sorted(procs, key=lambda p: p.returncode)
    assert winner.returncode == 0, outputs[winner.pid][1]
    err = outputs[loser.pid][1]
    assert loser.returncode == 2 and err.count("\n") == 1, err
    assert f"is being written by another gankit process (PID {winner.pid})" in err
    took = ended[loser.pid] + (0.1 if loser is procs[1] else 0.0)  # from the loser's own start
    assert took < 2.0, f"the second writer took {took:.2f} s to be refused"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 64  # every step exactly once
    assert not (tmp_path / "run" / ".lock").exists()  # released when the writer ended


def test_a_second_resume_of_a_running_resume_is_refused(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    first = _cli("train", "--resume", run, "--set", "train.epochs=40", "--force")
    deadline = time.monotonic() + 120
    while not (run / ".lock").is_file() or not (run / ".lock").read_text():  # the first holds the folder
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = _cli("train", "--resume", run, "--set", "train.epochs=40", "--force")
    _, err = second.communicate(timeout=120)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2 and f"(PID {first.pid})" in err and err.count("\n") == 1


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_line(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".lock").write_text(str(dead.pid))  # what a SIGKILLed writer leaves
    assert main(["train", "--resume", str(run), "--set", "train.epochs=2", "--force"]) == 0
    out = capsys.readouterr().out
    assert f"took over the lock of run folder {run} from process {dead.pid}, which is no longer running" in out
    assert not (run / ".lock").exists()


# ---- 2. a run that drifts from its checkpoint ------------------------------------------------------------

@pytest.mark.parametrize("key,value,shown", [
    ("data.name", "mnist", "data.name: 'folder' -> 'mnist'"),
    ("model.arch", "mlp", "model.arch: 'dcgan' -> 'mlp'"),
    ("objective.name", "hinge", "objective.name: 'non-saturating' -> 'hinge'"),
])
def test_a_hand_edited_config_is_refused_on_resume_naming_the_keys(world, tmp_path, capsys, key, value, shown):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    section, name = key.split(".")
    cfg[section][name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = _snapshot(run)
    capsys.readouterr()
    for extra in ([], ["--force"]):  # --force accepts safe changes only
        assert main(["train", "--resume", str(run), *extra]) == 2
        _one_line(capsys, f"in keys that cannot change on resume: {shown}")
    assert _snapshot(run) == before


def test_a_safe_change_needs_force_and_is_then_written_to_the_config(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world / "run", run)
    assert main(["train", "--resume", str(run), "--set", "train.epochs=2"]) == 2
    _one_line(capsys, "config differs from the run being resumed: train.epochs: 1.0 -> 2.0 (pass --force")
    assert main(["train", "--resume", str(run), "--set", "train.epochs=2", "--force"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2.0


def test_a_checkpoint_copied_in_from_another_run_is_refused(world, tmp_path, capsys):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    shutil.copytree(world / "run", ours)
    assert main(_train_args(world / "imgs", theirs, "train.epochs=2")) == 0
    latest = sorted((theirs / "checkpoints").glob("ckpt-*.json"))[-1]
    for suffix in (".json", ".safetensors"):  # a newer checkpoint pair from the other run
        shutil.copy(latest.with_suffix(suffix), ours / "checkpoints" / latest.with_suffix(suffix).name)
    before = _snapshot(ours)
    capsys.readouterr()
    assert main(["train", "--resume", str(ours), "--set", "train.epochs=2", "--force"]) == 2
    _one_line(capsys, f"checkpoint {ours / 'checkpoints' / latest.name} was written by another run (run id ")
    assert _snapshot(ours) == before


# ---- 3. outputs written atomically ---------------------------------------------------------------------

@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write fails as on a full disk, after its temporary file was created and written."""
    import gankit.atomic as atomic

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)


def _no_temporaries(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name], list(folder.rglob("*"))


@pytest.mark.parametrize("out", ["s.npz", "folder"])
def test_sample_on_a_full_disk_keeps_the_earlier_samples(world, tmp_path, capsys, monkeypatch, out):
    target = tmp_path / out
    assert main(["sample", str(world / "run"), "--n", "6", "--out", str(target)]) == 0
    before = _snapshot(tmp_path)
    import gankit.atomic as atomic

    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    if out == "folder":  # a folder is written beside the old one, then swapped in: fail that step
        monkeypatch.setattr(atomic.os, "rename", lambda a, b: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    capsys.readouterr()
    assert main(["sample", str(world / "run"), "--n", "9", "--seed", "1", "--out", str(target)]) == 2
    _one_line(capsys, f"cannot write samples to {target}")
    assert _snapshot(tmp_path) == before
    _no_temporaries(tmp_path)


def test_sample_never_replaces_a_folder_it_did_not_write(world, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert main(["sample", str(world / "run"), "--n", "4", "--out", str(tmp_path / "mine")]) == 2
    _one_line(capsys, "exists and holds files gankit did not write")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_every_atomic_writer_keeps_the_previous_file_on_a_full_disk(tmp_path, full_disk):
    from gankit.atomic import atomic_write, atomic_write_text

    for write, data in ((atomic_write, b"new"), (atomic_write_text, "new")):
        target = tmp_path / "file"
        target.write_bytes(b"old")
        with pytest.raises(OSError):
            write(target, data)
        assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["file"]


def test_a_full_disk_during_the_floor_leaves_no_temporary_file(tmp_path, monkeypatch, full_disk):
    import torch

    from gankit.metrics import evaluate as E

    monkeypatch.setattr(E, "_floor_path", lambda *a: tmp_path / "floors" / "f.json")
    monkeypatch.setattr(E, "_per_metric", lambda *a, **k: {"fid": {"fid": 1.0}})
    ref = E.Reference("tag", None, E.FeatureSet(torch.zeros(4, 2)), E.FeatureSet(torch.zeros(8, 2)))
    metric = type("M", (), {"name": "fid"})()
    with pytest.raises(OSError):
        E.real_floor(ref, None, [metric], 4)
    assert [p.name for p in (tmp_path / "floors").iterdir()] == []


def test_an_empty_metric_list_never_replaces_an_evaluation(world, capsys):
    before = _snapshot(world / "run")
    assert main(["evaluate", str(world / "run"), "--metrics", ","]) == 2
    _one_line(capsys, "--metrics ',' names no metric")
    assert _snapshot(world / "run") == before


def test_evaluations_with_other_metrics_or_sizes_are_kept_side_by_side(tmp_path):
    from gankit.metrics.evaluate import write_result

    names = set()
    for metrics, n in ((["fid", "cs"], 100), (["fid"], 100), (["fid"], 200), (["cs", "fid"], 100)):
        result = {"provenance": {"images_seen": 5, "seed": 0, "n_generated": n, "n_images": n,
                                 "metrics": [{"name": m} for m in metrics]}}
        names.add(write_result(tmp_path, result).name)
    assert names == {"000000000005-n100-seed0-cs+fid.json", "000000000005-n100-seed0-fid.json",
                     "000000000005-n200-seed0-fid.json"}


# ---- 4. image encodings: converted exactly or refused ------------------------------------------------------

def test_the_same_images_in_every_float_encoding_score_the_same(cache):
    from gankit.data import load_arrays
    from gankit.metrics.evaluate import evaluate_images

    x, _ = load_arrays("digits", split="test")
    x = x[:200]
    scores = {}
    for name, images in (("uint8", x), ("float [0, 1]", x / 255.0),
                         ("float [-1, 1]", x.astype(np.float32) / 127.5 - 1), ("(N, C, H, W)", x[:, None] / 255.0)):
        result = evaluate_images(images, "digits", metrics=("fid", "cs"), floor=False, n_boot=0)
        scores[name] = (result["fid"], result["cs"])
    assert len(set(scores.values())) == 1, scores  # the conversion is exact: identical numbers


@pytest.mark.parametrize("make,fragment", [
    (lambda x: x.astype(np.uint16) * 257, "are uint16 values 0..65535, not 8-bit images"),
    (lambda x: x[:, :, :20].reshape(len(x), -1), "have shape"),
    (lambda x: x.astype(np.float32) * 3.3, "neither [-1, 1], [0, 1] nor whole numbers 0..255"),
    (lambda x: np.where(x > 128, np.nan, x / 255.0), "hold NaN or infinite values"),
    (lambda x: x > 128, "are bool values"),
])
def test_unrecognised_image_arrays_are_one_line(tmp_path, capsys, make, fragment):
    from gankit.data import load_arrays

    x, _ = load_arrays("digits", split="test")
    np.savez(tmp_path / "x.npz", images=make(x[:50]))
    assert main(["evaluate", "--images", str(tmp_path / "x.npz"), "--dataset", "digits"]) == 2
    _one_line(capsys, fragment)


def test_image_folders_with_two_sizes_or_a_non_image_are_one_line_naming_the_file(tmp_path, capsys):
    from PIL import Image

    write_image_folder(tmp_path / "mixed", 12)
    Image.new("L", (32, 32)).save(tmp_path / "mixed" / "99.png")
    assert main(["evaluate", "--images", str(tmp_path / "mixed"), "--dataset", "digits"]) == 2
    _one_line(capsys, f"{tmp_path / 'mixed' / '99.png'} is L 32x32 but ")
    write_image_folder(tmp_path / "junk", 12)
    (tmp_path / "junk" / "5.png").write_text("not a picture")
    assert main(["evaluate", "--images", str(tmp_path / "junk"), "--dataset", "digits"]) == 2
    _one_line(capsys, f"{tmp_path / 'junk' / '5.png'} cannot be read as an image")


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["uint8", "float01", "float11", "int64"]), st.integers(1, 5), st.integers(4, 9),
       st.sampled_from([1, 3]))
def test_any_supported_encoding_converts_back_to_the_same_bytes(kind, n, size, channels):
    from gankit.images import as_uint8

    rng = np.random.default_rng(n * 100 + size)
    x = rng.integers(0, 256, (n, size, size, channels)).astype(np.uint8)
    x[0, 0, 0] = 0  # a dark pixel, as every image set has: [-1, 1] is then recognisable
    encoded = {"uint8": x, "float01": x / 255.0, "float11": x.astype(np.float32) / 127.5 - 1,
               "int64": x.astype(np.int64)}[kind]
    y, _ = as_uint8(encoded)
    assert np.array_equal(y, x[..., 0] if channels == 1 else x)


# ---- 5. values accepted and then crashing later, or never finishing ----------------------------------------

VALUES = [
    (["train", "digits-dcgan", "--set", "train.checkpoint_every=0"], "train.checkpoint_every must be at least 1"),
    (["train", "digits-dcgan", "--set", f"train.seed={2 ** 64}"], "train.seed must be between 0 and 4294967295"),
    (["train", "digits-dcgan", "--set", "train.seed=-1"], "train.seed must be between 0 and 4294967295"),
    (["train", "digits-dcgan", "--set", "optim.beta1_d=5"], "optim.beta1_d and optim.beta1_g must be in [0, 1)"),
    (["train", "digits-dcgan", "--set", f"train.grid_size={10 ** 11}"], "train.grid_size must be between 1 and 4096"),
    (["train", "digits-dcgan", "--set", "eval.n=1000000000"], "eval.n must be at most 1000000 samples"),
    (["sample", "{run}", "--n", "10", "--truncation", "1e-9", "--out", "{tmp}/s.npz"], "--truncation must be at least 0.05"),
    (["sample", "{run}", "--n", str(10 ** 11), "--out", "{tmp}/s.npz"], "need 365,078.4 GiB in memory"),
    (["dynamics", "dirac", "--steps", "1000000000"], "--steps must be between 1 and 1,000,000"),
    (["dynamics", "trajectory", "--steps", "0"], "--steps must be between 1 and 1,000,000"),
    (["latent", "interpolate", "{run}", "--seeds", "1,2", "--steps", "100000000", "--out", "{tmp}/x.png"],
     "--steps must be between 2 and 256, got 100,000,000"),
    (["train", "digits-dcgan", "--run-dir", "{tmp}/zz", "--set", "model.z_dim=1000000000"],
     "the networks of this config (mode gan, model.arch dcgan) need more memory than this machine has"),
    (["evaluate", "{run}", "--n", "20", "--metrics", "fid"],
     "the folder training split has 32 images, too few to train gankit's folder classifier"),
    (["dynamics", "kernel", "{run}", "--points", "1000000"], "--points must be between 2 and 4,096"),
    (["train", "digits-dcgan", "--run-dir", "{tmp}/zz", "--set", "train.epochs=1e-9"],
     "train.epochs=1e-09 is less than one image of the 1,600 an epoch holds"),
    (["train", "{tmp}/dup.yaml"], "is not valid YAML: key 'train' appears twice; keep one (line 3)"),
    (["train", "{tmp}/bomb.yaml"], "is not valid YAML: aliases (*name) are not allowed in gankit configs"),
]


@pytest.mark.parametrize("argv,fragment", VALUES, ids=[f"{i:02d}" for i in range(len(VALUES))])
def test_values_that_would_crash_later_or_never_finish_are_refused_at_once(world, tmp_path, capsys, argv,
                                                                           fragment):
    (tmp_path / "dup.yaml").write_text("train: {epochs: 1}\nmodel: {arch: mlp}\ntrain: {epochs: 3}\n")
    (tmp_path / "bomb.yaml").write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
                                        "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n")
    before = _snapshot(world)
    argv = [a.replace("{run}", str(world / "run")).replace("{tmp}", str(tmp_path)) for a in argv]
    start = time.monotonic()
    capsys.readouterr()
    assert main(argv) == 2
    _one_line(capsys, fragment)
    assert time.monotonic() - start < 30 and _snapshot(world) == before
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "zz").exists()


# ---- 6. Ctrl-C at any moment -------------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5, 3.0])
def test_ctrl_c_at_start_up_is_one_line_and_exit_130(tmp_path, delay):
    write_image_folder(tmp_path / "imgs", 64)
    proc = _cli(*_train_args(tmp_path / "imgs", tmp_path / "run", "train.epochs=50"))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 130, err
    # before training: "gankit: interrupted"; once it trains: the checkpoint is written and the resume command shown
    assert lines in (["gankit: interrupted"],) or (lines[-1].startswith("stopped by signal 2")
                                                   and "Traceback" not in err), err
    assert not (tmp_path / "run" / ".lock").exists()
