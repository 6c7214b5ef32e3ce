"""One run on many processes, GPUs and machines, launched by `torchrun` (torch.distributed, DDP).

    torchrun --nproc_per_node=N -m gankit train PRESET ...

gankit reads the environment torchrun sets (`gankit.launch`) and joins its process group: NCCL on CUDA (each
process takes the GPU of its LOCAL_RANK), gloo on the CPU, with a bounded timeout (``dist.timeout``). Without
torchrun (or with one process) nothing here does anything.

How N processes compute what one process computes (docs/distributed.md):

- ``train.batch_size`` is the **global** batch; each process takes its slice of every batch of the epoch's
  permutation (`gankit.modes.ImageBatches.split`), so a process holds batch_size / N images.
- Every process draws the noise of the **whole** global batch from the run's noise generator and keeps its
  rows (`gankit.modes.Context.shard`): the noise stream stays the single-process one.
- Each trainable part is wrapped in its own `DistributedDataParallel` (``broadcast_buffers=False``), which
  averages the gradients: the mean over ranks of per-rank means is the mean over the global batch.
- Batch-norm statistics are per process unless ``dist.sync_bn`` makes them global (`SyncBatchNorm` on CUDA,
  `_GlobalBatchNorm` here on the CPU, where torch's has no kernels); running statistics are averaged over the
  ranks before grids and checkpoints.
- The global torch RNG (anything outside the noise stream) is seeded per rank from the run's seed.

Rank 0 alone writes the run folder; logged values are averaged over the ranks; all ranks check at each
checkpoint that their copies of every part and EMA copy are identical, bit for bit."""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import os
import re
import socket
import time
import warnings
from typing import Callable, Optional

import torch
import torch.distributed as tdist

from ..device import pick_device
from ..errors import GankitError
from ..launch import launch
from .reporting import Reporter

RANK_SEED = 1_000_003  # rank r > 0 seeds its global RNG with seed * RANK_SEED + r (rank 0: the run's seed)


