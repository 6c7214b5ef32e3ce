"""The training loop: alternating D/G updates over an in-memory dataset, counted in images seen.

The loop owns the run folder (config.yaml, metrics.jsonl, TensorBoard events,
samples/, checkpoints/) and the training state; the arithmetic lives in
`steps`. A run can be stopped (SIGINT/SIGTERM) between steps and resumed
exactly: the data order of epoch k depends only on (seed, k), and the noise
generator, global RNG, networks, EMA and optimisers are all checkpointed.
"""
from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import yaml
from torchvision.utils import make_grid, save_image

from .. import __version__
from ..config import RunConfig, diff, from_dict
from ..data import ImageData, load_dataset
from ..errors import GankitError
from ..penalties import penalty_fn
from . import checkpoint as ck
from .build import build_models, build_objective, build_optimizers
from .device import pick_device
from .ema import EMA
from .reporting import JsonlSink, ProgressSink, Reporter, TensorBoardSink
from .steps import StepContext, sample_z, train_iteration


@dataclass
class Progress:
    """Where training stands; all of it goes into every checkpoint."""

    images: int = 0        # real images consumed by D steps
    g_steps: int = 0
    d_steps: int = 0
    epoch: int = 0         # epochs completed
    batch: int = 0         # next batch index within the current epoch


