"""Reading a run folder for the report: files only, never the trainer, and nothing ever written.

A folder is read as it is found: a run still training, a run stopped by a signal or a divergence, or a folder
missing some files (no samples yet, no evaluations) reads as what it holds; only a folder without config.yaml
and metrics.jsonl is refused.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import checkpoint as ck
from ..errors import GankitError
from ..yaml_io import read_yaml

EVAL_PREFIX = "eval/"
_SAMPLE = re.compile(r"epoch_(\d+)\.png$")
_STEP = re.compile(r"at step (\d+)")
_LOG_EVENT = re.compile(r"warning|health:|diverged|rolled back|error:|stopped by signal|resumed|took over", re.I)
_COMMAND = "command: "


@dataclass
class RunFolder:
    """What a run folder holds, as plain values."""

    path: Path
    config: dict
    rows: list                         # training rows of metrics.jsonl (oldest first)
    eval_rows: list                    # rows of evaluations during training (eval/* values)
    log: list                          # (time, text) of log.txt
    samples: list                      # (label, Path) of sample grids, in training order
    evals: list                        # (Path, result dict) of RUN/eval/*.json, by images seen
    best: Optional[dict] = None
    meta: Optional[dict] = None        # the latest checkpoint's JSON (no tensors)
    checkpoint: Optional[Path] = None
    notes: list = field(default_factory=list)  # what could not be read, one line each

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def keys(self, prefix: str = "") -> list:
        """Scalar keys of the training rows under ``prefix``, in first-seen order."""
        seen: dict = {}
        for r in self.rows:
            for k in r:
                if k.startswith(prefix) and k not in ("step", "images"):
                    seen.setdefault(k, None)
        return list(seen)

    def series(self, key: str, rows: Optional[list] = None) -> tuple:
        """(images seen, values) of ``key`` over the rows that hold a finite value of it."""
        xs, ys = [], []
        for r in self.rows if rows is None else rows:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                xs.append(r["images"])
                ys.append(float(v))
        return xs, ys

    def commands(self) -> list:
        """(time, command line) of every start recorded in log.txt (a resumed run has several)."""
        return [(t, text[len(_COMMAND):]) for t, text in self.log if text.startswith(_COMMAND)]

    def events(self) -> list:
        """(time, step or None, text) of the warnings, errors, stops and resumes log.txt holds."""
        out = []
        for t, text in self.log:
            if text.startswith(_COMMAND) or not _LOG_EVENT.search(text):
                continue
            m = _STEP.search(text)
            out.append((t, int(m.group(1)) if m else None, text))
        return out

    def flag_onsets(self) -> list:
        """(step, images, flag, logged rows it stayed on) for every time a ``health/*`` flag turned on."""
        flags = [k for k in self.keys("health/") if k != "health/rollback"]
        out = []
        for flag in flags:
            on = None
            for r in self.rows:
                v = r.get(flag)
                if v == 1.0 and on is None:
                    on = [r["step"], r["images"], flag, 0]
                    out.append(on)
                if v == 1.0:
                    on[3] += 1
                elif v is not None:
                    on = None
        for r in self.rows:
            if r.get("health/rollback"):
                out.append([r["step"], r["images"], "health/rollback", int(r["health/rollback"])])
        return sorted((tuple(o) for o in out), key=lambda o: o[0])


def read_run(path) -> RunFolder:
    """A run folder's files; GankitError when it is not a run folder."""
    path = Path(path)
    if not path.is_dir():
        raise GankitError(f"{path} is not a folder; give a run folder written by gankit train")
    if not (path / "config.yaml").is_file() and not (path / "metrics.jsonl").is_file():
        raise GankitError(f"{path} is not a gankit run folder (no config.yaml or metrics.jsonl)")
    notes: list = []
    config = _config(path, notes)
    rows, eval_rows = _rows(path / "metrics.jsonl", notes)
    folder = RunFolder(path, config, rows, eval_rows, _log(path / "log.txt"), _samples(path / "samples"),
                       _evals(path / "eval", notes), _json(path / "best" / "best.json"), notes=notes)
    try:
        folder.checkpoint = ck.latest_checkpoint(path / "checkpoints")
        folder.meta = ck.read_meta(folder.checkpoint) if folder.checkpoint else None
    except (OSError, ValueError, GankitError) as exc:
        notes.append(f"latest checkpoint unreadable: {exc}")
    return folder


def _config(path: Path, notes: list) -> dict:
    try:
        data = read_yaml((path / "config.yaml").read_text(), str(path / "config.yaml"))
        return data if isinstance(data, dict) else {}
    except (OSError, UnicodeDecodeError, GankitError) as exc:
        notes.append(f"config.yaml unreadable: {exc}")
        return {}


def _rows(path: Path, notes: list) -> tuple:
    rows, eval_rows, bad = [], [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return [], []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(row, dict) or not isinstance(row.get("images"), (int, float)):
            bad += 1
            continue
        row = {k: (float(v) if v in ("nan", "inf", "-inf") else v) for k, v in row.items()}
        row.setdefault("step", 0)
        (eval_rows if any(k.startswith(EVAL_PREFIX) for k in row) else rows).append(row)
    if bad:
        notes.append(f"metrics.jsonl: {bad} unreadable line(s) skipped")
    return rows, eval_rows


def _log(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        stamp = line[:19]
        if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp):
            out.append((stamp, line[20:]))
        elif out:  # a message that spans lines
            out[-1] = (out[-1][0], out[-1][1] + "\n" + line)
    return out


def _samples(folder: Path) -> list:
    if not folder.is_dir():
        return []
    grids = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _SAMPLE.search(p.name)))
    out = [(f"epoch {e}", p) for e, p in grids]
    if (folder / "final.png").is_file():
        out.append(("final", folder / "final.png"))
    return out


def _evals(folder: Path, notes: list) -> list:
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        result = _json(p)
        if not isinstance(result, dict) or not isinstance(result.get("provenance"), dict):
            notes.append(f"eval/{p.name} is not an evaluation result; skipped")
            continue
        out.append((p, result))
    return sorted(out, key=lambda e: (e[1]["provenance"].get("images_seen") or 0, e[0].name))


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