class Dist:
    """This process's place in the run and the few collective operations the engine needs."""

    def __init__(self, rank: int, world: int, local_rank: int, device: torch.device, sync_bn: bool = False,
                 backend: Optional[str] = None):
        self.rank, self.world, self.local_rank, self.device = rank, world, local_rank, device
        self.sync_bn, self.backend = sync_bn, backend

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def describe(self, batch: int) -> str:
        if not self.active:
            return f"1 process, global batch {batch}"
        return (f"{self.world} processes ({self.backend}), global batch {batch} = {self.world} x "
                f"{batch // self.world} per process")

    def record(self, batch: int) -> dict:
        return {"world_size": self.world, "global_batch": batch, "per_process_batch": batch // self.world,
                "backend": self.backend or "none", "sync_bn": self.sync_bn}

    # ---- parts ---------------------------------------------------------------------------------
    def convert(self, module: torch.nn.Module) -> torch.nn.Module:
        """With ``dist.sync_bn``, batch norm over the global batch (same state dict keys)."""
        if not (self.active and self.sync_bn):
            return module
        if self.device.type == "cuda":
            return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        for m in module.modules():
            if type(m) in _GLOBAL_BN:
                m.__class__ = _GLOBAL_BN[type(m)]
        return module

    def wrap(self, module: torch.nn.Module):
        """A part's own DDP wrapper (rank 0's weights broadcast) behind a `Replica`, through which a phase calls
        the module and its other methods (``D.outputs``); the module itself is what checkpoints hold."""
        if not self.active:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel
        # Buffers are never broadcast in the forward pass (batch norm runs twice before one backward): newer torch
        # names the option forward_sync_buffers; both sync them once, at construction.
        off = {"forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else "broadcast_buffers": False}
        # a gradient laid out unlike its weight (1-channel conv, CPU autocast) costs a copy; torch warns every run
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return Replica(ddp(_Routed(module), device_ids=ids, **off), module)

    def seed_rank(self, seed: int) -> None:
        if self.rank > 0:
            torch.manual_seed((seed * RANK_SEED + self.rank) % 2 ** 63)

    def split(self, source):
        """The batch source, cut to this process's slice of every global batch."""
        if self.active:
            if not hasattr(source, "split"):
                raise GankitError(f"the batch source {type(source).__name__} cannot be split over processes; train "
                                  f"in one process (or give the source a split(rank, world) method)")
            source.split(self.rank, self.world)
        return source

    # ---- collectives -----------------------------------------------------------------------------
    def mean(self, stats: dict) -> dict:
        """Each tensor statistic averaged over the ranks (in float64), in one collective."""
        keys = [k for k, v in stats.items() if torch.is_tensor(v)]
        if not self.active or not keys:
            return stats
        flat = torch.stack([stats[k].detach().to(self.device, torch.float64).reshape(()) for k in keys])
        tdist.all_reduce(flat)
        return {**stats, **dict(zip(keys, (flat / self.world).unbind()))}

    def agree_stop(self, trainer) -> Optional[int]:
        """The stop signal any rank received (all ranks stop after the same iteration). It never writes
        ``trainer.stop_signal``: a signal whose handler runs as the collective returns is kept for the next call."""
        if not self.active:
            return trainer.stop_signal
        flag = torch.tensor([trainer.stop_signal or 0], device=self.device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        return int(flag.item()) or None

    def on_main(self, fn: Callable, share: bool = True, default=None):
        """``fn()`` on rank 0 only; its result (``share``) and its error reach every rank, which stops quietly
        on rank 0's error (rank 0 says it)."""
        result, error = default, None
        if self.is_main:
            try:
                result = fn()
            except GankitError as exc:
                error = exc
        if self.active:
            box = [result if share else None, None if error is None else str(error)]
            tdist.broadcast_object_list(box, src=0)
            if not self.is_main:
                if box[1] is not None:
                    raise SystemExit(2)
                result = box[0] if share else default
        if error is not None:
            raise error
        return result

    def lock(self, take: Callable):
        """The run folder's lock, taken by rank 0 (the others hold a `NoLock`); its refusal stops every rank."""
        return self.on_main(take, False, NoLock())

    @torch.no_grad()
    def average_buffers(self, parts) -> bool:
        """Per-process batch-norm statistics averaged over the ranks (their update is linear: no change to
        what training computes, and the same whether done now or later). True on rank 0."""
        if not self.active or self.sync_bn:  # global batch norm: the statistics are the same on every rank
            return self.is_main
        for module in [*parts.modules.values(), *(e.module for e in parts.emas.values())]:
            for m in module.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                    for b in (m.running_mean, m.running_var):
                        tdist.all_reduce(b)
                        b.div_(self.world)
        return self.is_main

    def checkpoint_state(self, parts) -> dict:
        """Collective part of a checkpoint: averaged buffers, the check that every rank holds the same parts
        and EMA copies, and each rank's global RNG state (tensors ``rng.torch.rank<r>``)."""
        if not self.active:
            return {}
        self.average_buffers(parts)
        digests = {n: _digest(m) for n, m in parts.modules.items()}
        digests.update({f"{n}_ema": _digest(e.module) for n, e in parts.emas.items()})
        rng = torch.get_rng_state()
        everyone = [None] * self.world
        tdist.all_gather_object(everyone, (digests, rng))
        for r, (theirs, _) in enumerate(everyone):
            bad = [n for n in digests if theirs.get(n) != everyone[0][0].get(n)]
            if bad:
                raise GankitError(f"the copies of {', '.join(bad)} on rank {r} differ from rank 0's; the ranks "
                                  f"no longer train one run: resume from the last checkpoint")
        return {f"rng.torch.rank{r}": state for r, (_, state) in enumerate(everyone) if r > 0}

    def restore_rng(self, tensors: dict, seed: int, step: int) -> None:
        """Rank r's global RNG from its checkpoint state, or (another world size) seeded from seed and step."""
        if self.rank == 0:
            return
        key = f"rng.torch.rank{self.rank}"
        if key in tensors:
            torch.set_rng_state(tensors[key].cpu())
        else:
            torch.manual_seed((seed * RANK_SEED + self.rank + step * 7919) % 2 ** 63)

    # ---- faults ------------------------------------------------------------------------------------
    def lost(self, exc: BaseException, last) -> GankitError:
        """A failed collective as one line naming the ranks that are gone (when this machine can tell) and the
        last checkpoint ``last``; an error that is not a failed collective (or in one process) is raised again."""
        if not self.active or not (isinstance(exc, tdist.DistError) or any(w in str(exc) for w in _LOST)):
            raise exc
        local, unknown = {}, []
        with contextlib.suppress(Exception):  # the store may have gone with the agent: say what the error said
            store = tdist.distributed_c10d._get_default_store()
            for r in range(self.world):
                host, pid = store.get(f"gankit/rank/{r}").decode().split()
                if r != self.rank and host == socket.gethostname():
                    local[r] = int(pid)
                elif r != self.rank:
                    unknown.append(f"rank {r} on {host}")
        dead, deadline = [], time.monotonic() + 3.0
        while local and not dead and time.monotonic() < deadline:  # a killed process takes a moment to exit
            states = {r: _state(pid) for r, pid in local.items()}
            dead = [f"rank {r} (pid {local[r]}) " + ("is stopped" if st in ("T", "t") else "died")
                    for r, st in states.items() if st in (None, "Z", "X", "T", "t")]
            time.sleep(0 if dead else 0.1)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first).split(". ")[0]  # no source location
        who = ", ".join(dead) if dead else f"lost contact with {', '.join(unknown) or 'another rank'}"
        return GankitError(f"{who}; rank {self.rank} stops ({first[:200]}); latest complete checkpoint: "
                           f"{last or 'none'}; relaunch with --resume RUN_DIR")

    def close(self) -> None:
        if self.active and tdist.is_initialized():
            tdist.destroy_process_group()


class _Routed(torch.nn.Module):
    """DDP runs only ``forward``: this one runs the module's method ``_method`` (forward by default)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args, _method: str = "forward", **kwargs):
        return getattr(self.module, _method)(*args, **kwargs)


class Replica:
    """What a phase calls on several processes: ``replica(x)`` and the module's own methods (``replica.outputs(x,
    y)``) run through its DDP wrapper, so that their gradients are averaged; other attributes are the module's."""

    def __init__(self, ddp, module: torch.nn.Module):
        self.ddp, self.module = ddp, module

    def __call__(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self.module, name)
        if callable(value) and not hasattr(torch.nn.Module, name) and callable(getattr(type(self.module), name, None)):
            return lambda *args, **kwargs: self.ddp(*args, _method=name, **kwargs)
        return value


