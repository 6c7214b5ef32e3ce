"""Streaming a large folder: 100,000 synthetic 64x64 RGB PNGs in a zip, trained from disk and from memory.

1. Writes N images (default 100,000) of shapes (disc, square, triangle) in random colours on random
   backgrounds as PNGs into a zip in stylegan2-ada's layout, labelled by shape in dataset.json.
2. Trains `folder-dcgan64` from the zip with ``data.stream=true`` (DataLoader workers) and, on the first
   ``--subset`` images, with ``data.stream=false`` (uint8 in memory), alternating the two (``--rounds``
   times each), so that load from other processes on the machine hits both alike. Each run is a
   ``gankit train`` process; a sampler thread reads the memory of it and of its workers every 0.1 s:
   the sum of their RSS (shared pages counted once per process: an upper bound) and of their PSS
   (shared pages split between the processes that share them: the memory they really use).
3. Reports peak memory and training images/s (images of the logged windows after the first, over their
   time: start-up, data loading and the first window are not counted). RSS is also given per process:
   the training process, and the largest worker.

    OMP_NUM_THREADS=2 python benchmarks/stream_folder.py --out /tmp/shapes --rounds 2 --images 3200
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

SHAPES = ("disc", "square", "triangle")


def make_image(rng: np.random.Generator, size: int = 64) -> tuple:
    """(uint8 (size, size, 3), shape label): one shape in a random colour on a random background."""
    from PIL import Image, ImageDraw

    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    kind = int(rng.integers(0, 3))
    r = int(rng.integers(size // 8, size // 3))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    if kind == 0:
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    elif kind == 1:
        d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return im, kind


def write_zip(path: Path, n: int, seed: int = 0) -> float:
    """N shape images as PNGs in an uncompressed zip (stylegan2-ada's layout); returns seconds taken."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    labels = []
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        for i in range(n):
            im, kind = make_image(rng)
            buf = io.BytesIO()
            im.save(buf, format="PNG", compress_level=6)
            name = f"{i // 1000:05d}/img{i:08d}.png"
            z.writestr(name, buf.getvalue())
            labels.append([name, kind])
        z.writestr("dataset.json", json.dumps({"labels": labels, "classes": list(SHAPES)}))
    os.replace(tmp, path)
    return time.perf_counter() - start


def _tree(pid: int) -> list:
    """pid and its descendants (from /proc)."""
    children: dict = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo += children.get(q, [])
    return out


def _memory(pids: list) -> tuple:
    """(sum of RSS, sum of PSS, RSS of each pid) in bytes of ``pids`` (smaps_rollup)."""
    rss = pss = 0
    each = {}
    for q in pids:
        try:
            for line in Path(f"/proc/{q}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    each[q] = int(line.split()[1]) * 1024
                    rss += each[q]
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss, each


def train_run(zip_path: Path, run_dir: Path, stream: bool, images: int, subset: int, workers: int,
              extra: list) -> dict:
    """One `gankit train folder-dcgan64` process; its peak memory (with workers) and training images/s."""
    cmd = [sys.executable, "-m", "gankit", "train", "folder-dcgan64", "--data-dir", str(zip_path),
           "--run-dir", str(run_dir), "--set", f"data.stream={'true' if stream else 'false'}",
           "--set", f"data.workers={workers}", "--set", f"train.images={images}", "--set", "train.log_every=5",
           "--set", "train.progress=false", "--set", "train.tensorboard=false", "--set", "train.grid_size=16"]
    if not stream:
        cmd += ["--set", f"data.limit={subset}"]
    for e in extra:
        cmd += ["--set", e]
    load = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"rss": 0, "pss": 0, "procs": 0, "main": 0, "worker": 0}

    def sample():
        while proc.poll() is None:
            pids = _tree(proc.pid)
            rss, pss, each = _memory(pids)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            peak["main"] = max(peak["main"], each.get(proc.pid, 0))
            peak["worker"] = max([peak["worker"]] + [v for q, v in each.items() if q != proc.pid])
            peak["procs"] = max(peak["procs"], len(pids))
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    th.join()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode}):\n{out[-3000:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # each logged row's speed covers the images since the row before; the first window (warm-up) is left out
    spans = [(b["images"] - a["images"], b["speed/images_per_s"]) for a, b in zip(rows, rows[1:])]
    rate = sum(n for n, _ in spans) / sum(n / v for n, v in spans)
    windows = [v for _, v in spans]
    return {"stream": stream, "images_per_s": rate, "window_median_images_per_s": statistics.median(windows),
            "windows": windows, "peak_rss_tree_mb": peak["rss"] / 2 ** 20, "peak_pss_tree_mb": peak["pss"] / 2 ** 20,
            "peak_rss_main_mb": peak["main"] / 2 ** 20, "peak_rss_one_worker_mb": peak["worker"] / 2 ** 20,
            "processes": peak["procs"], "wall_s": wall, "load_average_at_start": list(load)}


def loader_rate(zip_path: Path, workers: int, batches: int, batch_size: int = 64) -> dict:
    """Images/s of the data path alone: uint8 batches from the streaming loader (``workers`` processes,
    the zip) and from memory (index_select of a uint8 tensor), each then made float as training does."""
    import torch

    from gankit.data import ImageData, to_float, to_uint8_tensor
    from gankit.data.files import list_images, read_images
    from gankit.data.stream import StreamedImages

    files = list_images(zip_path)
    streamed = StreamedImages(files, "folder", 64, 3, workers)
    order = streamed.epoch_order(0, 0)
    out = {}
    start = time.perf_counter()
    for i in range(batches):
        to_float(streamed.batch(0, order, i * batch_size, (i + 1) * batch_size))
    out["stream_images_per_s"] = batches * batch_size / (time.perf_counter() - start)
    streamed.close()
    n = min(len(files), 20_000)
    memory = ImageData(to_uint8_tensor(read_images(files, 64, 3, range(n))), torch.zeros(n, dtype=torch.long),
                       "folder", ["0"])
    order = memory.epoch_order(0, 0)
    start = time.perf_counter()
    for i in range(batches):
        to_float(memory.batch(0, order, (i * batch_size) % (n - batch_size), (i * batch_size) % (n - batch_size) + batch_size))
    out["memory_images_per_s"] = batches * batch_size / (time.perf_counter() - start)
    out.update(workers=workers, batches=batches, batch_size=batch_size, load_average_at_start=list(os.getloadavg()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for the zip and the runs")
    ap.add_argument("--n", type=int, default=100_000, help="images to write (default 100000)")
    ap.add_argument("--subset", type=int, default=20_000, help="images of the in-memory runs (default 20000)")
    ap.add_argument("--images", type=int, default=3200, help="real images each training run sees")
    ap.add_argument("--rounds", type=int, default=2, help="streamed/in-memory pairs, alternated")
    ap.add_argument("--workers", type=int, default=3, help="data.workers of the streamed runs")
    ap.add_argument("--set", action="append", default=[], help="extra --set for every run")
    ap.add_argument("--first-round", type=int, default=0, help="number of the first round (to add rounds)")
    ap.add_argument("--loader-only", type=int, metavar="BATCHES",
                    help="only time the data path (this many batches of 64, streamed and from memory), no training")
    ap.add_argument("--name", default="stream_folder")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zip_path = out / f"shapes{args.n}.zip"
    record = {"n": args.n, "subset": args.subset, "images_per_run": args.images, "workers": args.workers,
              "extra": args.set, "load_average_at_start": list(os.getloadavg()),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpu_count": os.cpu_count()}
    if not zip_path.is_file():
        record["write_s"] = write_zip(zip_path, args.n)
        print(f"wrote {args.n:,} PNGs to {zip_path} in {record['write_s']:.0f} s", flush=True)
    record["zip_mb"] = zip_path.stat().st_size / 2 ** 20
    if args.loader_only:
        res = loader_rate(zip_path, args.workers, args.loader_only)
        record.update(res)
        text = (f"# The data path alone: {args.loader_only} batches of 64 images of 64x64\n\nCommand: "
                f"`{' '.join(sys.argv)}` (OMP_NUM_THREADS={record['omp_num_threads']}, load average at start "
                f"{res['load_average_at_start'][0]:.2f})\n\nStreamed from the zip ({args.workers} workers): "
                f"{res['stream_images_per_s']:.0f} images/s; from memory (uint8, index_select): "
                f"{res['memory_images_per_s']:.0f} images/s.\n")
        write_results(args.name, record, text)
        print(text)
        return
    runs = []
    for r in range(args.first_round, args.first_round + args.rounds):
        for stream in (True, False) if r % 2 == 0 else (False, True):
            run_dir = out / f"run-{'stream' if stream else 'memory'}-{r}"
            if run_dir.exists():
                import shutil
                shutil.rmtree(run_dir)
            res = train_run(zip_path, run_dir, stream, args.images, args.subset, args.workers, args.set)
            res["round"] = r
            runs.append(res)
            print(json.dumps({k: v for k, v in res.items() if k != "windows"}), flush=True)
    record["runs"] = runs
    s = [x["images_per_s"] for x in runs if x["stream"]]
    m = [x["images_per_s"] for x in runs if not x["stream"]]
    record["stream_median_images_per_s"], record["memory_median_images_per_s"] = statistics.median(s), statistics.median(m)
    record["ratio_stream_to_memory"] = statistics.median(s) / statistics.median(m)
    record["pairs_ratio"] = [a / b for a, b in zip(s, m)]
    record["stream_peak_pss_mb"] = max(x["peak_pss_tree_mb"] for x in runs if x["stream"])
    record["stream_peak_rss_mb"] = max(x["peak_rss_tree_mb"] for x in runs if x["stream"])
    record["memory_peak_pss_mb"] = max(x["peak_pss_tree_mb"] for x in runs if not x["stream"])
    lines = [f"# Streaming {args.n:,} 64x64 PNGs from a zip vs {args.subset:,} of them in memory",
             "", f"Command: `{' '.join(sys.argv)}` (OMP_NUM_THREADS={record['omp_num_threads']}, "
             f"{record['cpu_count']} CPUs, load average at start {record['load_average_at_start'][0]:.2f})", "",
             "| round | source | images/s | peak PSS, all processes (MB) | peak RSS: sum / training process / "
             "largest worker (MB) | processes | load at start |",
             "|---|---|---|---|---|---|---|"]
    for x in runs:
        lines.append(f"| {x['round']} | {'zip, streamed' if x['stream'] else 'memory (uint8)'} | "
                     f"{x['images_per_s']:.1f} | {x['peak_pss_tree_mb']:.0f} | {x['peak_rss_tree_mb']:.0f} / "
                     f"{x['peak_rss_main_mb']:.0f} / {x['peak_rss_one_worker_mb']:.0f} | "
                     f"{x['processes']} | {x['load_average_at_start'][0]:.2f} |")
    lines += ["", f"Median images/s: streamed {record['stream_median_images_per_s']:.1f}, in memory "
                  f"{record['memory_median_images_per_s']:.1f}; ratio {record['ratio_stream_to_memory']:.3f} "
                  f"(per round: {', '.join(f'{v:.3f}' for v in record['pairs_ratio'])})."]
    write_results(args.name, record, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