class Trainer:
    """Build everything from a config, then ``run()``. ``data`` may be given to skip loading."""

    def __init__(self, cfg: RunConfig, run_dir: Path, data: Optional[ImageData] = None, resume: bool = False,
                 force: bool = False):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.device = pick_device(cfg.train.device)
        self.stop_signal: Optional[int] = None
        _prepare_run_dir(self.run_dir, cfg, resume, force)
        d = cfg.data
        self.data = data if data is not None else load_dataset(
            d.name, d.data_dir, "train", self.device, d.image_size, d.channels, d.limit or None)
        self.data.x, self.data.y = self.data.x.to(self.device), self.data.y.to(self.device)
        if len(self.data) < cfg.train.batch_size * cfg.train.n_critic:
            raise GankitError(f"dataset has {len(self.data)} images, fewer than train.batch_size x train.n_critic "
                              f"= {cfg.train.batch_size * cfg.train.n_critic}; lower the batch size")
        torch.manual_seed(cfg.train.seed)
        self.objective = build_objective(cfg)
        G, D = build_models(cfg, self.data.image_shape)
        self.G, self.D = G.to(self.device), D.to(self.device)
        opt_g, opt_d = build_optimizers(cfg, self.G, self.D, self.device)
        noise = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)
        self.ctx = StepContext(self.G, self.D, self.objective, opt_g, opt_d, penalty_fn(cfg.objective.penalty),
                               cfg.objective.penalty_weight, cfg.objective.penalty_every, cfg.objective.clip,
                               noise, cfg.model.z_dim)
        self.ema = EMA(self.G, cfg.train.ema) if cfg.train.ema > 0 else None
        grid_gen = torch.Generator(self.device).manual_seed(cfg.train.seed + 2)
        self.z_fixed = sample_z(cfg.train.grid_size, cfg.model.z_dim, self.device, grid_gen)
        self.progress = Progress()
        self.total_images = cfg.train.images or int(round(cfg.train.epochs * self.images_per_epoch))
        if resume:
            self._restore(ck.latest_checkpoint(self.run_dir / "checkpoints"))
        if self.objective.needs_lipschitz and cfg.objective.penalty != "gp" and cfg.objective.clip == 0:
            print(f"warning: objective {self.objective.name} needs a Lipschitz critic; set objective.penalty=gp "
                  f"or objective.clip=0.01", flush=True)

    @property
    def images_per_epoch(self) -> int:
        """Real images one epoch consumes: whole groups of n_critic full batches."""
        bs, n = self.cfg.train.batch_size, self.cfg.train.n_critic
        return (len(self.data) // bs) // n * n * bs

    # ---- the loop ----------------------------------------------------------------------
    def run(self) -> Progress:
        cfg, p = self.cfg.train, self.progress
        reporter = self._reporter()
        handlers = _install_signal_handlers(self)
        try:
            if p.images == 0:
                self._save_grid(reporter)
            window = (time.perf_counter(), p.images)
            while p.images < self.total_images and self.stop_signal is None:
                reals = self._next_real_batches()
                measure = (p.g_steps + 1) % cfg.log_every == 0
                stats = train_iteration(self.ctx, reals, p.d_steps, measure)
                p.images += sum(x.shape[0] for x in reals)
                p.d_steps += len(reals)
                p.g_steps += 1
                if self.ema is not None and p.images >= cfg.ema_start:
                    self.ema.update(self.G)
                if measure:
                    window = self._log(reporter, stats, window)
                if p.batch + cfg.n_critic > len(self.data) // cfg.batch_size:
                    self._end_epoch(reporter)
            self._finish(reporter)
        finally:
            _restore_signal_handlers(handlers)
            reporter.close()
        return p

    def _next_real_batches(self) -> list:
        """The next n_critic real batches of the current epoch (the loop ends epochs before they run out)."""
        p, bs, n = self.progress, self.cfg.train.batch_size, self.cfg.train.n_critic
        if not hasattr(self, "_order") or self._order[0] != p.epoch:
            self._order = (p.epoch, self.data.epoch_order(self.cfg.train.seed, p.epoch))
        idx = self._order[1][p.batch * bs:(p.batch + n) * bs]
        p.batch += n
        return list(self.data.x.index_select(0, idx).split(bs))

    def _end_epoch(self, reporter: Reporter) -> None:
        p = self.progress
        p.epoch += 1
        p.batch = 0
        self._save_grid(reporter)
        if p.epoch % self.cfg.train.checkpoint_every == 0:
            self.save_checkpoint()

    def _finish(self, reporter: Reporter) -> None:
        p = self.progress
        if self.stop_signal is not None:
            self.save_checkpoint()
            reporter.message(f"stopped by signal {self.stop_signal} at {p.images} images; checkpoint written, "
                             f"resume with: gankit train --resume {self.run_dir}")
            return
        if p.batch > 0:  # ended mid-epoch (duration in images): keep a grid of the end state too
            self._save_grid(reporter, name="final")
        last = ck.latest_checkpoint(self.run_dir / "checkpoints")
        if last is None or ck.load_checkpoint(last)[1]["progress"]["images"] != p.images:
            self.save_checkpoint()

    def _log(self, reporter: Reporter, stats: dict, window: tuple) -> tuple:
        p = self.progress
        values = {k: float(v) for k, v in stats.items()}  # the one device sync per logged step
        now = time.perf_counter()
        values["speed/images_per_s"] = (p.images - window[1]) / max(now - window[0], 1e-9)
        values["progress/epoch"] = p.epoch + p.batch * self.cfg.train.batch_size / len(self.data)
        reporter.scalars(p.g_steps, p.images, values)
        bad = [k for k in ("loss/d", "loss/g") if k in values and not math.isfinite(values[k])]
        if bad:
            last = ck.latest_checkpoint(self.run_dir / "checkpoints")
            raise GankitError(f"training diverged at step {p.g_steps} ({p.images} images): {bad[0]} = "
                              f"{values[bad[0]]}; last good checkpoint: {last or 'none'}; try a lower learning "
                              f"rate or a gradient penalty")
        return now, p.images

    # ---- outputs -----------------------------------------------------------------------
    def sample_network(self) -> torch.nn.Module:
        """The generator used for samples: the EMA copy when on."""
        return self.ema.module if self.ema is not None else self.G

    @torch.no_grad()
    def _save_grid(self, reporter: Reporter, name: Optional[str] = None) -> None:
        G = self.sample_network()
        was_training = G.training
        G.eval()
        images = G(self.z_fixed).float().add(1).div(2).clamp(0, 1).cpu()
        G.train(was_training)
        nrow = max(1, int(math.sqrt(images.shape[0])))
        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        save_image(images, folder / f"{name or f'epoch_{self.progress.epoch:03d}'}.png", nrow=nrow, padding=2)
        reporter.image("samples", make_grid(images, nrow=nrow, padding=2), self.progress.epoch)

    def _reporter(self) -> Reporter:
        sinks = [JsonlSink(self.run_dir / "metrics.jsonl")]
        if self.cfg.train.tensorboard:
            sinks.append(TensorBoardSink(self.run_dir))
        if self.cfg.train.progress:
            sinks.append(ProgressSink(self.total_images, self.progress.images))
        return Reporter(sinks)

    # ---- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        c = self.ctx
        tensors = {**ck.module_tensors("G", self.G), **ck.module_tensors("D", self.D)}
        if self.ema is not None:
            tensors.update(ck.module_tensors("G_ema", self.ema.module))
        meta = {
            "gankit_version": __version__,
            "config": self.cfg.to_dict(),
            "progress": vars(self.progress).copy(),
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optim": {"G": ck.flatten_optimizer("opt_g", c.opt_g, tensors),
                      "D": ck.flatten_optimizer("opt_d", c.opt_d, tensors)},
            "image_shape": list(self.data.image_shape),
            "classes": list(self.data.classes),
            "dataset": self.data.name,
        }
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = c.noise.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        folder = self.run_dir / "checkpoints"
        path = ck.save_checkpoint(folder, f"ckpt-{self.progress.images:012d}", tensors, meta)
        ck.prune(folder, self.cfg.train.keep_checkpoints)
        return path

    def _restore(self, path: Optional[Path]) -> None:
        if path is None:
            raise GankitError(f"no checkpoint to resume from in {self.run_dir / 'checkpoints'}")
        tensors, meta = ck.load_checkpoint(path, self.device)
        ck.load_module("G", self.G, tensors)
        ck.load_module("D", self.D, tensors)
        if self.ema is not None:
            ck.load_module("G_ema", self.ema.module, tensors)
            self.ema.updates = meta["ema_updates"]
        self.ctx.opt_g.load_state_dict(ck.unflatten_optimizer(meta["optim"]["G"], tensors))
        self.ctx.opt_d.load_state_dict(ck.unflatten_optimizer(meta["optim"]["D"], tensors))
        torch.set_rng_state(tensors["rng.torch"].cpu())
        self.ctx.noise.set_state(tensors["rng.noise"].cpu())
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        self.progress = Progress(**meta["progress"])


