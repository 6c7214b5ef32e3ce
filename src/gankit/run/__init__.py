"""Using a finished run: its config, a chosen checkpoint and its built parts. Never imports the trainer.

    run = load_run("runs/mnist-dcgan")            # the latest checkpoint; checkpoint=... picks another
    G = run.network()                              # the sampling network (EMA weights when the run kept them)
    D = run.network("D")                           # any part by name
    x = run.sample(64, seed=0)                     # (64, C, H, W) in [-1, 1]

Sampling, evaluation, latent tools, the kernel tools and augmentation all load runs through here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from .. import checkpoint as ck
from ..config import from_dict
from ..errors import GankitError
from ..modes import get_mode
from ..device import pick_device
from .legacy import upgrade_meta


@dataclass
class Run:
    """A run folder with one of its checkpoints loaded (tensors stay on ``device`` until a part is built)."""

    run_dir: Path
    checkpoint: Path
    cfg: object
    meta: dict
    tensors: dict = field(repr=False)
    device: torch.device = torch.device("cpu")
    weights: dict = field(default_factory=dict)  # part name -> the checkpoint prefix its weights came from
    stop_signal: Optional[int] = None  # set by gankit.train(): the signal that stopped training early, if any

    @property
    def progress(self) -> dict:
        """Where training stood at this checkpoint: images, step, epoch, ..."""
        return self.meta["progress"]

    @property
    def mode(self):
        """The run's game, built for its image shape and classes (no data is loaded)."""
        if not hasattr(self, "_mode"):
            self._mode = get_mode(self.cfg.mode)(self.cfg, tuple(self.meta["image_shape"]),
                                                  list(self.meta.get("classes", [])))
        return self._mode

    def network(self, part: Optional[str] = None, ema: bool = True, init: bool = False,
                seed: int = 0) -> torch.nn.Module:
        """Part ``part`` (default: the mode's sampling part) in eval mode on the run's device.

        ``ema``: the EMA weights when the checkpoint has them. ``init``: the architecture with fresh initial
        weights drawn from ``seed`` (the global RNG is left as it was).
        """
        part = part or self.mode.sample_part
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            specs = self.mode.parts()
        if part not in specs:
            raise GankitError(f"run {self.run_dir} has no part {part!r}; its parts are {', '.join(specs)}")
        module = specs[part].module
        prefix = f"{part}_ema" if ema and any(k.startswith(f"{part}_ema.") for k in self.tensors) else part
        if not init:
            ck.load_module(prefix, module, self.tensors)
        self.weights[part] = prefix
        return module.to(self.device).eval()

    def sample(self, n: int, seed: int = 0, labels: Optional[torch.Tensor] = None,
               truncation: Optional[float] = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [-1, 1] on the CPU, image i from latent row i of ``seed``."""
        from ..generate import generate

        return generate(self.network(), n, seed=seed, labels=labels, truncation=truncation)


def load_run(run_dir, checkpoint: Optional[str] = None, device: str = "auto") -> Run:
    """The run in ``run_dir`` at its latest checkpoint, or at ``checkpoint`` (a ckpt-*.json path)."""
    path = ck.find_run_checkpoint(run_dir, checkpoint)
    dev = pick_device(device)
    tensors, meta = ck.load_checkpoint(path, dev)
    meta = upgrade_meta(meta)
    try:
        cfg = from_dict(meta["config"])
    except KeyError:
        raise GankitError(f"checkpoint {path} holds no config; it was not written by gankit train") from None
    meta = dict(meta, checkpoint_path=str(path))
    return Run(Path(run_dir) if run_dir is not None else path.parent.parent, path, cfg, meta, tensors, dev)


def load_generator(run_dir, checkpoint: Optional[str] = None, device: str = "auto", ema: bool = True):
    """(sampling network in eval mode, checkpoint meta with ``checkpoint_path`` and ``weights``)."""
    run = load_run(run_dir, checkpoint, device)
    G = run.network(ema=ema)
    if getattr(G, "translates", False):
        raise GankitError(f"run {run.run_dir} (mode {run.cfg.mode}) translates images rather than drawing them "
                          f"from noise; use gankit translate {run.run_dir} --direction a2b --in ... --out ...")
    return G, dict(run.meta, weights=run.weights[run.mode.sample_part])  # where samples come from, for manifests


def load_discriminator(run_dir, checkpoint: Optional[str] = None, init: bool = False, seed: int = 0,
                       part: str = "D") -> tuple:
    """(D in eval mode on the CPU, run config, checkpoint meta); ``init`` keeps the architecture with fresh
    weights drawn from ``seed`` (the kernel at initialisation)."""
    run = load_run(run_dir, checkpoint, "cpu")
    return run.network(part, ema=False, init=init, seed=seed), run.cfg, run.meta


__all__ = ["Run", "load_discriminator", "load_generator", "load_run"]
