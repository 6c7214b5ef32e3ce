"""torchrun: two processes (gloo, CPU) train what one process trains, checkpoints move between 1 and 2
processes, a 2-process run resumes exactly, a dead rank stops the other within bounded time, misuse is one line.

Every multi-process test launches ``python -m torch.distributed.run --nproc_per_node=2 -m gankit train`` on tiny
image folders made here, with fp32 (bf16 rounds differently when the batch is split) and small MLP networks.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import gankit
from gankit.errors import GankitError

from conftest import write_image_folder

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5  # max |difference| of any weight or Adam moment after 20 G steps (measured: about 1e-7)
STEPS = 20
BASE = {"data.name": "folder", "data.image_size": 16, "model.arch": "mlp", "model.z_dim": 8, "model.width_g": 16,
        "model.width_d": 16, "model.norm_g": "none", "model.norm_d": "none", "train.batch_size": 8,
        "train.images": 8 * STEPS, "train.precision": "fp32", "train.progress": False, "train.tensorboard": False,
        "train.log_every": 1, "train.checkpoint_every": 1, "train.keep_checkpoints": 10, "train.ema": 0.9,
        "optim.lr_g": 1e-3, "optim.lr_d": 1e-3}
CASES = {
    # plain GAN with a lazy R1 penalty
    "plain-r1": {"objective.penalty": "r1", "objective.penalty_weight": 1.0, "objective.penalty_every": 2},
    # conditional (projection D) with WGAN-GP: labels and the interpolation weights are drawn for the global batch
    "conditional-gp": {"model.conditional": "projection", "objective.name": "wasserstein", "objective.penalty": "gp"},
    # InfoGAN codes, two D steps per G step (20 G steps = 40 real batches)
    "infogan": {"model.codes": 4, "model.code_kind": "info", "objective.info_weight": 1.0, "train.n_critic": 2,
                "train.images": 16 * STEPS},
    # batch norm in both networks, normalised over the global batch. Its statistics are summed in another order
    # than one process sums them; at lr 1e-3 Adam amplifies that rounding until the runs part by step 10
    # (measured), at lr 2e-4 they stay within TOL.
    # images streamed from the folder by a DataLoader worker: each process prefetches its own rows of every
    # global batch, in order
    "streamed": {"data.stream": True, "data.workers": 1},
    "syncbn": {"model.norm_g": "batch", "model.norm_d": "batch", "dist.sync_bn": True, "optim.lr_g": 2e-4,
               "optim.lr_d": 2e-4},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """64 images of 16x16 in two class folders."""
    root = tmp_path_factory.mktemp("data") / "images"
    root.mkdir()
    for c in range(2):
        write_image_folder(root / f"c{c}", 32, size=16, seed=c)
    return root


def _settings(folder: Path, case: str) -> dict:
    return {**BASE, **CASES[case], "data.data_dir": str(folder)}


def _sets(settings: dict) -> list:
    out = []
    for k, v in settings.items():
        out += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TAG = f"GANKIT_TEST_TORCHRUN={os.getpid()}"  # in the environment of every process a test launches


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a rank that aborts in C++ (SIGABRT) prints the Python stack it was in
    key, value = TAG.split("=")
    env[key] = value
    return env


def _kill_launched() -> None:
    """SIGKILL torchrun and every worker it started (torchrun gives each worker a session of its own, so
    killing its process group is not enough): all processes whose environment holds TAG."""
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if TAG.encode() in (p / "environ").read_bytes().split(b"\0"):
                    os.kill(int(p.name), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _finish(agent: subprocess.Popen, timeout: float) -> tuple:
    """(stdout, stderr) of ``agent`` once it ends; past ``timeout`` everything launched is killed first."""
    try:
        return agent.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_launched()
        out, err = agent.communicate(timeout=30)
        pytest.fail(f"torchrun ran past {timeout} s:\n{err[-3000:]}")


def _torchrun_cmd(args: list, nproc: int = 2) -> list:
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}", "-m", "gankit", "train", *map(str, args)]


def torchrun(args: list, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run torchrun to its end; past ``timeout`` every process it started is killed and the test fails."""
    agent = subprocess.Popen(_torchrun_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env())
    out, err = _finish(agent, timeout)
    return subprocess.CompletedProcess(agent.args, agent.returncode, out, err)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-8000:]