class QuietReporter(Reporter):
    """What a rank other than 0 reports: nothing (rank 0 writes and prints)."""

    def __init__(self):
        super().__init__([])

    def message(self, text: str) -> None:
        pass


class NoLog:
    def message(self, text: str) -> None:
        pass


class NoLock:
    stale = None

    def release(self) -> None:
        pass


FAILURES = (tdist.DistError, RuntimeError)  # what a collective raises when a peer is gone (gloo: RuntimeError)
_LOST = ("Connection closed", "Connection reset", "Broken pipe", "peer", "Timed out", "timed out", "gloo", "NCCL",
         "ProcessGroup", "Socket", "socket")


def setup(cfg) -> Dist:
    """Join torchrun's process group (nothing to join in one process); records the launch in ``cfg.dist``."""
    info = launch()
    t = cfg.train
    cfg.dist.world_size, cfg.dist.global_batch = info.world, t.batch_size
    if info.world == 1:
        return Dist(0, 1, 0, pick_device(t.device), cfg.dist.sync_bn)
    if t.batch_size % info.world:
        raise GankitError(f"train.batch_size={t.batch_size} is the global batch and must be a multiple of the "
                          f"{info.world} processes; use {max(1, t.batch_size // info.world) * info.world}")
    device = _device(t.device, info.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        tdist.init_process_group(backend, timeout=datetime.timedelta(seconds=cfg.dist.timeout),
                                 rank=info.rank, world_size=info.world,
                                 **({"device_id": device} if device.type == "cuda" else {}))
        tdist.distributed_c10d._get_default_store().set(f"gankit/rank/{info.rank}",
                                                       f"{socket.gethostname()} {os.getpid()}")
    except (RuntimeError, ValueError, tdist.DistError) as exc:
        raise GankitError(f"rank {info.rank} cannot join the process group at {os.environ.get('MASTER_ADDR')}:"
                          f"{os.environ.get('MASTER_PORT')} ({str(exc).splitlines()[0][:200]}); check the "
                          f"rendezvous address and that every process was started") from None
    return Dist(info.rank, info.world, info.local_rank, device, cfg.dist.sync_bn, backend)


def _device(name: str, local_rank: int) -> torch.device:
    device = pick_device(name)
    if device.type == "mps":
        raise GankitError("several processes on MPS are not supported (gloo cannot reduce MPS tensors); "
                          "use --device cpu or one process")
    if device.type != "cuda":
        return device
    if device.index is not None and name != "auto":
        raise GankitError(f"train.device={name} puts every process on one GPU; use train.device=cuda (each "
                          f"process takes the GPU of its LOCAL_RANK)")
    if local_rank >= torch.cuda.device_count():
        raise GankitError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} GPU(s); "
                          f"start at most that many processes per machine (--nproc_per_node)")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _state(pid: int) -> Optional[str]:
    """The process's state letter (R, S, T, Z, ...), "?" when it exists but cannot be read, None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


# ---- batch norm over the global batch on the CPU --------------------------------------------------------
class _GlobalBatchNormMixin:
    """Batch norm whose training statistics are those of the global batch (sums all-reduced with autograd,
    so gradients flow through every rank's share, as `torch.nn.SyncBatchNorm` does on GPUs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and tdist.is_initialized() and tdist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _AllSum.apply
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xd = x.double()  # statistics accumulated in float64, as torch's CPU batch norm does
        count = all_reduce(xd.new_tensor([xd.numel() / xd.shape[1]]))
        mean = all_reduce(xd.sum(dims)) / count
        var = all_reduce((xd - mean.view(shape)).pow(2).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                unbiased = var.detach() * (count / (count - 1).clamp(min=1))
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        xf = x.float()
        out = (xf - mean.float().view(shape)) * torch.rsqrt(var + self.eps).float().view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


class _AllSum(torch.autograd.Function):
    """Sum over the ranks; its gradient is the sum of the ranks' gradients (differentiable again: R1 on a
    globally normalised D)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        tdist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _AllSum.apply(grad)


_GLOBAL_BN = {bn: type(f"Global{bn.__name__}", (_GlobalBatchNormMixin, bn), {})
              for bn in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)}
