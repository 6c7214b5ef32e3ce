"""Benchmark: one run on 2 processes x 1 thread (torchrun, gloo) against 1 process x 2 threads, on this machine.

Both train the ``mnist-dcgan`` preset on real MNIST with the same global batch (64: 2 x 32 against 1 x 64)
and the same precision (the preset's ``auto``), each as its own command, as a user would launch it:

    A: OMP_NUM_THREADS=2 python -m gankit train mnist-dcgan ...
    B: OMP_NUM_THREADS=1 python -m torch.distributed.run --nproc_per_node=2 -m gankit train mnist-dcgan ...
    C: OMP_NUM_THREADS=1 python -m gankit train mnist-dcgan ...   (a reference: one process, one thread)

Throughput is what the run itself logs (``speed/images_per_s``, every ``--log-every`` steps, global images per
second of wall time): the first window (warm-up) is dropped and the median of the others kept, so start-up
(imports, loading MNIST, the preset's k-means clustering) is not counted. The settings alternate A B C A B C ...
so that load from other users of the machine falls on all; /proc/loadavg is recorded before and after each
run. On a GPU machine (``--gpu``) it measures 1 process on one GPU and, with several GPUs, N processes.

    python benchmarks/distributed_speed.py --data-dir ../shared/data/mnist [--steps 200] [--rounds 3]

Writes benchmarks/results/distributed_speed.json and distributed_speed.md (``--name`` changes the file name).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _loadavg() -> list:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(procs: int, run_dir: Path, args) -> list:
    sets = [f"train.images={64 * args.steps}", f"train.log_every={args.log_every}", "train.progress=false",
            "train.tensorboard=false", *args.set]
    train = ["-m", "gankit", "train", "mnist-dcgan", "--run-dir", str(run_dir), "--data-dir", args.data_dir,
             *[x for s in sets for x in ("--set", s)]]
    if procs == 1:
        return [sys.executable, *train]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_addr=127.0.0.1",
            f"--master_port={_port()}", *train]


def measure(name: str, procs: int, threads: int, args, tmp: Path) -> dict:
    """One run of ``procs`` processes x ``threads`` threads: its logged images/s after the first window."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    run_dir = tmp / f"{name}-{time.time_ns()}"
    before, start = _loadavg(), time.perf_counter()
    proc = subprocess.run(_command(procs, run_dir, args), env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["speed/images_per_s"] for r in rows if "speed/images_per_s" in r][1:]
    first_line = (run_dir / "log.txt").read_text().splitlines()[0]
    return {"setting": name, "processes": procs, "threads_per_process": threads, "images_per_s": statistics.median(
        speeds), "windows": [round(s, 1) for s in speeds], "wall_s_with_startup": round(wall, 1),
        "loadavg_before": before, "loadavg_after": _loadavg(), "log_first_line": first_line.split(" ", 2)[2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files")
    ap.add_argument("--steps", type=int, default=200, help="G steps per run (batch 64)")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="A B pairs")
    ap.add_argument("--gpu", action="store_true", help="1 process on one GPU, and N processes on N GPUs if N > 1")
    ap.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for both settings")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--name", default="distributed_speed")
    args = ap.parse_args()
    if args.gpu:
        import torch

        n = torch.cuda.device_count()
        settings = [("1 process, 1 GPU", 1, 4)] + ([(f"{n} processes, {n} GPUs", n, 4)] if n > 1 else [])
    else:
        # 1 x 1 is a reference: it tells how much of a difference comes from threads fighting other users' work
        settings = [("1 process x 2 threads", 1, 2), ("2 processes x 1 thread", 2, 1), ("1 process x 1 thread", 1, 1)]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, procs, threads in settings:
                runs.append({"round": r, **measure(name, procs, threads, args, Path(tmp))})
                print(f"round {r}: {name}: {runs[-1]['images_per_s']:.1f} images/s (load {runs[-1]['loadavg_before']})",
                      flush=True)
    summary = {name: statistics.median(x["images_per_s"] for x in runs if x["setting"] == name)
               for name, _, _ in settings}
    names = list(summary)
    ratio = summary[names[1]] / summary[names[0]] if len(names) > 1 else None
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "preset": "mnist-dcgan",
              "global_batch": 64, "steps_per_run": args.steps, "log_every": args.log_every, "extra_sets": args.set,
              "cpu_count": os.cpu_count(), "runs": runs, "median_images_per_s": summary,
              "ratio_second_to_first": ratio, "command": " ".join(["python", "benchmarks/distributed_speed.py",
                                                                 *sys.argv[1:]])}
    try:
        import torch

        record["torch"] = torch.__version__
        if args.gpu:
            record["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    md = [f"# One run on several processes: {', '.join(names)}", "",
          f"`{record['command']}` ({record['date']}, {os.cpu_count()} CPUs; mnist-dcgan on real MNIST, global "
          f"batch 64, {args.steps} G steps per run, median of the logged images/s after the first window; "
          f"settings alternated, load average before each run shown: other users share this machine, so these "
          f"numbers are upper bounds on the slowdown they cause).", "",
          "| round | setting | images/s | windows | load avg (1, 5, 15 min) before |", "|---|---|---|---|---|"]
    for x in runs:
        md.append(f"| {x['round']} | {x['setting']} | {x['images_per_s']:.1f} | {', '.join(map(str, x['windows']))} "
                  f"| {', '.join(map(str, x['loadavg_before']))} |")
    md += ["", "| setting | median images/s |", "|---|---|"]
    md += [f"| {k} | {v:.1f} |" for k, v in summary.items()]
    if ratio is not None:
        md += ["", f"Ratio {names[1]} / {names[0]}: **{ratio:.3f}**."]
    from _common import write_results

    write_results(args.name, record, "\n".join(md) + "\n")
    print(json.dumps({"median_images_per_s": summary, "ratio": ratio}))


if __name__ == "__main__":
    main()
