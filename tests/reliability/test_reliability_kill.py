"""Kill, interrupt and resume real training processes.

SIGKILL lands at random moments of training processes: the latest checkpoint must
load every time, committed progress must never go back, and every run finished
by resuming must reproduce an uninterrupted run's metrics.jsonl bit for bit.
The killed processes are forked from a forkserver that has already imported
gankit and torch (a fresh ``python -m gankit`` spends ~4 s importing, which
would make 20+ kills take minutes); each runs the same ``gankit.cli.main``
as the command. SIGINT is sent to a real ``python -m gankit train`` process.
"""
import json
import multiprocessing
import os
import random
import resource
import signal
import subprocess
import sys
import time

import pytest

from gankit.cli import main
from gankit.checkpoint import latest_checkpoint, load_checkpoint

from conftest import ctrl_c_reaches_child, write_image_folder

KILLS = 60          # kills that find a committed checkpoint on disk (kills before a run's first one do not count)
BATCH = 16          # the whole image folder: one G step per epoch, so a checkpoint after every step and
IMAGES = 200 * BATCH  # most of a process' life is spent writing checkpoints (~3 s uninterrupted on one core)
KILL_WINDOW = 0.6   # seconds after the start of a process; its own start-up takes ~0.1 s


def _child(argv, stderr_path=None, max_file_bytes=None):
    """Target of a forked process: exactly the command's exit status.

    ``max_file_bytes`` makes any file larger than that unwritable (EFBIG, as a full disk
    gives ENOSPC): Python ignores SIGXFSZ, so the write fails with an OSError.
    """
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # keep pytest's output clean; run folders hold log.txt
    os.dup2(os.open(stderr_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    if max_file_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    sys.exit(main(argv))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    folder = root / "imgs"
    write_image_folder(folder, 16, size=12)
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the forkserver and real processes: same arithmetic as each other
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["gankit.cli", "gankit.engine", "torch._dynamo", "gankit.dynamics.cli", __name__])
    reference = root / "reference"
    p = ctx.Process(target=_child, args=(_argv(folder, reference),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    yield root, folder, ctx, _rows(reference)
    if old is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old


def _argv(folder, run_dir, resume=False, extra=()):
    if resume:
        return ["train", "--resume", str(run_dir)]
    sets = ["data.name=folder", "model.codes=0", "data.image_size=8", "model.arch=mlp", "model.width_g=32", "model.width_d=32",
            "model.z_dim=4", f"train.batch_size={BATCH}", "train.log_every=1", "train.ema=0.9", f"train.images={IMAGES}",
            "train.keep_checkpoints=2", "train.progress=false", "train.tensorboard=false", "train.grid_size=4", *extra]
    return ["train", "mnist-dcgan", "--data-dir", str(folder), "--run-dir", str(run_dir), "--device", "cpu",
            *[a for s in sets for a in ("--set", s)]]


def _rows(run_dir):
    """metrics.jsonl without the wall-clock speed, which differs between any two runs."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("speed/")} for line in lines]


def _stale(run_dir):
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    committed = {p.stem for p in folder.glob("ckpt-*.json")}
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.stem not in committed]


def test_sigkill_at_random_moments_never_leaves_an_unloadable_checkpoint(setup):
    root, folder, ctx, reference = setup
    rng = random.Random(7)
    runs, run, committed = [], root / "run-0", -1
    kills = loadable = mid_write = 0
    start = time.perf_counter()
    while loadable < KILLS:
        assert kills < 3 * KILLS, "kills keep landing before the first checkpoint"
        resume = latest_checkpoint(run / "checkpoints") is not None
        p = ctx.Process(target=_child, args=(_argv(folder, run, resume),))
        p.start()
        p.join(rng.uniform(0.0, KILL_WINDOW))
        if p.exitcode is None:
            p.kill()
            p.join()
            kills += 1
            mid_write += bool(_stale(run))
            latest = latest_checkpoint(run / "checkpoints")
            assert latest is not None or committed < 0, f"kill {kills} lost the committed checkpoint"
            if latest is not None:
                tensors, meta = load_checkpoint(latest)  # raises if it cannot be loaded
                assert any(k.startswith("G.") for k in tensors)
                loadable += 1
                assert meta["progress"]["images"] >= committed  # committed progress never goes back
                committed = meta["progress"]["images"]
            continue
        assert p.exitcode == 0
        runs.append(run)  # finished by resuming: compare below, then start a fresh run
        run, committed = root / f"run-{len(runs)}", -1
    p = ctx.Process(target=_child, args=(_argv(folder, run, latest_checkpoint(run / "checkpoints") is not None),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    runs.append(run)
    for r in runs:
        assert _rows(r) == reference, r
        assert sorted(p.name for p in (r / "checkpoints").iterdir()) == [  # stale files cleaned, last 2 kept
            f"ckpt-{IMAGES - BATCH:012d}.json", f"ckpt-{IMAGES - BATCH:012d}.safetensors",
            f"ckpt-{IMAGES:012d}.json", f"ckpt-{IMAGES:012d}.safetensors"]
    print(f"\nsigkill: {kills} SIGKILLs, {loadable} with a checkpoint on disk, all {loadable} loadable; "
          f"{mid_write} landed mid-write (a temporary or uncommitted file was left); {len(runs)} runs finished "
          f"by resuming, all equal to the uninterrupted run ({len(reference)} metrics rows each); "
          f"{time.perf_counter() - start:.1f} s")


def test_sigint_checkpoints_and_exits_130_then_resume_is_exact(setup):
    root, folder, ctx, reference = setup
    run = root / "sigint"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", *_argv(folder, run)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_reaches_child)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 10:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped by signal 2" in err and "resume with: gankit train --resume" in err
    images = int(out.split("trained ")[1].split()[0])
    assert 10 * BATCH <= images < IMAGES
    _, meta = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert meta["progress"]["images"] == images
    assert [r["images"] for r in _rows(run)][-1] <= images
    p = ctx.Process(target=_child, args=(_argv(folder, run, resume=True),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    assert _rows(run) == reference
    print(f"\nsigint: at {images} images: exit 130, checkpoint at {images} images, resumed run equal")


def test_sigterm_exits_143_with_a_checkpoint(setup):
    root, folder, ctx, _ = setup
    run = root / "sigterm"
    p = ctx.Process(target=_child, args=(_argv(folder, run),))
    p.start()
    while not latest_checkpoint(run / "checkpoints") and p.exitcode is None:
        time.sleep(0.01)
    time.sleep(0.1)
    os.kill(p.pid, signal.SIGTERM)
    p.join(60)
    assert p.exitcode == 128 + signal.SIGTERM
    _, meta = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert 0 < meta["progress"]["images"] < IMAGES
    assert "stopped by signal 15" in (run / "log.txt").read_text()



def test_a_full_disk_mid_run_stops_with_one_line_and_resume_is_exact(setup):
    root, folder, ctx, _ = setup
    small = ("model.width_g=2", "model.width_d=2")  # 36 kB checkpoints; metrics.jsonl passes 60 kB near step 125
    runs = {name: root / f"disk-{name}" for name in ("full", "reference")}
    p = ctx.Process(target=_child, args=(_argv(folder, runs["reference"], extra=small),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    err = root / "disk-stderr.txt"
    p = ctx.Process(target=_child, args=(_argv(folder, runs["full"], extra=small), str(err), 60_000))
    p.start()
    p.join(120)
    errors = [line for line in err.read_text().splitlines() if line.startswith("gankit: error:")]
    assert p.exitcode == 2 and len(errors) == 1, err.read_text()
    message = errors[0]
    assert message.startswith("gankit: error: cannot write to the run folder (File too large: ")
    latest = latest_checkpoint(runs["full"] / "checkpoints")
    assert f"latest complete checkpoint: {latest};" in message and "gankit train --resume" in message
    _, meta = load_checkpoint(latest)
    assert 0 < meta["progress"]["images"] < IMAGES
    assert "error: cannot write to the run folder" in (runs["full"] / "log.txt").read_text()
    p = ctx.Process(target=_child, args=(_argv(folder, runs["full"], resume=True),))
    p.start()
    p.join(120)
    assert p.exitcode == 0
    assert _rows(runs["full"]) == _rows(runs["reference"])
    print(f"\ndisk full: {message}")
