"""Benchmark: progressive growing against the same networks trained at full resolution, at equal images seen.

Two runs of one preset (``mnist-progan`` by default), one after the other, each as its own ``gankit train``
process with the threads the environment gives it (``OMP_NUM_THREADS``):

- **progressive**: the preset as it is (4x4 -> ... -> 32x32 with fade-in);
- **full resolution**: the same preset with ``grow.fade_images=0 grow.stable_images=0`` (every layer at 32x32 from
  the first image) and ``train.images`` set to the images the progressive run saw.

Each run's wall time is the ``gankit train`` process's, start to exit (data loading and writing included).
Images/s per stage come from metrics.jsonl (each logged window's images over its time), over the image ranges
of the progressive run's stages, for both runs. Then ``gankit evaluate RUN --metrics cs,fid --n N`` scores each
final checkpoint (EMA weights): classifier score, FID against MNIST test images (gankit's offline MNIST features),
and the share of each digit among the samples.

    OMP_NUM_THREADS=2 python benchmarks/progressive.py --data-dir ../shared/data/mnist --out /tmp/progressive \\
        [--preset mnist-progan] [--n 10000] [--skip-baseline]

``--runs PROGRESSIVE FULL --walls S1 S2`` makes the tables from two finished runs (trained as above, one after
the other, and timed with ``/usr/bin/time``) instead of training them.

Writes benchmarks/results/progressive.json and progressive.md; the run folders stay under --out.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_results  # noqa: E402


def train(preset: str, data_dir: str, run: Path, sets: tuple) -> float:
    """Train in a fresh process; the wall time in seconds."""
    args = [sys.executable, "-m", "gankit", "train", preset, "--data-dir", data_dir, "--run-dir", str(run),
            "--set", "train.progress=false", *[a for s in sets for a in ("--set", s)]]
    start = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - start


def evaluate(run: Path, data_dir: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "gankit", "evaluate", str(run), "--data-dir", data_dir,
                          "--metrics", "cs,fid,modes", "--n", str(n), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def stage_speeds(run: Path, ranges: list) -> list:
    """Images/s over each (first, last) range of images seen, from the logged windows inside it."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "speed/images_per_s" in r]
    out = []
    for first, last in ranges:
        images = seconds = 0.0
        for prev, row in zip(rows, rows[1:]):
            if first < row["images"] <= last and row["speed/images_per_s"] > 0:
                window = row["images"] - prev["images"]
                images, seconds = images + window, seconds + window / row["speed/images_per_s"]
        out.append(images / seconds if seconds else None)
    return out


def trained_images(run: Path) -> int:
    """Images the run saw, from its newest checkpoint."""
    from gankit.checkpoint import latest_checkpoint

    return json.loads(latest_checkpoint(run / "checkpoints").read_text())["progress"]["images"]


def stages(run: Path) -> list:
    """[(stage, resolution, first image, last image)] of a progressive run, from its config's schedule."""
    from gankit.config import from_dict
    from gankit.yaml_io import read_yaml

    cfg = from_dict(read_yaml((run / "config.yaml").read_text(), "config.yaml"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"stage"' in line]
    resolutions = sorted({int(r["resolution"]) for r in rows})
    stable, fade, total = cfg.grow.stable_images, cfg.grow.fade_images, trained_images(run)
    starts = [0] + [stable + k * (fade + stable) for k in range(len(resolutions) - 1)]
    ends = starts[1:] + [total]
    return [(k, r, first, last) for k, (r, first, last) in enumerate(zip(resolutions, starts, ends))]


def scores(result: dict) -> dict:
    ci = lambda k: [result[f"{k}_ci_low"], result[f"{k}_ci_high"]] if f"{k}_ci_low" in result else None  # noqa: E731
    return {"cs": result["cs"], "cs_ci": ci("cs"), "fid": result["fid"], "fid_ci": ci("fid"),
            "class_fractions": result.get("class_fractions"), "min_class_fraction": result.get("min_class_fraction"),
            "floor": result.get("floor"), "eval": result.get("provenance", {}).get("written_to")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="mnist-progan")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--runs", nargs=2, type=Path, help="two finished runs: progressive, full resolution")
    ap.add_argument("--walls", nargs=2, type=float, help="their training wall times in seconds")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    record = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(torch.device("cpu")),
              "preset": args.preset, "n": args.n, "runs": {}}
    prog = args.runs[0] if args.runs else out / "progressive"
    wall = args.walls[0] if args.runs else train(args.preset, args.data_dir, prog, ())
    table = stages(prog)
    total = trained_images(prog)
    ranges = [(first, last) for _, _, first, last in table]
    record["runs"]["progressive"] = {"wall_s": wall, "images": total, "stage_images_per_s": stage_speeds(prog, ranges),
                                     **scores(evaluate(prog, args.data_dir, args.n))}
    record["stages"] = [{"stage": s, "resolution": r, "first": f, "last": last} for s, r, f, last in table]
    if not args.skip_baseline:
        full = args.runs[1] if args.runs else out / "full-resolution"
        wall = args.walls[1] if args.runs else train(args.preset, args.data_dir, full, (
            "grow.fade_images=0", "grow.stable_images=0", f"train.images={total}"))
        record["runs"]["full resolution"] = {"wall_s": wall, "images": trained_images(full),
                                             "stage_images_per_s": stage_speeds(full, ranges),
                                             **scores(evaluate(full, args.data_dir, args.n))}
    write_results("progressive", record, markdown(record))
    print(markdown(record))


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Progressive growing against full resolution ({record['preset']}, {record['when']})", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} cores, {m['torch_threads']} torch threads, "
             f"{', '.join(m['cpu_flags'])}, torch {m['torch']}, load average at start {m['load_average_at_start'][0]:.2f}. "
             f"Scores: gankit evaluate, {record['n']:,} samples (EMA weights), FID against MNIST test images.", "",
             "| run | images | wall time (s) | classifier score (95% CI) | FID (95% CI) | rarest digit | "
             + " | ".join(f"images/s at stage {s['stage']} ({s['resolution']}x{s['resolution']}, images "
                          f"{s['first']:,}-{s['last']:,})" for s in record["stages"]) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(record["stages"])]
    for name, r in record["runs"].items():
        ci = lambda v: f" ({v[0]:.3f}-{v[1]:.3f})" if v else ""  # noqa: E731
        speeds = " | ".join(f"{v:.0f}" if v else "-" for v in r["stage_images_per_s"])
        lines.append(f"| {name} | {r['images']:,} | {r['wall_s']:.0f} | {r['cs']:.3f}{ci(r['cs_ci'])} | "
                     f"{r['fid']:.2f}{ci(r['fid_ci'])} | {100 * (r['min_class_fraction'] or 0):.1f}% | {speeds} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
