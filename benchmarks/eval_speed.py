"""Benchmark: wall-clock seconds of `gankit evaluate RUN_DIR --n 10000` once the extractor is cached.

The headline is the whole command in a fresh process (imports, sampling, feature extraction, every default
metric and the floor), timed after one warm-up run has filled the reference-feature and floor caches. An
in-process breakdown shows where the time goes. The budget is 60 s on the project's 2-core CPU.

    OMP_NUM_THREADS=1 python benchmarks/eval_speed.py RUN_DIR [--n 10000] [--repeats 2]

Writes benchmarks/results/eval_speed.json and appends one line to benchmarks/results/eval_speed.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_S = 60.0


def time_cli(run_dir: str, n: int) -> tuple:
    """(seconds, parsed JSON result) of one `gankit evaluate RUN_DIR --n N --json` in a fresh process."""
    cmd = [sys.executable, "-m", "gankit", "evaluate", run_dir, "--n", str(n), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"eval_speed: {' '.join(cmd)} failed:\n{proc.stderr.strip()[-2000:]}")
    return seconds, json.loads(proc.stdout)


def breakdown(run_dir: str, n: int) -> dict:
    """Seconds per stage, in this process: sampling, feature extraction, reference load, each metric, floor."""
    import torch

    from gankit.data import to_tensor_images
    from gankit.export import to_uint8
    from gankit.generate import generate
    from gankit.run import load_generator
    from gankit.metrics import DEFAULT_METRICS, get_metrics
    from gankit.metrics.evaluate import load_reference, real_floor
    from gankit.metrics.extractors import domain_extractor
    from gankit.metrics.registry import MetricInputs

    stages, t = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        stages[name] = round(now - t, 2)
        t = now

    G, meta = load_generator(run_dir, device="cpu")
    images = to_uint8(generate(G, n, seed=0))
    lap("sample")
    ext = domain_extractor(meta["dataset"], train_if_missing=False, progress=False)
    fake = ext(to_tensor_images(images))
    lap("features")
    metrics = get_metrics(DEFAULT_METRICS)
    reference = load_reference(meta["dataset"], meta["config"]["data"]["data_dir"], ext, ext, metrics, True)
    lap("reference (cached)")
    inputs = MetricInputs(fake, reference.ref, reference.train, precomputed=reference.precomputed)
    for m in metrics:  # one MetricInputs, as in evaluate_features: pr and dc share their distance pass
        m.fn(inputs)
        lap(f"metric {m.name}")
    real_floor(reference, ext, metrics, n)
    lap("floor (cached)")
    stages["torch_threads"] = torch.get_num_threads()
    return stages


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write(record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "eval_speed.json").write_text(json.dumps(record, indent=1) + "\n")
    md = RESULTS / "eval_speed.md"
    if not md.is_file():
        md.write_text("# gankit evaluate: seconds for 10,000 samples, extractor cached (budget 60 s)\n\n"
                      "| date (UTC) | n | CPU cores | OMP threads | warm-up run s | timed runs s | in budget | "
                      "extractor | gankit |\n|---|---|---|---|---|---|---|---|---|\n")
    runs = ", ".join(f"{s:.1f}" for s in record["timed_seconds"])
    with md.open("a") as f:
        f.write(f"| {record['date'][:16]} | {record['n']} | {record['cpu_count']} | {record['omp_num_threads']} | "
                f"{record['warmup_seconds']:.1f} | {runs} | {'yes' if record['within_budget'] else 'NO'} | "
                f"{record['extractor']} ({record['extractor_hash'][:12]}) | {record['gankit_version']} |\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a trained run folder (e.g. a 5-epoch mnist-dcgan run)")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after the warm-up (default 2)")
    args = parser.parse_args()

    from gankit.errors import GankitError
    from gankit.run import load_generator
    from gankit.metrics import load_classifier

    _, meta = load_generator(args.run_dir, device="cpu")
    try:
        load_classifier(meta["dataset"], train_if_missing=False)
    except GankitError as exc:
        sys.exit(f"eval_speed: {exc} (the benchmark times evaluation with the extractor cached)")
    warmup, result = time_cli(args.run_dir, args.n)
    timed = [time_cli(args.run_dir, args.n)[0] for _ in range(args.repeats)]
    p = result["provenance"]
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run_dir": args.run_dir, "n": args.n,
        "command": f"gankit evaluate {args.run_dir} --n {args.n} --json", "metrics": p["metrics"],
        "warmup_seconds": round(warmup, 2), "timed_seconds": [round(s, 2) for s in timed],
        "median_seconds": round(statistics.median(timed), 2), "budget_seconds": BUDGET_S,
        "within_budget": max(timed) < BUDGET_S, "breakdown_seconds": breakdown(args.run_dir, args.n),
        "extractor": p["extractor"], "extractor_hash": p["extractor_hash"], "gankit_version": p["gankit_version"],
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(), "torch": __import__("torch").__version__,
    }
    write(record)
    print(json.dumps(record, indent=1))
    return 0 if record["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
