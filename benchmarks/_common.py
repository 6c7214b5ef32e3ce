"""Shared pieces of the training benchmarks: machine description, GEMM peak, timing, result files."""
from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx_vnni")


def machine(device: torch.device) -> dict:
    """What the numbers were measured on."""
    from gankit.engine.precision import cpu_flags, cpu_has_fast_bf16

    name = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": name, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": sorted(f for f in CPU_FLAGS_OF_INTEREST if f in cpu_flags()),
            "cpu_fast_bf16": cpu_has_fast_bf16(), "device": str(device), "python": platform.python_version(),
            "torch": torch.__version__, "load_average_at_start": list(os.getloadavg())}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_capability"] = list(torch.cuda.get_device_capability(device))
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 3, min_seconds: float = 0.5) -> float:
    """Best GFLOP/s of an n x n x n matrix multiply (2 n^3 FLOPs) over ``repeats`` timed runs.

    Each run repeats the multiply for at least ``min_seconds`` (at least once), after one warm-up.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    a @ b
    sync(device)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            a @ b
            count += 1
            sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, 2 * n ** 3 * count / elapsed / 1e9)
    return best


def peak_memory_mb(device: torch.device) -> dict:
    """Process resident-set high-water mark (Linux: ru_maxrss in KiB) and, on CUDA, the allocator's peak."""
    out = {"rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    return out


def write_results(name: str, record: dict, markdown: str) -> None:
    """benchmarks/results/NAME.json (this run) and NAME.md (this run's tables; earlier runs are in git history)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
