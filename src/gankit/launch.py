"""Several processes: the ``dist`` section of the config, and which process of a launch this one is, from the
environment `torchrun` sets (RANK, WORLD_SIZE, LOCAL_RANK).

Imports nothing heavy: the command line asks it before torch loads, so that only rank 0 takes the run
folder's lock (`gankit.lock`). Without torchrun's variables a process is rank 0 of a world of 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Optional

from .errors import GankitError


@dataclass
class DistConfig:  # several processes (torchrun, docs/distributed.md): train.batch_size is the GLOBAL batch
    sync_bn: bool = False             # batch norm over the global batch (SyncBatchNorm) instead of per process
    timeout: float = 900.0            # seconds a process waits for the others (a collective, an evaluation)
    world_size: int = 1               # recorded at start, not settings: the processes that trained the run ...
    global_batch: int = 0             # ... and the global batch they shared (batch_size / world_size each)


class Launch(NamedTuple):
    rank: int          # 0 .. world - 1, over every machine
    world: int         # processes in the run
    local_rank: int    # 0 .. processes on this machine - 1: picks the GPU

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise GankitError(f"environment variable {name}={text!r} is not an integer; launch with torchrun, "
                          f"which sets it, or unset it") from None


def launch() -> Launch:
    """This process's place in the run; a clear line for a half-set or inconsistent environment."""
    world = _int("WORLD_SIZE", 1)
    rank = _int("RANK", 0)
    local = _int("LOCAL_RANK", rank if world > 1 else 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise GankitError(f"RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local} do not describe a process of a "
                          f"run (0 <= RANK < WORLD_SIZE); launch with torchrun or unset them")
    if world > 1 and not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        raise GankitError(f"WORLD_SIZE={world} is set but MASTER_ADDR/MASTER_PORT are not; launch with "
                          f"torchrun --nproc_per_node={world} -m gankit train ...")
    return Launch(rank, world, local)


def one_of_several() -> Optional[Launch]:
    """This process's place when it is one of several processes of a run; None otherwise, or when unknown."""
    try:
        info = launch()
    except GankitError:
        return None
    return info if info.world > 1 else None


def error_prefix() -> str:
    """'rank N: ' for the errors of a process of a multi-process run ('' otherwise, or when unknown)."""
    info = one_of_several()
    return f"rank {info.rank}: " if info else ""