def _one(folder: Path, case: str, run_dir: Path) -> Path:
    gankit.train("digits-dcgan", run_dir=run_dir, **_settings(folder, case))
    return run_dir


def _two(folder: Path, case: str, run_dir: Path) -> Path:
    _ok(torchrun(["digits-dcgan", "--run-dir", run_dir, *_sets(_settings(folder, case))]))
    return run_dir


def _ckpt(run: Path, images: int) -> Path:
    return run / "checkpoints" / f"ckpt-{images:012d}.safetensors"


def _max_diff(a: Path, b: Path) -> tuple:
    """(max |a - b| over the tensors of both checkpoints but RNG states, the key where it is)."""
    ta, tb = load_file(str(a)), load_file(str(b))
    keys = [k for k in ta if not k.startswith("rng.")]
    assert keys and set(keys) == {k for k in tb if not k.startswith("rng.")}
    return max(((ta[k].double() - tb[k].double()).abs().max().item(), k) for k in keys if ta[k].is_floating_point())


def _cut_back(src: Path, dst: Path, images: int) -> Path:
    """A copy of run ``src`` as it was when its checkpoint at ``images`` was the newest (a killed run)."""
    shutil.copytree(src, dst)
    for p in (dst / "checkpoints").iterdir():
        if int(p.name[5:17]) > images:
            p.unlink()
    return dst


@pytest.fixture(scope="module")
def plain(folder, tmp_path_factory) -> tuple:
    """The plain-r1 case trained in one process and in two."""
    tmp = tmp_path_factory.mktemp("plain")
    return _one(folder, "plain-r1", tmp / "one"), _two(folder, "plain-r1", tmp / "two")


# ---- 1. equivalence ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_train_what_one_process_trains(case, folder, plain, tmp_path):
    one, two = plain if case == "plain-r1" else (_one(folder, case, tmp_path / "one"), _two(folder, case,
                                                                                           tmp_path / "two"))
    images = BASE["train.images"] if "train.images" not in CASES[case] else CASES[case]["train.images"]
    diff, key = _max_diff(_ckpt(one, images), _ckpt(two, images))
    print(f"{case}: max |one - two| = {diff:.3g} ({key})")
    assert diff < TOL, f"{case}: {key} differs by {diff}"
    meta = json.loads(_ckpt(two, images).with_suffix(".json").read_text())
    assert meta["progress"]["phase_steps"]["G"] == STEPS
    assert meta["launch"] == {"world_size": 2, "global_batch": 8, "per_process_batch": 4, "backend": "gloo",
                              "sync_bn": case == "syncbn"}
    assert meta["config"]["dist"]["world_size"] == 2
    # logged values are averaged over the ranks: the same numbers as one process logs
    rows1, rows2 = ([json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()] for r in (one, two))
    assert [r["images"] for r in rows1] == [r["images"] for r in rows2]
    for a, b in zip(rows1, rows2):
        for k in (k for k in a if k.startswith(("loss/", "d/", "grad_norm/"))):
            assert b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-5), (case, a["step"], k)


def test_the_launch_is_recorded_in_config_checkpoints_and_the_first_line_of_the_log(plain):
    one, two = plain
    assert "world_size: 2" in (two / "config.yaml").read_text()
    assert "global_batch: 8" in (two / "config.yaml").read_text()
    assert "world_size: 1" in (one / "config.yaml").read_text()
    first = (two / "log.txt").read_text().splitlines()[0]
    assert "2 processes (gloo), global batch 8 = 2 x 4 per process" in first
    assert "1 process, global batch 8" in (one / "log.txt").read_text().splitlines()[0]
    # rank 0 alone wrote: one grid per epoch, one row per logged step
    assert len((two / "metrics.jsonl").read_text().splitlines()) == STEPS
    assert sorted(p.name for p in (two / "samples").iterdir()) == sorted(p.name for p in (one / "samples").iterdir())


