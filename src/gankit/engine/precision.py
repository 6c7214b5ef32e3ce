"""Speed settings of a run: numeric precision, channels-last memory format and torch.compile.

They are resolved once, when the trainer is built, from ``train.precision``,
``train.channels_last`` and ``train.compile`` and the device. ``auto`` picks
bf16 autocast only where bf16 matrix multiplies are actually fast:

| device | auto picks | why |
|---|---|---|
| CUDA, compute capability >= 8.0 | bf16 autocast, TF32 for what stays fp32 | tensor cores run bf16 |
| older CUDA, MPS | fp32 | no fast bf16 |
| CPU with AVX-512 BF16 or AMX | bf16 autocast | native bf16 dot products |
| other CPUs (e.g. AVX2 only) | fp32 | bf16 is emulated: on an AVX2 EPYC a bf16 GEMM ran ~90x slower than fp32 |

Autocast covers only the network passes: the steps cast D's logits to fp32
before the objective, and the penalties (R1, R2, gradient penalty and their
double backward) run outside autocast, so losses and penalties stay fp32.
fp16 needs loss scaling and is offered on CUDA only, with one GradScaler per
network. Explicit ``fp32`` is strict fp32 (no TF32) and the reference for quality.

torch.compile wraps the networks the steps call; the trainer keeps the
uncompiled modules (they share the parameters) for checkpoints, the EMA copy
and sample grids, so state-dict keys never carry an ``_orig_mod.`` prefix.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager, Optional

import torch

from ..errors import GankitError, did_you_mean

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags() -> set:
    """CPU feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 dot products (AVX-512 BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)
        if fn is not None and fn():
            return True
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cuda_has_fast_bf16(device: torch.device) -> bool:
    """True on CUDA GPUs of compute capability 8.0 or newer (Ampere on), whose tensor cores run bf16."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(name: str, device: torch.device) -> tuple:
    """(fp32 | bf16 | fp16, reason) for ``train.precision`` on ``device``; GankitError where it cannot run."""
    if name not in PRECISIONS:
        raise GankitError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {name!r}"
                          f"{did_you_mean(name, PRECISIONS)}")
    kind = device.type
    if name == "auto":
        if kind == "cuda" and cuda_has_fast_bf16(device):
            return "bf16", "auto: CUDA GPU with bf16 tensor cores"
        if kind == "cpu" and cpu_has_fast_bf16():
            return "bf16", "auto: CPU with AVX-512 BF16 or AMX"
        why = {"cpu": "CPU without AVX-512 BF16 or AMX, where bf16 is emulated and slower",
               "cuda": "CUDA GPU older than compute capability 8.0"}.get(kind, f"no fast bf16 on {kind}")
        return "fp32", f"auto: {why}"
    if name == "fp32":
        return "fp32", "asked for"
    if kind == "mps":
        raise GankitError(f"--precision {name} is not offered on MPS; use --precision fp32 (or auto)")
    if name == "fp16" and kind != "cuda":
        raise GankitError("--precision fp16 needs a CUDA GPU (it relies on loss scaling); "
                          "use --precision fp32 or bf16 on this device")
    if name == "bf16" and kind == "cuda" and not cuda_has_fast_bf16(device):
        raise GankitError(f"--precision bf16 needs a CUDA GPU of compute capability 8.0 or newer, this one is "
                          f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}; "
                          f"use --precision fp16 or fp32")
    if name == "bf16" and kind == "cpu" and not cpu_has_fast_bf16():
        return "bf16", "asked for; warning: this CPU has no AVX-512 BF16 or AMX, bf16 runs emulated and slow"
    return name, "asked for"


def _check_compiler(device: torch.device) -> None:
    """torch.compile on CPU generates C++: say so up front instead of failing at the first step."""
    if device.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise GankitError("train.compile=true on CPU needs a C++ compiler (g++ or clang++) on the PATH; "
                          "install one or drop --compile")


@dataclass(frozen=True)
class Speed:
    """The resolved speed settings of one run."""

    device: torch.device
    precision: str            # fp32 | bf16 | fp16
    reason: str               # why this precision, for the log
    channels_last: bool       # networks (and their inputs) in NHWC memory format
    compile: bool             # the steps call torch.compile'd networks
    tf32: bool                # CUDA: fp32 matmuls and convolutions may use TF32

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES.get(self.precision, torch.float32)

    def autocast(self) -> ContextManager:
        """The context the network passes run in: autocast to bf16/fp16, or nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> Optional["torch.amp.GradScaler"]:
        """A loss scaler for fp16 (one per network), else None."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Put a network in the run's memory format (in place: parameters stay the same objects)."""
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def for_steps(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module the step functions call: compiled when asked, sharing the parameters of ``module``."""
        return torch.compile(module) if self.compile else module

    def describe(self) -> str:
        return (f"precision {self.precision} ({self.reason}); channels_last {'on' if self.channels_last else 'off'}; "
                f"compile {'on' if self.compile else 'off'}{'; TF32 on' if self.tf32 else ''}")

    def to_dict(self) -> dict:
        return {"precision": self.precision, "reason": self.reason, "channels_last": self.channels_last,
                "compile": self.compile, "tf32": self.tf32, "device": str(self.device)}


def resolve_speed(precision: str, channels_last: Optional[bool], compile: bool, device: torch.device) -> Speed:
    """Resolve the three speed options for ``device`` and set the backend flags they need.

    channels_last ``None`` (auto) is on for CUDA only: on CPU it changes the convolution kernels, so fp32
    results would no longer match earlier runs bit for bit, for a gain too small to measure reliably.
    """
    name, reason = resolve_precision(precision, device)
    if compile:
        _check_compiler(device)
    tf32 = device.type == "cuda" and precision != "fp32" and cuda_has_fast_bf16(device)
    if tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cl = device.type == "cuda" if channels_last is None else bool(channels_last)
    return Speed(device, name, reason, cl, bool(compile), tf32)


def uncompiled(module: torch.nn.Module) -> torch.nn.Module:
    """The eager module under a torch.compile wrapper (double backward does not run through compiled graphs)."""
    return getattr(module, "_orig_mod", module)


def scaler_states(scalers: dict) -> dict:
    """JSON-able states of the fp16 loss scalers (empty without fp16), for exact resume."""
    return {k: s.state_dict() for k, s in scalers.items() if s is not None}


def load_scaler_states(scalers: dict, states: Optional[dict]) -> None:
    for k, state in (states or {}).items():
        if scalers.get(k) is not None:
            scalers[k].load_state_dict(state)

