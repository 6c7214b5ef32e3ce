"""Benchmark: every named objective, and the quadratic one written as expressions, for one epoch on MNIST.

Each objective trains the `mnist-dcgan` preset (its networks, optimiser and EMA; the objective and its
Lipschitz option replaced) for one epoch of real MNIST in a fresh `gankit train` process. Recorded per run:
exit status, wall time, whether any logged loss, gradient norm or weight was NaN/Inf, the last logged
losses, and the classifier score and class count of 2,000 EMA samples (`gankit evaluate --metrics cs,modes`).

    python benchmarks/objectives_one_epoch.py --data-dir ../shared/data/mnist [--epochs 1] [--only hinge,...]

Writes benchmarks/results/objectives_one_epoch.json and .md.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# name -> --set overrides on top of the mnist-dcgan preset
RUNS = {
    "minimax": ["objective.name=minimax"],
    "non-saturating": ["objective.name=non-saturating"],
    "least-squares": ["objective.name=least-squares"],
    "hinge": ["objective.name=hinge"],
    "quadratic": ["objective.name=quadratic"],
    "wasserstein + GP": ["objective.name=wasserstein", "objective.penalty=gp", "objective.penalty_weight=10",
                         "objective.penalty_every=1"],
    "wasserstein + clip": ["objective.name=wasserstein", "objective.penalty=none", "objective.clip=0.01"],
    "custom (quadratic as expressions)": ["objective.name=custom", "objective.f1=-d**2/2", "objective.f2=d",
                                          "objective.f3=-d", "objective.domain=real"],
}


def run_one(name: str, sets: list, data_dir: str, epochs: float, out: Path) -> dict:
    run_dir = out / name.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus")
    cmd = [sys.executable, "-m", "gankit", "train", "mnist-dcgan", "--data-dir", data_dir, "--run-dir", str(run_dir),
           "--epochs", str(epochs), "--set", "train.progress=false", "--set", "train.tensorboard=false"]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    row = {"objective": name, "overrides": sets, "exit": proc.returncode, "seconds": round(seconds, 1)}
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        return row
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    numbers = [v for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "speed/images_per_s"]
    row["logged_rows"] = len(rows)
    row["all_finite"] = all(math.isfinite(v) for v in numbers)
    row["last"] = {k: rows[-1][k] for k in ("images", "loss/d", "loss/g", "d/real", "d/fake") if k in rows[-1]}
    ev = subprocess.run([sys.executable, "-m", "gankit", "evaluate", str(run_dir), "--n", "2000", "--metrics",
                         "cs,modes", "--no-floor", "--json", "--data-dir", data_dir], capture_output=True, text=True)
    if ev.returncode == 0:
        result = json.loads(ev.stdout)
        row["cs_2000"] = round(result["cs"], 3)
        row["classes_present"] = result["classes_present"]
    else:
        row["eval_error"] = ev.stderr.strip().splitlines()[-1] if ev.stderr.strip() else ""
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, help="folder with the four MNIST *-ubyte.gz files")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(RUNS))
    ap.add_argument("--out", default="runs/objectives", help="where the runs are written")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"objectives_one_epoch: unknown run {unknown[0]!r}; choose from {', '.join(RUNS)}")
    rows = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        rows.append(run_one(name, RUNS[name], args.data_dir, args.epochs, Path(args.out)))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    result = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or
              platform.machine(), "epochs": args.epochs, "command": " ".join(sys.argv), "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "objectives_one_epoch.json").write_text(json.dumps(result, indent=1))
    lines = [f"# {args.epochs:g} epoch(s) of MNIST per objective ({result['when']})", "",
             f"`{result['command']}`", "",
             "| objective | exit | all logged values finite | seconds | last loss D | last loss G | cs (2,000) | classes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        last = r.get("last", {})
        lines.append(f"| {r['objective']} | {r['exit']} | {r.get('all_finite', '-')} | {r['seconds']} | "
                     f"{last.get('loss/d', float('nan')):.4g} | {last.get('loss/g', float('nan')):.4g} | "
                     f"{r.get('cs_2000', '-')} | {r.get('classes_present', '-')} |")
    (RESULTS / "objectives_one_epoch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