# ---- 2. checkpoints between 1 and 2 processes; exact resume at 2 ------------------------------------------------
def test_a_two_process_checkpoint_samples_and_resumes_in_one_process(plain, tmp_path):
    one, two = plain
    x = gankit.load_run(two).sample(4, seed=0)
    assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all()
    run = _cut_back(two, tmp_path / "two-to-one", 128)
    gankit.train(None, run_dir=run, resume=True)
    diff, key = _max_diff(_ckpt(run, 160), _ckpt(one, 160))
    assert diff < TOL, f"{key} differs by {diff}"
    assert "world_size: 1" in (run / "config.yaml").read_text()  # the record follows the launch


def test_a_one_process_checkpoint_resumes_in_two_processes(plain, tmp_path):
    one, two = plain
    run = _cut_back(one, tmp_path / "one-to-two", 128)
    _ok(torchrun(["--resume", run]))
    diff, key = _max_diff(_ckpt(run, 160), _ckpt(one, 160))
    assert diff < TOL, f"{key} differs by {diff}"
    assert json.loads(_ckpt(run, 160).with_suffix(".json").read_text())["launch"]["world_size"] == 2


def test_a_two_process_run_resumes_exactly(plain, tmp_path):
    one, two = plain
    run = _cut_back(two, tmp_path / "resumed", 64)
    _ok(torchrun(["--resume", run]))
    ta, tb = load_file(str(_ckpt(run, 160))), load_file(str(_ckpt(two, 160)))
    assert set(ta) == set(tb) and "rng.torch.rank1" in ta
    assert all(torch.equal(ta[k], tb[k]) for k in ta), [k for k in ta if not torch.equal(ta[k], tb[k])]
    rows = lambda r: [{k: v for k, v in json.loads(x).items() if not k.startswith("speed/")}  # noqa: E731
                      for x in (r / "metrics.jsonl").read_text().splitlines()]
    assert rows(run) == rows(two)


def test_periodic_evaluation_runs_once_on_two_processes(cache, tmp_path, monkeypatch):
    run = tmp_path / "scored"
    monkeypatch.setenv("GANKIT_CACHE", str(cache))  # the digits classifier the fixture made; torchrun inherits it
    proc = torchrun(["digits-dcgan", "--run-dir", run, *_sets({
        "model.width_g": 8, "model.width_d": 8, "model.z_dim": 8, "train.batch_size": 16, "train.images": 320,
        "train.log_every": 5, "train.progress": False, "train.tensorboard": False, "train.grid_size": 4,
        "eval.every": 160, "eval.n": 40, "eval.metrics": "fid,cs"})])
    _ok(proc)
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "eval/fid" in x]
    assert [r["images"] for r in evals] == [160, 320]  # one row per evaluation, not one per rank
    assert proc.stderr.count("eval at ") == 2
    best = json.loads((run / "best" / "best.json").read_text())
    assert (run / "best" / best["checkpoint"]).is_file()
    assert "rng.torch.rank1" in load_file(str((run / "best" / best["checkpoint"]).with_suffix(".safetensors")))


# ---- 3. faults ----------------------------------------------------------------------------------------------
def _children(pid: int) -> list:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _rank_of(pid: int) -> int:
    """The RANK a process was started with (-1: none, or gone)."""
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return -1
    return next((int(e[5:]) for e in env if e.startswith(b"RANK=")), -1)


