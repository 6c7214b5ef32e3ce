"""Benchmark: wall time and real images seen until FID on MNIST falls below a threshold.

Two settings train on MNIST, one after the other, in segments of ``--eval-every`` images: gankit's
``mnist-dcgan`` defaults, and the textbook DCGAN recipe (BCE, batch-normalised D, Adam 2e-4 with
betas 0.5/0.999, batch 128, no penalty, no EMA). After each segment the latest checkpoint is scored
with FID on gankit's MNIST domain classifier (``--n`` samples, no bootstrap); only training time
counts towards the wall time. Where ``--precision auto`` picks a reduced precision (bf16 on a recent
GPU or a CPU with AVX-512 BF16/AMX), the defaults also run in strict fp32, so the FID curves compare
sample quality at equal images seen. A segment is a resume of the same run (exact by design), so the
evaluations do not change the training. FID from few samples is biased upwards: compare the two
settings with each other, at the same ``--n``, not with FIDs from 10,000 samples.

    OMP_NUM_THREADS=2 python benchmarks/time_to_quality.py --data-dir ../shared/data/mnist \\
        [--threshold 300] [--budget 300000] [--eval-every 30000] [--n 2000] [--device auto] [--keep DIR]

Writes benchmarks/results/time_to_quality.json and time_to_quality.md; with ``--keep DIR`` the run folders stay,
each evaluation in its eval/ folder, and ``gankit compare DIR/*`` overlays their FID-against-images-seen curves.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_memory_mb, sync, write_results  # noqa: E402

SETTINGS = {
    "gankit defaults (mnist-dcgan)": (),
    "textbook DCGAN": ("model.codes=0", "objective.penalty=none", "model.norm_d=batch", "optim.lr_g=2e-4",
                       "optim.lr_d=2e-4", "optim.beta1=0.5", "optim.beta2=0.999", "train.batch_size=128",
                       "train.ema=0"),
}


def fid_of_run(run_dir: Path, n: int, data_dir: str) -> float:
    """FID of the run's latest checkpoint, also written to RUN/eval/ so that ``gankit compare`` of the kept run
    folders (--keep) draws the FID-against-images-seen curves."""
    from gankit.metrics.evaluate import evaluate_run, write_result

    result = evaluate_run(run_dir, n=n, seed=0, data_dir=data_dir, metrics=("fid",), floor=False, n_boot=0)
    write_result(run_dir, result)
    return float(result["fid"])


def race(name: str, overrides: tuple, data, args, workdir: Path) -> dict:
    """Train in segments until FID < threshold or the budget is spent; the curve of (images, seconds, FID)."""
    from gankit import resolve
    from gankit.engine import Trainer

    run_dir = workdir / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    base = ("train.progress=false", "train.tensorboard=false", f"train.device={args.device}",
            f"train.seed={args.seed}", *overrides)
    curve, seconds, target = [], 0.0, 0
    reached = None
    while target < args.budget:
        target = min(target + args.eval_every, args.budget)
        cfg = resolve("mnist-dcgan", base + (f"train.images={target}",), **{"data.data_dir": args.data_dir})
        trainer = Trainer(cfg, run_dir, data=data, resume=bool(curve), force=True)
        sync(trainer.device)
        start = time.perf_counter()
        trainer.run()
        sync(trainer.device)
        seconds += time.perf_counter() - start
        fid = fid_of_run(run_dir, args.n, args.data_dir)
        curve.append({"images": trainer.progress.images, "train_seconds": round(seconds, 2), "fid": fid})
        print(f"{name}: {trainer.progress.images} images, {seconds:.1f} s training, FID {fid:.1f}", flush=True)
        if fid < args.threshold:
            reached = curve[-1]
            break
    return {"setting": name, "overrides": list(overrides), "curve": curve, "reached": reached,
            "precision": trainer.speed.precision}


def markdown(rec: dict) -> str:
    m = rec["machine"]
    lines = [f"# Time to quality on MNIST: FID (domain classifier, n={rec['n']}) below {rec['threshold']} "
             f"({rec['date'][:16]} UTC)", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}; device {m['device']}; "
             f"torch {m['torch']}; load average at start {m['load_average_at_start'][0]:.2f}.", "",
             f"Command: `{rec['command']}`", "",
             "| setting | precision | reached | images seen | training seconds | FID curve (images: FID) |",
             "|---|---|---|---|---|---|"]
    for r in rec["results"]:
        hit = r["reached"]
        curve = ", ".join(f"{c['images']}: {c['fid']:.1f}" for c in r["curve"])
        lines.append(f"| {r['setting']} | {r['precision']} | {'yes' if hit else 'no (budget spent)'} | "
                     f"{hit['images'] if hit else '-'} | {hit['train_seconds'] if hit else '-'} | {curve} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with the four MNIST *-ubyte.gz files")
    parser.add_argument("--threshold", type=float, default=300.0, help="FID to reach (default 300 at n=2000)")
    parser.add_argument("--budget", type=int, default=300000, help="most real images per setting (default 5 epochs)")
    parser.add_argument("--eval-every", type=int, default=30000, help="real images between evaluations")
    parser.add_argument("--n", type=int, default=2000, help="samples per FID (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()

    from gankit.data import load_dataset
    from gankit.metrics import load_classifier
    from gankit.device import pick_device
    from gankit.engine.precision import resolve_precision

    device = pick_device(args.device)
    load_classifier("mnist", args.data_dir, progress=True)  # trained once and cached, before any timing
    data = load_dataset("mnist", args.data_dir, "train", device)
    settings = dict(SETTINGS)
    if resolve_precision("auto", device)[0] != "fp32":
        settings["gankit defaults in fp32"] = ("train.precision=fp32",)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        results = [race(name, overrides, data, args, workdir) for name, overrides in settings.items()]
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:]),
              "threshold": args.threshold, "n": args.n, "budget": args.budget, "eval_every": args.eval_every,
              "machine": machine(device), "results": results, "peak_memory": peak_memory_mb(device)}
    write_results("time_to_quality", record, markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
