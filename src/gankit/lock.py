"""One writer per run folder.

A process that trains in a folder holds ``RUN_DIR/.lock`` (an advisory ``flock``, released by the kernel when
the process ends, however it ends) with its PID inside. A second writer is refused at once with the PID of the
holder. A lock file whose process is gone is stale: the next writer takes it over and says so. This module
imports nothing heavy, so the command line takes the lock before torch is loaded.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import GankitError

LOCK = ".lock"


class RunLock:
    """An exclusive, non-blocking lock on a run folder for as long as the object is open.

    The lock file is removed on release, so a folder keeps one only while a writer lives or after a writer was
    killed. Taking the lock re-checks that the locked file is still the one at the path: a writer that lost a
    race with a release (which unlinks) tries again instead of holding an orphaned file.
    """

    def __init__(self, run_dir: Path, created: bool = False):
        import fcntl

        self.path, self.fd, self.created = Path(run_dir) / LOCK, None, created
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
        """Give the folder back; a folder this lock made and nothing else wrote to is removed too."""
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: no other writer can be between lock and check
            os.close(self.fd)                  # closing releases the flock
            self.fd = None
            if self.created:
                try:
                    self.path.parent.rmdir()   # only when empty: a run that wrote anything keeps its folder
                except OSError:
                    pass

    def __del__(self):
        self.release()


def lock_run_dir(run_dir: Path, resume: bool) -> RunLock:
    """The lock of ``run_dir``, made for a new run; a resumed one must be a run folder already."""
    try:
        if resume:
            if not (run_dir / "config.yaml").is_file():
                raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
        created = False
        if not resume:
            try:
                run_dir.mkdir(parents=True)
                created = True
            except FileExistsError:
                if not run_dir.is_dir():
                    raise
        return RunLock(run_dir, created)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise GankitError(f"run folder {run_dir} is not writable ({getattr(exc, 'strerror', None) or exc}); "
                          f"choose another with --run-dir") from None