def _launch_long(folder: Path, run: Path) -> subprocess.Popen:
    """A 2-process run that trains until it is stopped, in a session of its own (so that it can be cleaned up)."""
    settings = {**_settings(folder, "plain-r1"), "train.images": 10 ** 7, "train.log_every": 50}
    return subprocess.Popen(_torchrun_cmd(["digits-dcgan", "--run-dir", run, *_sets(settings)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for_training(agent: subprocess.Popen, run: Path) -> None:
    """Until a checkpoint after the first (at 0 images) is on disk: training is under way."""
    deadline = time.monotonic() + 120
    while len(list((run / "checkpoints").glob("*.json")) if (run / "checkpoints").is_dir() else []) < 2:
        if agent.poll() is not None or time.monotonic() > deadline:
            _kill_launched()
            pytest.fail(f"training did not get under way:\n{agent.communicate(timeout=30)[1][-3000:]}")
        time.sleep(0.1)


def _cleanup(agent: subprocess.Popen) -> None:
    _kill_launched()  # whatever is left, workers included
    if agent.returncode is None:
        agent.communicate(timeout=30)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ranks through /proc")
def test_a_killed_rank_stops_the_other_within_a_minute_naming_it_and_the_checkpoint_loads(folder, tmp_path):
    run = tmp_path / "killed"
    agent = _launch_long(folder, run)
    try:
        _wait_for_training(agent, run)
        victim = next(p for p in _children(agent.pid) if _rank_of(p) == 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, err = _finish(agent, 60)
        elapsed = time.monotonic() - killed
    finally:
        _cleanup(agent)
    assert agent.returncode != 0 and elapsed < 60
    lines = [x for x in err.splitlines() if x.startswith("gankit: error:")]
    # gankit's line when the survivor's collective fails first; torchrun's own summary when its agent stops the
    # survivor first (a race of milliseconds): either names the dead rank
    by_gankit = any(f"rank 1 (pid {victim}) died" in x for x in lines)
    by_torchrun = re.search(rf"Root Cause.*?rank\s*: 1 \(local_rank: 1\)\s*exitcode\s*: -9 \(pid: {victim}\)", err,
                            re.S)
    assert by_gankit or by_torchrun, err[-3000:]
    run_obj = gankit.load_run(run)  # the newest checkpoint on disk loads
    assert run_obj.sample(2, seed=0).shape == (2, 1, 16, 16)
    print(f"survivor stopped {elapsed:.1f} s after rank 1 was killed: {lines[0] if lines else 'torchrun summary'}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ranks through /proc")
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_iteration_with_a_checkpoint(folder, tmp_path):
    run = tmp_path / "stopped"
    agent = _launch_long(folder, run)
    try:
        _wait_for_training(agent, run)
        victim = next(p for p in _children(agent.pid) if _rank_of(p) == 1)
        os.kill(victim, signal.SIGTERM)
        try:
            out, err = agent.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            try:  # why the signal was not taken: its mask, pending and caught sets
                status = [x for x in (Path("/proc") / str(victim) / "status").read_text().splitlines()
                          if x.startswith(("State", "Sig"))]
            except OSError:
                status = ["gone"]
            _kill_launched()
            pytest.fail(f"rank 1 (pid {victim}) did not stop within 60 s of SIGTERM: {status}\n"
                        f"{agent.communicate(timeout=30)[1][-2000:]}")
    finally:
        _cleanup(agent)
    assert "stopped by signal 15" in err and "gankit: error" not in err, err[-3000:]
    last = sorted((run / "checkpoints").glob("*.safetensors"))[-1]
    meta = json.loads(last.with_suffix(".json").read_text())
    assert meta["progress"]["images"] > 64 and meta["progress"]["batch"] == (meta["progress"]["images"] // 8) % 8
    assert "rng.torch.rank1" in load_file(str(last))  # both ranks took part in the final checkpoint


# ---- misuse ------------------------------------------------------------------------------------------------
def test_torchrun_on_a_run_another_process_writes_is_one_line(folder, tmp_path):
    from gankit.lock import lock_run_dir

    run = tmp_path / "busy"
    lock = lock_run_dir(run, False)
    try:
        proc = torchrun(["digits-dcgan", "--run-dir", run, *_sets(_settings(folder, "plain-r1"))], timeout=120)
    finally:
        lock.release()
    lines = [x for x in proc.stderr.splitlines() if x.startswith("gankit: error:")]
    assert proc.returncode != 0
    assert len(lines) == 1 and f"being written by another gankit process (PID {os.getpid()})" in lines[0], lines


def _fake_launch(monkeypatch, **env):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"},
     "train.batch_size=9 is the global batch and must be a multiple of the 2 processes; use 8"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"}, "0 <= RANK < WORLD_SIZE"),
    ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR/MASTER_PORT are not"),
])
def test_a_launch_that_cannot_work_is_one_line(env, message, monkeypatch, tmp_path):
    from gankit.api import resolve_config
    from gankit.engine import distributed

    _fake_launch(monkeypatch, **env)
    with pytest.raises(GankitError, match=re.escape(message)):
        distributed.setup(resolve_config("digits-dcgan", ["train.batch_size=9"]))


@pytest.mark.parametrize("world", ["2", "two", " "])
def test_a_torchrun_rank_exits_with_its_status_and_its_error_line(world, tmp_path):
    """Ranks leave through os._exit after the exit handlers: the status and the flushed error line survive it,
    also with a WORLD_SIZE that is not a number."""
    env = {**_env(), "WORLD_SIZE": world, "RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    proc = subprocess.run([sys.executable, "-m", "gankit", "train", "no-such-preset", "--run-dir", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error:"), proc.stderr


# ---- pieces --------------------------------------------------------------------------------------------------
def test_each_rank_takes_its_slice_of_every_global_batch(tiny_data):
    from gankit.modes import ImageBatches

    whole = ImageBatches(tiny_data, 8, 2, seed=3, labels=tiny_data.y).take(1, 2)
    parts = []
    for rank in range(4):
        src = ImageBatches(tiny_data, 8, 2, seed=3, labels=tiny_data.y)
        src.split(rank, 4)
        parts.append(src.take(1, 2))
    for i in range(2):
        assert torch.equal(torch.cat([p.x[i] for p in parts]), whole.x[i])
        assert torch.equal(torch.cat([p.y[i] for p in parts]), whole.y[i])
    with pytest.raises(GankitError, match="multiple of 3"):
        ImageBatches(tiny_data, 8, 1, seed=0).split(0, 3)


def test_the_gradient_penalty_of_a_slice_is_the_slice_of_the_global_penalty():
    from gankit.penalties import gradient_penalty

    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1), torch.nn.Flatten(0))
    xr, xf = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    whole = gradient_penalty(critic, xr, xf, torch.Generator().manual_seed(1))
    sliced = [gradient_penalty(critic, xr[2 * r:2 * r + 2], xf[2 * r:2 * r + 2], torch.Generator().manual_seed(1),
                               part=(r, 3)) for r in range(3)]
    assert torch.allclose(torch.cat(sliced), whole)


def test_ranks_whose_copies_differ_are_caught_at_the_checkpoint(monkeypatch):
    from gankit.engine import distributed
    from gankit.engine.ema import EMA

    class Parts:
        modules = {"P": torch.nn.Linear(2, 2)}
        emas = {"P": EMA(modules["P"], 0.9)}

    def gather(out, obj):  # rank 1 reports another EMA copy
        out[0] = obj
        out[1] = ({**obj[0], "P_ema": "0" * 64}, obj[1])

    monkeypatch.setattr(distributed.tdist, "all_gather_object", gather)
    monkeypatch.setattr(distributed.tdist, "all_reduce", lambda t, *a, **k: t.mul_(2))
    dist = distributed.Dist(0, 2, 0, torch.device("cpu"))
    with pytest.raises(GankitError, match="copies of P_ema on rank 1 differ from rank 0's"):
        dist.checkpoint_state(Parts())


def test_a_signal_whose_handler_runs_as_the_stop_vote_returns_is_kept_for_the_next_vote(monkeypatch):
    """Python runs a signal handler between bytecodes: one that arrives while a rank waits in the vote's
    all_reduce runs just after it, when the vote (0 from this rank) is cast. The signal must reach the next vote;
    it used to be overwritten by the vote's result, and that rank trained on after SIGTERM."""
    from gankit.engine import distributed

    trainer = types.SimpleNamespace(stop_signal=None)

    def vote_then_signal(flag, *args, **kwargs):
        assert int(flag.item()) == 0
        trainer.stop_signal = signal.SIGTERM  # the handler, as the collective returns

    monkeypatch.setattr(distributed.tdist, "all_reduce", vote_then_signal)
    dist = distributed.Dist(1, 2, 1, torch.device("cpu"))
    assert dist.agree_stop(trainer) is None  # every rank saw the same vote: no stop yet
    assert trainer.stop_signal == signal.SIGTERM
    monkeypatch.setattr(distributed.tdist, "all_reduce", lambda flag, *a, **k: None)
    assert dist.agree_stop(trainer) == signal.SIGTERM
