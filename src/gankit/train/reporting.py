"""One reporting call, many sinks: metrics.jsonl, TensorBoard and a progress bar.

Statistics have hierarchical names (``loss/d``, ``d/real``, ``grad_norm/g``,
``speed/images_per_s``). Sinks are independent; a report never reads them back.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch


class JsonlSink:
    """Appends one JSON object per report to ``metrics.jsonl``, flushed at once."""

    def __init__(self, path: Path):
        self.file = open(path, "a", encoding="utf-8")

    def scalars(self, step: int, images: int, values: dict) -> None:
        row = {"step": step, "images": images, **{k: _json_float(v) for k, v in values.items()}}
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass

    def close(self) -> None:
        self.file.close()


def _json_float(v):
    v = float(v)
    return v if math.isfinite(v) else str(v)  # JSON has no NaN/Inf; keep them readable


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

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
        self.bar.set_postfix({k.replace("loss/", ""): f"{v:.3g}" for k, v in short.items()}, refresh=False)

    def message(self, text: str) -> None:
        self.bar.write(text)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        pass

    def close(self) -> None:
        self.bar.close()


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
        printed = False
        for s in self.sinks:
            if hasattr(s, "message"):
                s.message(text)
                printed = True
        if not printed:
            print(text, file=sys.stderr)

    def close(self) -> None:
        for s in self.sinks:
            s.close()
