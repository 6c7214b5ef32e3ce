"""The Python API for notebooks and scripts; the ``gankit`` command calls exactly these functions.

    import gankit

    run = gankit.train("digits-dcgan", ["train.epochs=2"], run_dir="runs/digits")   # a finished Run
    x = run.sample(16, seed=0)                                                      # (16, 1, 28, 28) in [-1, 1]
    run = gankit.load_run("runs/digits")                                            # later, elsewhere
    scores = gankit.evaluate(run, n=2000, metrics=("fid", "cs"))

Every function takes plain values and returns plain objects: a `gankit.run.Run`, a tensor, a dict.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from .config import RunConfig, resolve
from .errors import GankitError
from .run import Run, load_run


def resolve_config(source: Union[str, RunConfig, None] = None, overrides: Sequence[str] = (),
                   **settings) -> RunConfig:
    """A resolved config: defaults <- preset or YAML ``source`` <- ``overrides`` ('key=value') <- ``settings``
    ({'train.epochs': 3}; None values are skipped). A `RunConfig` given as ``source`` is taken as it is."""
    if isinstance(overrides, str):
        raise GankitError(f"overrides must be a list of 'key=value' strings, got the string {overrides!r}")
    if isinstance(source, RunConfig):
        if overrides or any(v is not None for v in settings.values()):
            raise GankitError("give overrides with a preset or YAML name, not with a RunConfig object")
        return source
    return resolve(source, tuple(overrides), **settings)


def train(source: Union[str, RunConfig] = "digits-dcgan", overrides: Sequence[str] = (), *,
          run_dir: Union[str, Path, None] = None, resume: bool = False, force: bool = False, data=None,
          hooks: tuple = (), sinks: tuple = (), lock=None, **settings) -> Run:
    """Train from a preset, a YAML file or a `RunConfig` and return the finished run (its last checkpoint).

    ``run_dir`` defaults to runs/<name>. ``resume=True`` continues the run in ``run_dir`` (its config.yaml is
    the source when ``source`` is None). ``data`` (a `gankit.data.ImageData`) skips loading; ``hooks`` and
    ``sinks`` observe or schedule the run (`gankit.engine.hooks`); ``lock`` is a `gankit.lock.RunLock` on
    ``run_dir`` taken already. ``train.report`` writes RUN_DIR/report.html (`gankit.report`). The returned
    run's ``stop_signal`` is the signal that stopped training early, or None. Launched by torchrun on several
    processes (docs/distributed.md), rank 0 returns the run and the other ranks None.
    """
    from .engine import Trainer

    if resume and source is None:
        if run_dir is None:
            raise GankitError("resume=True needs the run_dir of the run to continue")
        source = str(Path(run_dir) / "config.yaml")
    cfg = resolve_config(source, overrides, **settings)
    folder = Path(run_dir) if run_dir is not None else Path("runs") / cfg.name
    if cfg.train.report != "none":  # RUN_DIR/report.html at the end (and after evaluations); never fatal
        from .report.sink import ReportSink

        sinks = (*sinks, ReportSink(folder, cfg.train.report))
    trainer = Trainer(cfg, folder, data, resume, force, hooks, sinks, lock)
    trainer.run()
    if not trainer.dist.is_main:  # torchrun: rank 0 wrote the run; the other ranks return None
        return None
    run = load_run(folder, device=str(trainer.device))
    run.stop_signal = trainer.stop_signal
    return run


def sample(run: Union[Run, str, Path], n: int = 64, seed: int = 0, labels: Optional[torch.Tensor] = None,
           truncation: Optional[float] = None) -> torch.Tensor:
    """``n`` images (n, C, H, W) in [-1, 1] from a run (or a run folder), image i from latent row i of ``seed``."""
    return _as_run(run).sample(n, seed=seed, labels=labels, truncation=truncation)


def evaluate(target: Union[Run, str, Path, np.ndarray, torch.Tensor], dataset: Optional[str] = None,
             metrics: Sequence[str] = ("fid", "kid", "pr", "dc", "cs", "modes", "memo"), n: int = 10000,
             seed: int = 0, data_dir: Optional[str] = None, checkpoint: Optional[str] = None, **options) -> dict:
    """Scores of a run (``n`` samples) or of images against a dataset's test split, with floor and provenance.

    A run (a `Run` or its folder; ``checkpoint`` picks one of a folder's checkpoints) is sampled with ``seed``
    and its result is also written to RUN_DIR/eval/. Images are an array (N, H, W[, C]) or (N, C, H, W) as
    uint8, float in [0, 1] or float in [-1, 1] (as `sample` returns), checked and converted exactly; they
    need ``dataset``. ``options`` go to `gankit.metrics.evaluate.evaluate_images` (extractor,
    inception_weights, floor, n_boot, progress).
    """
    from .metrics.evaluate import evaluate_images, evaluate_run, write_result

    metrics = tuple(metrics)
    if isinstance(target, (np.ndarray, torch.Tensor)):
        if not dataset:
            raise GankitError("evaluating images needs dataset=..., the dataset they imitate (e.g. 'mnist')")
        images = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else target
        return evaluate_images(images, dataset, data_dir, None, metrics, **options)  # checks the encoding
    if isinstance(target, Run):
        target, checkpoint = target.run_dir, str(target.checkpoint)
    result = evaluate_run(target, n, seed, data_dir, checkpoint, metrics, **options)
    result["provenance"]["written_to"] = str(write_result(Path(target), result))
    return result


def _as_run(run) -> Run:
    return run if isinstance(run, Run) else load_run(run)
