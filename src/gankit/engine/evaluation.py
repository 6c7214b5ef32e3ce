"""Scoring the generator while it trains (``eval.every``), and keeping the best checkpoint.

Every ``eval.every`` real images the sample network draws ``eval.n`` images from
the same latent codes (``eval.seed``, drawn on the CPU) and `gankit.metrics`
scores them against the dataset's test split. The headline values are logged as
``eval/<key>`` to metrics.jsonl and TensorBoard. When ``eval.best`` names one of
them, a checkpoint that beats every earlier evaluation is written to
``RUN_DIR/best/`` with ``best.json`` (key, value, images seen), so
``gankit sample RUN_DIR --checkpoint RUN_DIR/best/ckpt-....json`` uses it.

An evaluation draws no number from the training random streams (the global RNG
state is restored around it), so a run with evaluation trains exactly as one without.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config import RunConfig
from ..errors import GankitError
from ..nets import eval_mode
from .. import checkpoint as ck
from ..atomic import atomic_write

BEST = "best"


class PeriodicEval:
    """Built at trainer start, so that an unknown metric or a dataset without an extractor fails before training."""

    def __init__(self, cfg: RunConfig, run_dir: Path, dataset: str):
        from ..metrics.evaluate import Scorer  # the metrics stack is loaded only for runs that use it

        e = cfg.eval
        self.every, self.n, self.seed, self.key = e.every, e.n, e.seed, e.best
        names = [m.strip() for m in e.metrics.split(",") if m.strip()]
        if not names:
            raise GankitError("eval.metrics is empty; name at least one metric, e.g. --set eval.metrics=fid,cs")
        with torch.random.fork_rng(devices=[]):  # training the classifier on first need draws numbers
            self.scorer = Scorer(dataset, cfg.data.data_dir, names, progress=cfg.train.progress)
        better = {k: b for m in self.scorer.metrics for k, b in zip(m.keys, m.better)}  # headline key -> sense
        if self.key and self.key not in better:
            raise GankitError(f"eval.best={self.key!r} is not a headline value of eval.metrics={e.metrics!r}; "
                              f"choose one of {', '.join(better)} or set eval.best=''")
        self.heads, self.better = list(better), better.get(self.key)
        self.folder = Path(run_dir) / BEST
        self.best = self._read_best()

    def due(self, before: int, after: int) -> bool:
        """True when the images seen crossed a multiple of ``every`` in the last step."""
        return self.every > 0 and after // self.every > before // self.every

    @torch.no_grad()
    def __call__(self, network: torch.nn.Module) -> dict:
        """{'eval/<key>': value} for the samples of the sampling ``network``, put back in the mode it was in."""
        from ..generate import generate

        with eval_mode(network), torch.random.fork_rng(devices=[]):
            values = self.scorer.score(generate(network, self.n, seed=self.seed), seed=self.seed, n_boot=0)
        return {f"eval/{k}": float(values[k]) for k in self.heads}

    def improved(self, values: dict) -> bool:
        """Whether ``values`` beats the best so far by ``eval.best`` (always False without one)."""
        if not self.key:
            return False
        v = values[f"eval/{self.key}"]
        if self.best is None:
            return v == v  # not NaN
        b = self.best["value"]
        return {"lower": v < b, "higher": v > b, "one": abs(v - 1) < abs(b - 1)}[self.better]

    def keep(self, values: dict, images: int, save: Callable[[Path], Path]) -> Path:
        """Write the best checkpoint with ``save(folder)``, then best.json; the older best is removed."""
        path = save(self.folder)
        ck.prune(self.folder, 1)
        self.best = {"key": self.key, "value": values[f"eval/{self.key}"], "images": images,
                     "checkpoint": path.name}
        atomic_write(self.folder / "best.json", json.dumps(self.best, indent=1).encode())
        return path

    def _read_best(self) -> Optional[dict]:
        """The best so far of a resumed run (only if it was kept by the same key)."""
        try:
            best = json.loads((self.folder / "best.json").read_text())
        except (OSError, ValueError):
            return None
        return best if isinstance(best, dict) and best.get("key") == self.key else None


def is_eval_row(row: dict) -> bool:
    """metrics.jsonl rows of evaluations hold only eval/* values besides step and images."""
    return any(k.startswith("eval/") for k in row)