def _prepare_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> None:
    """Create/check the run folder before any data is loaded; write config.yaml."""
    cfg_path = run_dir / "config.yaml"
    if resume:
        if not cfg_path.is_file():
            raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
        old = from_dict(yaml.safe_load(cfg_path.read_text()))
        changes = diff(old.to_dict(), cfg.to_dict())
        if changes and not force:
            raise GankitError("config differs from the run being resumed: " + "; ".join(changes) +
                              " (pass --force to resume anyway)")
    elif (run_dir / "checkpoints").is_dir() and ck.list_checkpoints(run_dir / "checkpoints"):
        raise GankitError(f"run folder {run_dir} already holds checkpoints; use --resume {run_dir} to continue "
                          f"it or --run-dir to start a new run elsewhere")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as exc:
        raise GankitError(f"run folder {run_dir} is not writable ({exc.strerror}); choose another with --run-dir") from None
    if not resume or force:
        ck.atomic_write(cfg_path, cfg.to_yaml().encode())
        (run_dir / "metrics.jsonl").touch()


def _install_signal_handlers(trainer: Trainer) -> dict:
    """SIGINT/SIGTERM set a flag: the current step finishes, a checkpoint is written, then exit."""
    def handler(signum, frame):
        trainer.stop_signal = signum

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    return old


def _restore_signal_handlers(old: dict) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)


def train(cfg: RunConfig, run_dir: Optional[Path] = None, data: Optional[ImageData] = None,
          resume: bool = False, force: bool = False) -> Trainer:
    """Train a GAN from a resolved config; returns the finished `Trainer`."""
    trainer = Trainer(cfg, Path(run_dir) if run_dir else Path("runs") / cfg.name, data, resume, force)
    trainer.run()
    return trainer
