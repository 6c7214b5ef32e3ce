"""The run folder: checks before a run starts or resumes (after `gankit.lock` gave this process the folder),
what is written first, and the signals that stop a run cleanly."""
from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

from .. import checkpoint as ck
from ..atomic import atomic_write
from ..config import RunConfig, diff, from_dict
from ..errors import GankitError
from ..yaml_io import read_yaml

# What defines the game and its data stream: a resumed run may not change these (the checkpoint would no longer
# be the run its config describes). Everything else (duration, learning rates, logging, device, precision,
# evaluation) may change with --force. A name ending in "." is a whole section.
FIXED_ON_RESUME = ("mode", "data.name", "data.image_size", "data.channels", "data.limit", "model.", "objective.",
                   "train.seed", "train.batch_size", "train.n_critic", "train.ema", "train.fake_labels",
                   "grow.")  # progressive growing's schedule: which images and which stage each iteration has
RUN_FILE = "run.json"
# How the run is launched (torchrun): recorded, free to change on resume (train.batch_size is the global batch).
LAUNCH = ("dist.world_size", "dist.global_batch", "dist.timeout")


def check_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> str:
    """Refuse a resume that drifts from its checkpoint, a new run over checkpoints, or an unusable folder.

    Returns the run id: new for a new run, the folder's own (from run.json) for a resumed one.
    """
    try:
        if resume:
            run_id = _check_resumable(run_dir, cfg, force)
        elif ck.list_checkpoints(run_dir / "checkpoints"):
            raise GankitError(f"run folder {run_dir} already holds checkpoints; use --resume {run_dir} to "
                              f"continue it or --run-dir to start a new run elsewhere")
        else:
            run_id = uuid.uuid4().hex
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise GankitError(f"run folder {run_dir} is not writable ({getattr(exc, 'strerror', None) or exc}); "
                          f"choose another with --run-dir") from None
    return run_id


def _check_resumable(run_dir: Path, cfg: RunConfig, force: bool) -> str:
    if not (run_dir / "config.yaml").is_file():
        raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
    path = ck.latest_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise GankitError(f"no checkpoint to resume from in {run_dir / 'checkpoints'}")
    meta = ck.read_meta(path)
    try:
        saved = from_dict(meta["config"]).to_dict()
    except (KeyError, TypeError, GankitError) as exc:
        raise GankitError(f"checkpoint {path} holds no usable config ({exc}); resume from another checkpoint") from None
    run_id = _run_id(run_dir, meta, path)
    changes = [c for c in diff(saved, cfg.to_dict()) if c.split(":", 1)[0] not in LAUNCH]
    fixed = [c for c in changes if _is_fixed(c.split(":", 1)[0])]
    if fixed:
        raise GankitError(f"config differs from the checkpoint {path.name} of the run being resumed in keys that "
                          f"cannot change on resume: {'; '.join(fixed)}; undo the change (in config.yaml or --set) "
                          f"or start a new run with --run-dir")
    if changes and not force:
        raise GankitError("config differs from the run being resumed: " + "; ".join(changes) +
                          " (pass --force to resume anyway)")
    return run_id


def _is_fixed(key: str) -> bool:
    return any(key.startswith(f) if f.endswith(".") else key == f for f in FIXED_ON_RESUME)


def _run_id(run_dir: Path, meta: dict, path: Path) -> str:
    """The folder's run id; a checkpoint written by another run (another id) is refused."""
    own = read_run_id(run_dir)
    theirs = meta.get("run_id")
    if own and theirs and own != theirs:
        raise GankitError(f"checkpoint {path} was written by another run (run id {theirs}, this folder's run is "
                          f"{own}); remove it from {path.parent} or resume the run it belongs to")
    return own or theirs or uuid.uuid4().hex  # runs from before run ids get one now


def read_run_id(run_dir: Path):
    try:
        data = json.loads((Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data.get("run_id") if isinstance(data, dict) and isinstance(data.get("run_id"), str) else None


def write_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool, run_id: str) -> None:
    """config.yaml (new run, or a forced resume), run.json, an empty metrics.jsonl for a new run, and no stale
    files. A kill between committing a checkpoint and pruning old ones leaves one too many: prune again here.
    """
    if not resume or force or _launch_changed(run_dir, cfg):
        atomic_write(run_dir / "config.yaml", cfg.to_yaml().encode())
    if read_run_id(run_dir) != run_id:
        atomic_write(run_dir / RUN_FILE, json.dumps({"run_id": run_id}).encode())
    if not resume:
        atomic_write(run_dir / "metrics.jsonl", b"")
    ck.clean_stale(run_dir / "checkpoints")
    if (run_dir / "checkpoints").is_dir():
        ck.prune(run_dir / "checkpoints", cfg.train.keep_checkpoints)


def _launch_changed(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether config.yaml records another launch (world size, global batch) than this one."""
    try:
        saved = from_dict(read_yaml((run_dir / "config.yaml").read_text(), "config.yaml")).to_dict()
    except (OSError, GankitError):
        return False
    return any(c.split(":", 1)[0] in LAUNCH for c in diff(saved, cfg.to_dict()))


def install_signal_handlers(trainer) -> dict:
    """SIGINT/SIGTERM set ``trainer.stop_signal``: the current step finishes, a checkpoint is written, then exit.

    A second signal stops at once (KeyboardInterrupt): checkpoints are atomic, so that is safe too. Not under
    torchrun: its agent passes the signal a process group got on to every process a second time, and escalates
    to SIGKILL itself when they take too long.
    """
    def handler(signum, frame):
        if trainer.stop_signal is not None and not getattr(getattr(trainer, "dist", None), "active", False):
            raise KeyboardInterrupt
        trainer.stop_signal = signum

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    return old


def restore_signal_handlers(old: dict) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)

