"""The run folder: one writer at a time, checks before a run starts or resumes, and what is written first.

A process that trains in a folder holds ``RUN_DIR/.lock`` (an advisory ``flock``, released by the kernel when
the process ends, however it ends) with its PID inside. A second writer is refused at once with the PID of the
holder. A lock file whose process is gone is stale: the next writer takes it over and says so.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from .. import checkpoint as ck
from ..atomic import atomic_write
from ..config import RunConfig, diff, from_dict, read_yaml
from ..errors import GankitError

LOCK = ".lock"


class RunLock:
    """An exclusive, non-blocking lock on a run folder for as long as the object is open.

    The lock file is removed on release, so a folder keeps one only while a writer lives or after a writer was
    killed. Taking the lock re-checks that the locked file is still the one at the path: a writer that lost a
    race with a release (which unlinks) tries again instead of holding an orphaned file.
    """

    def __init__(self, run_dir: Path):
        import fcntl

        self.path, self.fd = Path(run_dir) / LOCK, None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise GankitError(f"run folder {run_dir} is being written by another gankit process (PID {holder});"
                                  f" wait for it to finish or stop it, or choose another --run-dir") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        old = os.pread(fd, 64, 0).decode(errors="replace").strip()
        self.stale = old if old and old != str(os.getpid()) else None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no other writer can be between lock and check
            os.close(self.fd)                  # closing releases the flock
            self.fd = None

    def __del__(self):
        self.release()


def check_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> None:
    """Refuse a resume with a changed config, a new run over checkpoints, or an unusable folder."""
    try:
        if resume:
            _check_resumable(run_dir, cfg, force)
        elif ck.list_checkpoints(run_dir / "checkpoints"):
            raise GankitError(f"run folder {run_dir} already holds checkpoints; use --resume {run_dir} to "
                              f"continue it or --run-dir to start a new run elsewhere")
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise GankitError(f"run folder {run_dir} is not writable ({getattr(exc, 'strerror', None) or exc}); "
                          f"choose another with --run-dir") from None


def _check_resumable(run_dir: Path, cfg: RunConfig, force: bool) -> None:
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
    old = from_dict(read_yaml(cfg_path.read_text(errors="replace"), str(cfg_path)))
    changes = diff(old.to_dict(), cfg.to_dict())
    if changes and not force:
        raise GankitError("config differs from the run being resumed: " + "; ".join(changes) +
                          " (pass --force to resume anyway)")


def write_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> None:
    """config.yaml (new run, or a forced resume), an empty metrics.jsonl for a new run, and no stale files.

    A kill between committing a checkpoint and pruning old ones leaves one too many: prune again here.
    """
    if not resume or force:
        atomic_write(run_dir / "config.yaml", cfg.to_yaml().encode())
    if not resume:
        atomic_write(run_dir / "metrics.jsonl", b"")
    ck.clean_stale(run_dir / "checkpoints")
    if (run_dir / "checkpoints").is_dir():
        ck.prune(run_dir / "checkpoints", cfg.train.keep_checkpoints)


def install_signal_handlers(trainer) -> dict:
    """SIGINT/SIGTERM set ``trainer.stop_signal``: the current step finishes, a checkpoint is written, then exit.

    A second signal stops at once (KeyboardInterrupt): checkpoints are atomic, so that is safe too.
    """
    def handler(signum, frame):
        if trainer.stop_signal is not None:
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
