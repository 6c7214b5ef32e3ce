"""The training loop: alternating D/G updates over an in-memory dataset, counted in images seen.

The loop owns the run folder (config.yaml, metrics.jsonl, log.txt, TensorBoard
events, samples/, checkpoints/) and the training state; the arithmetic lives in
`steps` and the health checks in `health`. A run can be stopped (SIGINT/SIGTERM)
between steps or killed at any moment and resumed exactly: the data order of
epoch k depends only on (seed, k); the noise generator, global RNG, networks,
EMA and optimisers are all checkpointed; metrics.jsonl is cut back to the
checkpoint. On logged steps, losses, gradient norms and weights are checked for
NaN/Inf; a divergence stops the run or (train.on_nan=rollback) reloads the last
good checkpoint with lower learning rates.
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torchvision.utils import make_grid, save_image

from .. import __version__
from ..config import RunConfig, diff, from_dict, read_yaml
from ..data import ImageData, load_dataset
from ..data.clusters import CLUSTERS_FILE, clusters_bytes, kmeans_clusters, read_clusters
from ..errors import GankitError
from ..nets import eval_mode
from ..nets.coded import code_function
from ..penalties import penalty_fn
from . import checkpoint as ck
from . import health
from .build import build_models, build_objective, build_optimizers
from .device import pick_device
from .ema import EMA
from .labels import grid_labels, make_label_sampler
from .precision import load_scaler_states, resolve_speed, scaler_states
from .evaluation import PeriodicEval, is_eval_row
from .reporting import JsonlSink, LogSink, ProgressSink, Reporter, TensorBoardSink, truncate_jsonl
from .steps import StepContext, sample_z, train_iteration


@dataclass
class Progress:
    """Where training stands; all of it goes into every checkpoint."""

    images: int = 0        # real images consumed by D steps
    g_steps: int = 0
    d_steps: int = 0
    epoch: int = 0         # epochs completed
    batch: int = 0         # next batch index within the current epoch
    rollbacks: int = 0     # divergences answered by reloading a checkpoint (train.on_nan=rollback)


class Trainer:
    """Build everything from a config, then ``run()``. ``data`` may be given to skip loading."""

    def __init__(self, cfg: RunConfig, run_dir: Path, data: Optional[ImageData] = None, resume: bool = False,
                 force: bool = False):
        self.cfg, self.run_dir, self.resumed = cfg, Path(run_dir), resume
        self.device = pick_device(cfg.train.device)
        t = cfg.train
        self.speed = resolve_speed(t.precision, t.channels_last, t.compile, self.device)  # errors before any write
        self.stop_signal: Optional[int] = None
        _check_run_dir(self.run_dir, cfg, resume, force)  # refuse before anything is loaded or written
        self.objective = health.check_objective(build_objective(cfg))  # before a long data load
        self.data = self._load_data(data)
        self.evaluator = PeriodicEval(cfg, self.run_dir, self.data.name) if cfg.eval.every > 0 else None
        torch.manual_seed(cfg.train.seed)
        G, D = build_models(cfg, self.data.image_shape, len(self.data.classes))
        # cluster-coded runs: each training image's cluster (D's label for it) and the clusters' shares (G's prior)
        self.real_codes: Optional[torch.Tensor] = None
        if cfg.model.codes and cfg.model.code_kind == "clusters":
            self.real_codes, shares = self._clusters(resume)
            G.code_probs.copy_(shares)
        self.G, self.D = self.speed.prepare(G.to(self.device)), self.speed.prepare(D.to(self.device))
        opt_g, opt_d = build_optimizers(cfg, self.G, self.D, self.device)
        noise = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)
        # The steps may call compiled wrappers; checkpoints, EMA and grids use self.G/self.D (same parameters).
        self.ctx = StepContext(self.speed.for_steps(self.G), self.speed.for_steps(self.D), self.objective, opt_g,
                               opt_d, penalty_fn(cfg.objective.penalty),
                               cfg.objective.penalty_weight, cfg.objective.penalty_every, cfg.objective.clip,
                               noise, cfg.model.z_dim, autocast=self.speed.autocast,
                               scaler_d=self.speed.grad_scaler(), scaler_g=self.speed.grad_scaler())
        # conditional runs: fake labels from the noise generator; None (nothing drawn) otherwise
        self.ctx.sample_labels = make_label_sampler(cfg.train.fake_labels, self.G, self.data.y)
        self.ctx.ac_weight = cfg.objective.ac_weight
        self.ctx.g_topk = cfg.train.g_topk
        self.ctx.code_of, self.ctx.info_weight = code_function(self.G), cfg.objective.info_weight
        self.ctx.codes_as_labels = self.real_codes is not None
        self.ema = EMA(self.G, cfg.train.ema) if cfg.train.ema > 0 else None
        grid_gen = torch.Generator(self.device).manual_seed(cfg.train.seed + 2)
        self.z_fixed = sample_z(cfg.train.grid_size, cfg.model.z_dim, self.device, grid_gen)
        self.grid_inputs = (self.z_fixed, *grid_labels(self.G, cfg.train.grid_size, self.device))
        health_gen = torch.Generator(self.device).manual_seed(cfg.train.seed + 3)  # no training stream drawn
        self.health_inputs = (sample_z(health.SAMPLES, cfg.model.z_dim, self.device, health_gen),
                              *grid_labels(self.G, health.SAMPLES, self.device))
        self.progress = Progress()
        self.total_images = cfg.train.images or int(round(cfg.train.epochs * self.images_per_epoch))
        self.reference = health.Reference.of(self.data.x, self.data.y)
        self.history: deque = deque(maxlen=health.HISTORY)  # the newest rows of metrics.jsonl
        best = 1 if self.evaluator is not None and self.evaluator.key else 0  # RUN_DIR/best holds one more
        ck.check_free_space(self.run_dir, self._checkpoint_bytes(), cfg.train.keep_checkpoints + best)
        if resume:
            self._restore(ck.latest_checkpoint(self.run_dir / "checkpoints"))
        _write_run_dir(self.run_dir, cfg, resume, force)
        if self.real_codes is not None and not resume:
            ck.atomic_write(self.run_dir / CLUSTERS_FILE, clusters_bytes(self.real_codes, G.code_probs))
        self._reload_history(self.progress.images if resume else -1)
        if self.objective.needs_lipschitz and cfg.objective.penalty != "gp" and cfg.objective.clip == 0:
            print(f"warning: objective {self.objective.name} needs a Lipschitz critic; set objective.penalty=gp "
                  f"or objective.clip=0.01", flush=True)

    def _clusters(self, resume: bool) -> tuple:
        """(cluster of each training image (N,) on the device, shares (K,)): k-means for a new run, the run's
        own file on resume (the same split whatever the thread count)."""
        path, k = self.run_dir / CLUSTERS_FILE, self.cfg.model.codes
        if resume and path.is_file():
            cluster, share = read_clusters(self.run_dir)
            if cluster.shape != (len(self.data),) or share.shape != (k,):
                raise GankitError(f"{path} does not match this run's data ({len(self.data)} images) and "
                                  f"model.codes={k}; resume with the same data and config")
        else:
            print(f"clustering {len(self.data)} training images into {k} codes (PCA + k-means)", file=sys.stderr,
                  flush=True)
            cluster, share = kmeans_clusters(self.data.x, k, self.cfg.train.seed)
        return cluster.to(self.device), share

    def _load_data(self, data: Optional[ImageData]) -> ImageData:
        cfg, d = self.cfg, self.cfg.data
        if data is None:
            data = load_dataset(d.name, d.data_dir, "train", self.device, d.image_size, d.channels, d.limit or None)
        data.x, data.y = data.x.to(self.device), data.y.to(self.device)
        if len(data) < cfg.train.batch_size * cfg.train.n_critic:
            raise GankitError(f"dataset has {len(data)} images, fewer than train.batch_size x train.n_critic "
                              f"= {cfg.train.batch_size * cfg.train.n_critic}; lower the batch size")
        return data

    @property
    def images_per_epoch(self) -> int:
        """Real images one epoch consumes: whole groups of n_critic full batches."""
        bs, n = self.cfg.train.batch_size, self.cfg.train.n_critic
        return (len(self.data) // bs) // n * n * bs

    # ---- the loop ----------------------------------------------------------------------
    def run(self) -> Progress:
        try:
            reporter = self._reporter()
        except OSError as exc:
            raise GankitError(f"cannot open the logs in run folder {self.run_dir} ({exc.strerror or exc}: "
                              f"{exc.filename}); check its permissions and free space") from None
        handlers = _install_signal_handlers(self)
        finished = False
        try:
            self._start(reporter)
            while not finished:  # _finish is False when its final checkpoint found NaN and rolled back
                while self.progress.images < self.total_images and self.stop_signal is None:
                    self._iteration(reporter)
                finished = self._finish(reporter)
        except OSError as exc:  # disk full, quota, folder removed: say so; the checkpoints are intact
            last = ck.latest_checkpoint(self.run_dir / "checkpoints")
            error = GankitError(f"cannot write to the run folder ({exc.strerror or exc}: {exc.filename or self.run_dir}"
                                f"); latest complete checkpoint: {last or 'none'}; free space, then gankit train "
                                f"--resume {self.run_dir}")
            raise self._failed(error) from None
        except GankitError as exc:
            raise self._failed(exc)
        finally:
            _restore_signal_handlers(handlers)
            try:
                reporter.close()
            except OSError:
                if finished:  # otherwise the error that stopped the run is the one to report
                    raise
        return self.progress

    def _failed(self, exc: GankitError) -> GankitError:
        with contextlib.suppress(OSError):  # log.txt may sit on the full disk too
            self._log_file.message(f"error: {exc}")
        return exc

    def _start(self, reporter: Reporter) -> None:
        p = self.progress
        self._log_file.message(self.speed.describe())  # log.txt only: stderr stays for progress and problems
        if self.resumed:
            reporter.message(f"resumed {self.run_dir} at step {p.g_steps} ({p.images} images)")
        elif p.images == 0:
            self._save_grid(reporter)
            self._checkpoint(reporter)  # so a divergence always has a good state to name or roll back to
        self._window = (time.perf_counter(), p.images)

    def _iteration(self, reporter: Reporter) -> None:
        """One G step after n_critic D steps; logs, checks and ends the epoch when due."""
        cfg, p = self.cfg.train, self.progress
        if self.cfg.optim.decay != "none":
            self._set_learning_rates()
        reals, labels = self._next_real_batches()
        measure = (p.g_steps + 1) % cfg.log_every == 0
        stats = train_iteration(self.ctx, reals, p.d_steps, measure, labels)
        before = p.images
        p.images += sum(x.shape[0] for x in reals)
        p.d_steps += len(reals)
        p.g_steps += 1
        if self.ema is not None and p.images >= cfg.ema_start:
            self.ema.update(self.G)
        if measure and not self._log(reporter, stats):
            return  # rolled back: the state is the checkpoint's, with its own epoch position
        if self.evaluator is not None and self.evaluator.due(before, p.images):
            self._evaluate(reporter)
        if p.batch + cfg.n_critic > len(self.data) // cfg.batch_size:
            self._end_epoch(reporter)

    def _next_real_batches(self) -> tuple:
        """The next n_critic real batches of the current epoch (the loop ends epochs before they run out),
        and their label batches for a conditional run (None otherwise)."""
        p, bs, n = self.progress, self.cfg.train.batch_size, self.cfg.train.n_critic
        if not hasattr(self, "_order") or self._order[0] != p.epoch:
            self._order = (p.epoch, self.data.epoch_order(self.cfg.train.seed, p.epoch))
        idx = self._order[1][p.batch * bs:(p.batch + n) * bs]
        p.batch += n
        source = self.real_codes if self.real_codes is not None else self.data.y
        labels = list(source.index_select(0, idx).split(bs)) if self.ctx.labelled else None
        return list(self.data.x.index_select(0, idx).split(bs)), labels

    def _end_epoch(self, reporter: Reporter) -> None:
        p = self.progress
        p.epoch += 1
        p.batch = 0
        self._save_grid(reporter)
        if p.epoch % self.cfg.train.checkpoint_every == 0:
            self._checkpoint(reporter)

    def _finish(self, reporter: Reporter) -> bool:
        """Final grid and checkpoint; False when the checkpoint found NaN weights and rolled back."""
        p = self.progress
        last = ck.latest_checkpoint(self.run_dir / "checkpoints")
        written = last is not None and last.stem == _checkpoint_name(p.images)
        if self.stop_signal is not None:
            if not written:
                self._checkpoint(reporter)
            reporter.message(f"stopped by signal {self.stop_signal} at step {p.g_steps} ({p.images} images); "
                             f"checkpoint written, resume with: gankit train --resume {self.run_dir}")
            return True
        if p.batch > 0:  # ended mid-epoch (duration in images): keep a grid of the end state too
            self._save_grid(reporter, name="final")
        return written or self._checkpoint(reporter)

    # ---- logging, health and divergence ----------------------------------------------------
    def _log(self, reporter: Reporter, stats: dict) -> bool:
        """Report one logged step with its health flags; False when it diverged and rolled back."""
        p = self.progress
        values = {k: float(v) for k, v in {**stats, **self._weight_max()}.items()}  # the device syncs
        bad = health.first_nonfinite(values)
        now = time.perf_counter()
        values["speed/images_per_s"] = (p.images - self._window[1]) / max(now - self._window[0], 1e-9)
        values["progress/epoch"] = p.epoch + p.batch * self.cfg.train.batch_size / len(self.data)
        if self.cfg.optim.decay != "none":
            values["optim/lr_g"] = self.ctx.opt_g.param_groups[0]["lr"]
            values["optim/lr_d"] = self.ctx.opt_d.param_groups[0]["lr"]
        self._window = (now, p.images)
        if bad is not None:
            self._report(reporter, values)
            self._diverged(reporter, *bad)
            return False
        values.update(self._sample_health())
        row = {"step": p.g_steps, "images": p.images, **values}
        values.update(health.assess([*self.history, row], self.objective.domain, p.images / self.total_images))
        self._report(reporter, values)
        for text in health.messages(list(self.history)):
            reporter.message(text)
        return True

    def _evaluate(self, reporter: Reporter) -> None:
        """Score the sample network (eval.every); keep the checkpoint in RUN_DIR/best when it is the best so far."""
        p, ev = self.progress, self.evaluator
        values = ev(self.sample_network())
        reporter.scalars(p.g_steps, p.images, values)
        shown = ", ".join(f"{k[5:]}={v:.4g}" for k, v in values.items())
        if ev.improved(values):
            path = ev.keep(values, p.images, self.save_checkpoint)
            shown += f"; best {ev.key} so far, kept as {path}"
        reporter.message(f"eval at {p.images} images: {shown}")

    def _reload_history(self, images: int) -> None:
        """Cut metrics.jsonl back to ``images`` (-1: empty it) and refill the health monitors' history from
        it as an uninterrupted run holds it: training rows only, not the rows of evaluations."""
        rows = truncate_jsonl(self.run_dir / "metrics.jsonl", images)
        self.history.clear()
        self.history.extend(r for r in rows if not is_eval_row(r))

    def _report(self, reporter: Reporter, values: dict) -> None:
        p = self.progress
        reporter.scalars(p.g_steps, p.images, values)
        self.history.append({"step": p.g_steps, "images": p.images, **values})

    @torch.no_grad()
    def _weight_max(self) -> dict:
        """max |w| over each network's parameters (NaN if any is NaN): one foreach kernel per network."""
        return {f"weight_max/{n}": torch.stack(torch._foreach_norm(list(m.parameters()), math.inf)).max()
                for n, m in (("d", self.D), ("g", self.G))}

    @torch.no_grad()
    def _sample_health(self) -> dict:
        """Statistics of G's fixed-noise samples (eval mode: no batch-norm statistics change, no RNG drawn)."""
        with eval_mode(self.G):
            x = self.G(*self.health_inputs).float()
        return health.sample_stats(x, self.reference)

    def _checkpoint(self, reporter: Reporter) -> bool:
        """Save a checkpoint unless a weight is NaN/Inf (then handle the divergence; False)."""
        bad = health.first_nonfinite({k: float(v) for k, v in self._weight_max().items()})
        if bad is not None:
            self._diverged(reporter, *bad)
            return False
        self.save_checkpoint()
        return True

    def _diverged(self, reporter: Reporter, key: str, value: float) -> None:
        """Stop naming the last good checkpoint, or (train.on_nan=rollback) reload it at lower learning rates."""
        t, p = self.cfg.train, self.progress
        last = ck.latest_checkpoint(self.run_dir / "checkpoints")
        where = f"training diverged at step {p.g_steps} ({p.images} images): {key} = {value}"
        if t.on_nan != "rollback" or last is None or p.rollbacks >= t.max_rollbacks:
            hint = f" after {p.rollbacks} rollbacks" if t.on_nan == "rollback" else ""
            advice = ", or --set train.on_nan=rollback" if t.on_nan == "stop" else ""
            raise GankitError(f"{where}{hint}; last good checkpoint: {last or 'none'}; try a lower learning rate "
                              f"or a gradient penalty{advice}")
        rollbacks = p.rollbacks + 1
        self._restore(last)
        p.rollbacks = rollbacks
        lr_g, lr_d = self._set_learning_rates()
        self._reload_history(p.images)
        self._report(reporter, {"health/rollback": float(rollbacks), "optim/lr_g": lr_g, "optim/lr_d": lr_d})
        self._window = (time.perf_counter(), p.images)
        reporter.message(f"{where}; rolled back to {last.name} (step {p.g_steps}, {p.images} images) with learning "
                         f"rates x{t.rollback_lr_factor}: lr_g={lr_g:.3g}, lr_d={lr_d:.3g} (rollback {rollbacks} "
                         f"of {t.max_rollbacks})")

    def _set_learning_rates(self) -> tuple:
        """lr = configured lr * rollback_lr_factor ** rollbacks * decay(progress), computed afresh from the
        progress so that resume stays exact."""
        scale = self.cfg.train.rollback_lr_factor ** self.progress.rollbacks
        o = self.cfg.optim
        if o.decay == "linear":  # 1 until decay_start of the run, then linearly to 0 at its end
            done = self.progress.images / self.total_images
            scale *= min(1.0, (1.0 - done) / (1.0 - o.decay_start))
        lrs = (self.cfg.optim.lr_g * scale, self.cfg.optim.lr_d * scale)
        for opt, lr in zip((self.ctx.opt_g, self.ctx.opt_d), lrs):
            for group in opt.param_groups:
                group["lr"] = lr
        return lrs

    # ---- outputs -----------------------------------------------------------------------
    def sample_network(self) -> torch.nn.Module:
        """The generator used for samples: the EMA copy when on."""
        return self.ema.module if self.ema is not None else self.G

    @torch.no_grad()
    def _save_grid(self, reporter: Reporter, name: Optional[str] = None) -> None:
        with eval_mode(self.sample_network()) as G:
            images = G(*self.grid_inputs).float().add(1).div(2).clamp(0, 1).cpu()
        nrow = max(1, int(math.sqrt(images.shape[0])))
        path = self.run_dir / "samples" / f"{name or f'epoch_{self.progress.epoch:03d}'}.png"
        path.parent.mkdir(exist_ok=True)
        try:
            save_image(images, path, nrow=nrow, padding=2)
        except OSError as exc:  # PIL's errors name no file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        reporter.image("samples", make_grid(images, nrow=nrow, padding=2), self.progress.epoch)

    def _reporter(self) -> Reporter:
        self._log_file = LogSink(self.run_dir / "log.txt")
        sinks = [JsonlSink(self.run_dir / "metrics.jsonl"), self._log_file]
        if self.cfg.train.tensorboard:
            # a resumed run hides the events a killed run wrote after its checkpoint
            sinks.append(TensorBoardSink(self.run_dir, self.progress.images + 1 if self.resumed else None))
        if self.cfg.train.progress:
            sinks.append(ProgressSink(self.total_images, self.progress.images))
        return Reporter(sinks)

    # ---- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self, folder: Optional[Path] = None) -> Path:
        """A checkpoint in RUN_DIR/checkpoints (keeping the newest train.keep_checkpoints) or in ``folder``."""
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
            "speed": self.speed.to_dict(),
            "grad_scalers": scaler_states(self._scalers()),
        }
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = c.noise.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if folder is not None:
            return ck.save_checkpoint(folder, _checkpoint_name(self.progress.images), tensors, meta)
        folder = self.run_dir / "checkpoints"
        path = ck.save_checkpoint(folder, _checkpoint_name(self.progress.images), tensors, meta)
        ck.prune(folder, self.cfg.train.keep_checkpoints)
        return path

    def _scalers(self) -> dict:
        return {"D": self.ctx.scaler_d, "G": self.ctx.scaler_g}

    def _checkpoint_bytes(self) -> int:
        """Approximate size of one checkpoint: G, D, EMA-G and Adam's two moments per parameter."""
        params = _nbytes(self.G.parameters()) + _nbytes(self.D.parameters())
        states = _nbytes(self.G.state_dict().values()) * (2 if self.ema is not None else 1)
        return states + _nbytes(self.D.state_dict().values()) + 2 * params

    def _restore(self, path: Optional[Path]) -> None:
        if path is None:
            raise GankitError(f"no checkpoint to resume from in {self.run_dir / 'checkpoints'}")
        tensors, meta = ck.load_checkpoint(path, self.device)
        ck.load_module("G", self.G, tensors)
        ck.load_module("D", self.D, tensors)
        try:
            if self.ema is not None:
                ck.load_module("G_ema", self.ema.module, tensors)
                self.ema.updates = meta["ema_updates"]
            self.ctx.opt_g.load_state_dict(ck.unflatten_optimizer(meta["optim"]["G"], tensors))
            self.ctx.opt_d.load_state_dict(ck.unflatten_optimizer(meta["optim"]["D"], tensors))
            load_scaler_states(self._scalers(), meta.get("grad_scalers"))
            torch.set_rng_state(tensors["rng.torch"].cpu())
            self.ctx.noise.set_state(tensors["rng.noise"].cpu())
            if "rng.cuda" in tensors and self.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
            progress = Progress(**meta["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise GankitError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); resume from another one") from None
        vars(self.progress).update(vars(progress))  # in place: callers may hold the object
        self._set_learning_rates()


def _checkpoint_name(images: int) -> str:
    return f"ckpt-{images:012d}"


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _check_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> None:
    """Refuse a resume with a changed config, a new run over checkpoints, or an unusable folder."""
    try:
        if resume:
            _check_resumable(run_dir, cfg, force)
        elif ck.list_checkpoints(run_dir / "checkpoints"):
            raise GankitError(f"run folder {run_dir} already holds checkpoints; use --resume {run_dir} to "
                              f"continue it or --run-dir to start a new run elsewhere")
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise GankitError(f"run folder {run_dir} is not writable ({getattr(exc, 'strerror', None) or exc}); "
                          f"choose another with --run-dir") from None


def _check_resumable(run_dir: Path, cfg: RunConfig, force: bool) -> None:
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise GankitError(f"{run_dir} is not a gankit run folder (no config.yaml); nothing to resume")
    old = from_dict(read_yaml(cfg_path.read_text(errors="replace"), str(cfg_path)))
    changes = diff(old.to_dict(), cfg.to_dict())
    if changes and not force:
        raise GankitError("config differs from the run being resumed: " + "; ".join(changes) +
                          " (pass --force to resume anyway)")


def _write_run_dir(run_dir: Path, cfg: RunConfig, resume: bool, force: bool) -> None:
    """config.yaml (new run, or a forced resume), an empty metrics.jsonl for a new run, and no stale files.

    A kill between committing a checkpoint and pruning old ones leaves one too many: prune again here.
    """
    if not resume or force:
        ck.atomic_write(run_dir / "config.yaml", cfg.to_yaml().encode())
    if not resume:
        ck.atomic_write(run_dir / "metrics.jsonl", b"")
    ck.clean_stale(run_dir / "checkpoints")
    if (run_dir / "checkpoints").is_dir():
        ck.prune(run_dir / "checkpoints", cfg.train.keep_checkpoints)


def _install_signal_handlers(trainer: Trainer) -> dict:
    """SIGINT/SIGTERM set a flag: the current step finishes, a checkpoint is written, then exit.

    A second signal stops at once (KeyboardInterrupt): checkpoints are atomic, so that is safe too.
    """
    def handler(signum, frame):
        if trainer.stop_signal is not None:
            raise KeyboardInterrupt
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
