"""One reporting call, many sinks: metrics.jsonl, TensorBoard, a progress bar and log.txt.

Statistics have hierarchical names (``loss/d``, ``d/real``, ``grad_norm/g``,
``speed/images_per_s``). Sinks are independent; a report never reads them back.
Messages (stops, resumes, rollbacks, health warnings) go to the progress bar or
stderr and to ``log.txt``. A resumed run first cuts ``metrics.jsonl`` back to
its checkpoint with `truncate_jsonl`, so rows are never duplicated.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch


class JsonlSink:
    """Appends one JSON object per report to ``metrics.jsonl``, flushed at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file = open(path, "a", encoding="utf-8")

    def scalars(self, step: int, images: int, values: dict) -> None:
        row = {"step": step, "images": images, **{k: _json_float(v) for k, v in values.items()}}
        try:
            self.file.write(json.dumps(row) + "\n")
            self.file.flush()
        except OSError as exc:  # buffered writes lose the file name; the user needs it
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass

    def close(self) -> None:
        self.file.close()


def _json_float(v):
    v = float(v)
    return v if math.isfinite(v) else str(v)  # JSON has no NaN/Inf; keep them readable


def _from_json(v):
    return float(v) if v in ("nan", "inf", "-inf") else v


def truncate_jsonl(path: Path, max_images: int) -> list:
    """Cut ``path`` after its last whole row with ``images <= max_images``; return the rows kept.

    Rows after a checkpoint (written by a run killed before its next checkpoint) and a
    torn last line are dropped, so a resumed run appends exactly where its checkpoint is.
    """
    path = Path(path)
    if not path.is_file():
        return []
    data, rows, end = path.read_bytes(), [], 0
    for line in data.splitlines(keepends=True):
        try:
            row = json.loads(line) if line.endswith(b"\n") else None
            keep = isinstance(row, dict) and row["images"] <= max_images
        except (ValueError, KeyError, TypeError):
            keep = False
        if not keep:
            break
        rows.append({k: _from_json(v) for k, v in row.items()})
        end += len(line)
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return rows


class TensorBoardSink:
    def __init__(self, log_dir: Path, purge_step=None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step hides events a killed run wrote after the checkpoint being resumed
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def scalars(self, step: int, images: int, values: dict) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, images)
        self.writer.flush()

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        self.writer.add_image(tag, grid, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class ProgressSink:
    """A tqdm bar counting images seen, with ETA and the latest losses."""

    def __init__(self, total: int, initial: int = 0):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="img", unit_scale=True, file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)
        self.last = initial

    def scalars(self, step: int, images: int, values: dict) -> None:
        self.bar.update(images - self.last)
        self.last = images
        short = {k.split("/")[-1] if k.startswith("loss/") else k: v for k, v in values.items()
                 if k in ("loss/d", "loss/g", "d/real", "d/fake")}
        post = {k.replace("loss/", ""): f"{v:.3g}" for k, v in short.items()}
        warnings = [k[7:] for k, v in values.items() if k.startswith("health/") and v]
        if warnings:
            post["warn"] = ",".join(warnings)
        self.bar.set_postfix(post, refresh=False)

    def message(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)  # with the bar, not among the results on stdout

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass

    def close(self) -> None:
        self.bar.close()


class LogSink:
    """Appends every message, time-stamped, to ``log.txt`` in the run folder."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")

    def scalars(self, step: int, images: int, values: dict) -> None:
        pass

    def message(self, text: str) -> None:
        self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self.file.flush()

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass

    def close(self) -> None:
        self.file.close()


class Reporter:
    """Fans ``scalars``/``image``/``message`` out to every sink."""

    def __init__(self, sinks: list):
        self.sinks = sinks

    def scalars(self, step: int, images: int, values: dict) -> None:
        for s in self.sinks:
            s.scalars(step, images, values)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        for s in self.sinks:
            s.image(tag, grid, step)

    def message(self, text: str) -> None:
        for s in self.sinks:
            if hasattr(s, "message"):
                s.message(text)
        if not any(isinstance(s, ProgressSink) for s in self.sinks):
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def run_sinks(run_dir: Path, t, images: int, resumed: bool, total: int) -> tuple:
    """(log.txt's sink, [every sink of a run folder that train config ``t`` asks for]) for rank 0."""
    log = LogSink(run_dir / "log.txt")
    sinks = [JsonlSink(run_dir / "metrics.jsonl"), log]
    if t.tensorboard:  # a resumed run hides the events a killed run wrote after its checkpoint
        sinks.append(TensorBoardSink(run_dir, images + 1 if resumed else None))
    if t.progress:
        sinks.append(ProgressSink(total, images))
    return log, sinks
