"""The run engine: any game (`gankit.modes`) over named parts, counted in images seen.

The engine owns the run folder (config.yaml, metrics.jsonl, log.txt, TensorBoard events, samples/,
checkpoints/) and the training state; the game lives in its mode, the arithmetic of a step in `stepper`.
It holds no part names and no mode names: checkpoints, EMA, learning rates, weight and gradient checks,
health warnings, NaN stop and rollback, signals and periodic evaluation all iterate over the mode's parts.

A run can be stopped (SIGINT/SIGTERM) between iterations or killed at any moment and resumed exactly: the
data order of epoch k depends only on (seed, k); the noise generator, global RNG, parts, EMA copies and
optimisers are all checkpointed; metrics.jsonl is cut back to the checkpoint. On logged steps, losses,
gradient norms and weights are checked for NaN/Inf; a divergence stops the run or (train.on_nan=rollback)
reloads the last good checkpoint with lower learning rates. Hooks (`gankit.engine.hooks`) scale learning
rates and act after each iteration; extra sinks receive everything the run reports.
"""
from __future__ import annotations

import contextlib
import time
from collections import deque
from pathlib import Path
from typing import Optional

import torch

from .._command import command_line
from .._version import __version__
from .. import checkpoint as ck
from .. import health
from ..config import RunConfig
from ..data import ImageData
from ..errors import GankitError, memory_guard
from ..lock import RunLock, lock_run_dir
from ..modes import Context, get_mode
from ..nets import eval_mode
from ..run.legacy import upgrade_meta
from . import distributed, rundir
from .evaluation import PeriodicEval, is_eval_row
from .hooks import config_hooks
from .parts import Parts
from .precision import load_scaler_states, resolve_speed, scaler_states
from .progress import Progress
from ..atomic import write_grid
from .reporting import Reporter, run_sinks, truncate_jsonl
from .stepper import Stepper


class Trainer:
    """Build everything from a config, then ``run()``. ``data`` may be given to skip loading; ``hooks`` and
    ``sinks`` add schedules and observers to those the config asks for; ``lock`` is the run folder's lock
    when the caller took it already (the command line does, before loading torch)."""

    def __init__(self, cfg: RunConfig, run_dir: Path, data: Optional[ImageData] = None, resume: bool = False,
                 force: bool = False, hooks: tuple = (), sinks: tuple = (), lock: Optional[RunLock] = None):
        self.cfg, self.run_dir, self.resumed = cfg, Path(run_dir), resume
        self.dist = distributed.setup(cfg)  # torchrun's process group; one process: nothing changes
        self.device = self.dist.device
        t = cfg.train
        self.speed = resolve_speed(t.precision, t.channels_last, t.compile, self.device)  # errors before any write
        self.stop_signal: Optional[int] = None
        self.extra_sinks = list(sinks)
        mode_cls = get_mode(cfg.mode)
        self.lock = self.dist.lock(lambda: lock or lock_run_dir(self.run_dir, resume))  # first: a 2nd writer learns who
        try:
            self.run_id = self.dist.on_main(lambda: rundir.check_run_dir(self.run_dir, cfg, resume, force))
            mode_cls.validate(cfg)  # before a long data load
            self._build(mode_cls, data, resume, force, hooks)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, mode_cls, data, resume: bool, force: bool, hooks: tuple) -> None:
        cfg = self.cfg
        if self.lock.stale:
            print(f"took over the lock of run folder {self.run_dir} from process {self.lock.stale}, which is no "
                  f"longer running", flush=True)
        self.data = self._load_data(mode_cls, data)
        self.evaluator = self.dist.on_main(lambda: PeriodicEval(cfg, self.run_dir, self.data.name), False) \
            if cfg.eval.every > 0 else None
        torch.manual_seed(cfg.train.seed)
        self.mode = mode_cls(cfg, self.data.image_shape, self.data.classes)
        with memory_guard(f"the networks of this config (mode {cfg.mode}, model.arch {cfg.model.arch})",
                          "lower model.z_dim, model.width_g or model.width_d"):
            specs = self.mode.parts()
        self.mode.setup(self.data, self.run_dir, resume, specs)
        self.parts = Parts(specs, self.speed, self.device, self.dist)
        self.dist.seed_rank(cfg.train.seed)
        self.noise = torch.Generator(self.device).manual_seed(cfg.train.seed + 1)  # the same on every rank
        ctx = Context(self.parts.step_modules, self.parts.modules, self.noise, self.device, self.speed.autocast,
                      self.dist.rank, self.dist.world)
        phases = self.mode.phases(ctx)
        self.stepper = Stepper(self.parts, phases, {p.name: self.speed.grad_scaler() for p in phases})
        self.source = self.dist.split(self.mode.batches(self.data, cfg.train.seed))
        self.hooks = [*config_hooks(cfg), *self.mode.hooks(), *hooks]
        self.grid_inputs = self.mode.fixed_inputs(cfg.train.grid_size, self.device,
                                                  torch.Generator(self.device).manual_seed(cfg.train.seed + 2))
        self.health_inputs = self.mode.fixed_inputs(health.SAMPLES, self.device,  # no training stream drawn
                                                    torch.Generator(self.device).manual_seed(cfg.train.seed + 3))
        self.progress = Progress()
        self.total_images = cfg.train.images or getattr(self.source, "total_images", 0) or \
            int(round(cfg.train.epochs * self.source.images_per_epoch))  # a source may know its run's length
        if self.total_images < 1:
            raise GankitError(f"train.epochs={cfg.train.epochs} is less than one image of the "
                              f"{self.source.images_per_epoch:,} an epoch holds; train for longer")
        self.mode.health_setup(self.data)
        self.history: deque = deque(maxlen=health.HISTORY)  # the newest rows of metrics.jsonl
        best = 1 if self.evaluator is not None and self.evaluator.key else 0  # RUN_DIR/best holds one more
        if resume:
            self._restore(self.dist.on_main(lambda: ck.latest_checkpoint(self.run_dir / "checkpoints")))
        self.dist.on_main(lambda: self._write_run_dir(resume, force, best))

    def _write_run_dir(self, resume: bool, force: bool, best: int) -> None:
        ck.check_free_space(self.run_dir, self.parts.nbytes(), self.cfg.train.keep_checkpoints + best)
        rundir.write_run_dir(self.run_dir, self.cfg, resume, force, self.run_id)
        if not resume:
            self.mode.write_files(self.run_dir)
        self._reload_history(self.progress.images if resume else -1)
        for text in self.mode.warnings():
            print(text, flush=True)

    def _load_data(self, mode_cls, data: Optional[ImageData]) -> ImageData:
        data = mode_cls.load_data(self.cfg, self.device) if data is None else data
        data.x, data.y = data.x.to(self.device), data.y.to(self.device)
        return data

    def close(self) -> None:  # release the run folder without training (`run` releases it when it ends)
        self.lock.release()

    # ---- the loop ----------------------------------------------------------------------
    def run(self) -> Progress:
        try:
            try:
                reporter = self._reporter()
            except OSError as exc:
                raise GankitError(f"cannot open the logs in run folder {self.run_dir} ({exc.strerror or exc}: "
                                  f"{exc.filename}); check its permissions and free space") from None
            self._run(reporter)
        finally:
            self.lock.release()
            getattr(self.data, "close", lambda: None)()  # a streamed dataset stops its loader's workers
            self.dist.close()
        return self.progress

    def _run(self, reporter: Reporter) -> None:
        handlers = rundir.install_signal_handlers(self)
        finished = False
        try:
            self._start(reporter)
            while not finished:  # _finish is False when its final checkpoint found NaN and rolled back
                while self.progress.images < self.total_images and self.dist.agree_stop(self) is None:
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
        except distributed.FAILURES as exc:  # a collective failed: another rank died or stopped answering
            raise self._failed(self.dist.lost(exc, ck.latest_checkpoint(self.run_dir / "checkpoints"))) from None
        finally:
            rundir.restore_signal_handlers(handlers)
            try:
                reporter.close()
            except OSError:
                if finished:  # otherwise the error that stopped the run is the one to report
                    raise

    def _failed(self, exc: GankitError) -> GankitError:
        with contextlib.suppress(OSError):  # log.txt may sit on the full disk too
            self._log_file.message(f"error: {exc}")
        return exc

    def _start(self, reporter: Reporter) -> None:
        p = self.progress
        self._log_file.message(f"{self.dist.describe(self.cfg.train.batch_size)}; {self.speed.describe()}")  # log only
        self._log_file.message(f"command: {command_line()}")  # for gankit report
        if self.resumed:
            reporter.message(f"resumed {self.run_dir} at step {p.step} ({p.images} images)")
        elif p.images == 0:
            self._save_grid(reporter)
            self._checkpoint(reporter)  # so a divergence always has a good state to name or roll back to
        self._window = (time.perf_counter(), p.images)

    def _iteration(self, reporter: Reporter) -> None:
        """One iteration of the mode's phases; logs, checks and ends the epoch when due."""
        t, p = self.cfg.train, self.progress
        for hook in self.hooks:
            hook.before_iteration(self)
        lrs = self._set_learning_rates() if self.hooks else {}
        batch = self.source.take(p.epoch, p.batch)
        measure = (p.step + 1) % t.log_every == 0
        stats = self.stepper.iteration(batch, p.step, p.phase_steps, measure)
        before = p.images
        p.images += batch.images * self.dist.world  # every process holds an equal slice of the global batch
        p.batch += 1
        p.step += 1
        self.parts.update_emas(p.images)
        for hook in self.hooks:
            hook.after_iteration(self)
        if measure and not self._log(reporter, {**self.dist.mean(stats), **lrs}):
            return  # rolled back: the state is the checkpoint's, with its own epoch position
        if self.cfg.eval.every > 0 and p.images // self.cfg.eval.every > before // self.cfg.eval.every:
            self._evaluate(reporter)
        if p.batch >= self.source.iterations(p.epoch):
            self._end_epoch(reporter)

    def _end_epoch(self, reporter: Reporter) -> None:
        p = self.progress
        p.epoch += 1
        p.batch = 0
        self._save_grid(reporter)
        if p.epoch % self.cfg.train.checkpoint_every == 0:
            self._checkpoint(reporter)

    def _finish(self, reporter: Reporter) -> bool:
        """Final grid and checkpoint; False when the checkpoint found NaN weights and rolled back."""
        p, self.stop_signal = self.progress, self.dist.agree_stop(self)  # every rank takes the same path
        last = self.dist.on_main(lambda: ck.latest_checkpoint(self.run_dir / "checkpoints"))
        written = last is not None and last.stem == ck.checkpoint_name(p.images)
        if self.stop_signal is not None:
            if not written:
                self._checkpoint(reporter)
            reporter.message(f"stopped by signal {self.stop_signal} at step {p.step} ({p.images} images); "
                             f"checkpoint written, resume with: gankit train --resume {self.run_dir}")
            return True
        for hook in self.hooks:
            hook.finished(self)
        if p.batch > 0:  # ended mid-epoch (duration in images): keep a grid of the end state too
            self._save_grid(reporter, name="final")
        return written or self._checkpoint(reporter)

    # ---- logging, health and divergence ----------------------------------------------------
    def _log(self, reporter: Reporter, stats: dict) -> bool:
        """Report one logged step with its health flags; False when it diverged and rolled back."""
        p = self.progress
        values = {k: float(v) for k, v in {**stats, **self.parts.weight_max()}.items()}  # the device syncs
        bad = health.first_nonfinite(values)
        now = time.perf_counter()
        values["speed/images_per_s"] = (p.images - self._window[1]) / max(now - self._window[0], 1e-9)
        values["progress/epoch"] = p.epoch + self.source.epoch_fraction(p.batch, p.epoch)
        self._window = (now, p.images)
        if bad is not None:
            self._report(reporter, values)
            self._diverged(reporter, *bad)
            return False
        if not self.dist.is_main:  # rank 0 reports; the others only needed the NaN check, which all ranks share
            return True
        with torch.no_grad():
            values.update(self.mode.health_stats(self.parts.modules, self.health_inputs))
        row = {"step": p.step, "images": p.images, **values}
        values.update(self.mode.assess([*self.history, row], p.images / self.total_images))
        self._report(reporter, values)
        for text in self.mode.messages(list(self.history)):
            reporter.message(text)
        return True

    def _evaluate(self, reporter: Reporter) -> None:
        """Score the sample network (eval.every); keep the checkpoint in RUN_DIR/best when it is the best so far."""
        p, ev = self.progress, self.evaluator
        shared = self.dist.checkpoint_state(self.parts)  # every rank: the best checkpoint may be written below
        if not self.dist.is_main:
            return
        values = ev(self.sample_network())
        reporter.scalars(p.step, p.images, values)
        shown = ", ".join(f"{k[5:]}={v:.4g}" for k, v in values.items())
        if ev.improved(values):
            path = ev.keep(values, p.images, lambda folder: self.save_checkpoint(folder, shared))
            shown += f"; best {ev.key} so far, kept as {path}"
        reporter.message(f"eval at {p.images} images: {shown}")

    def _reload_history(self, images: int) -> None:
        """Cut metrics.jsonl back to ``images`` (-1: empty it) and refill the health monitors' history from
        it as an uninterrupted run holds it: training rows only, not the rows of evaluations."""
        rows = truncate_jsonl(self.run_dir / "metrics.jsonl", images) if self.dist.is_main else []
        self.history.clear()
        self.history.extend(r for r in rows if not is_eval_row(r))

    def _report(self, reporter: Reporter, values: dict) -> None:
        reporter.scalars(self.progress.step, self.progress.images, values)
        self.history.append({"step": self.progress.step, "images": self.progress.images, **values})

    def _checkpoint(self, reporter: Reporter) -> bool:
        """Save a checkpoint unless a weight is NaN/Inf (then handle the divergence; False)."""
        bad = health.first_nonfinite({k: float(v) for k, v in self.parts.weight_max().items()})
        if bad is not None:
            self._diverged(reporter, *bad)
            return False
        self.save_checkpoint()
        return True

    def _diverged(self, reporter: Reporter, key: str, value: float) -> None:
        """Stop naming the last good checkpoint, or (train.on_nan=rollback) reload it at lower learning rates."""
        t, p = self.cfg.train, self.progress
        last = self.dist.on_main(lambda: ck.latest_checkpoint(self.run_dir / "checkpoints"))
        where = f"training diverged at step {p.step} ({p.images} images): {key} = {value}"
        if t.on_nan != "rollback" or last is None or p.rollbacks >= t.max_rollbacks:
            hint = f" after {p.rollbacks} rollbacks" if t.on_nan == "rollback" else ""
            advice = ", or --set train.on_nan=rollback" if t.on_nan == "stop" else ""
            raise GankitError(f"{where}{hint}; last good checkpoint: {last or 'none'}; try a lower learning rate "
                              f"or a gradient penalty{advice}")
        rollbacks = p.rollbacks + 1
        self._restore(last)
        p.rollbacks = rollbacks
        lrs = self._set_learning_rates()
        self._reload_history(p.images)
        self._report(reporter, {"health/rollback": float(rollbacks), **lrs})
        self._window = (time.perf_counter(), p.images)
        shown = ", ".join(f"{k[6:]}={v:.3g}" for k, v in lrs.items())
        reporter.message(f"{where}; rolled back to {last.name} (step {p.step}, {p.images} images) with learning "
                         f"rates x{t.rollback_lr_factor}: {shown} (rollback {rollbacks} of {t.max_rollbacks})")

    def _set_learning_rates(self) -> dict:
        """lr = configured lr * rollback_lr_factor ** rollbacks * every hook's scale, computed afresh from the
        progress so that resume stays exact."""
        scale = self.cfg.train.rollback_lr_factor ** self.progress.rollbacks
        for hook in self.hooks:
            scale *= hook.lr_scale(self)
        return self.parts.set_learning_rates(scale)

    # ---- outputs -----------------------------------------------------------------------
    def sample_network(self) -> torch.nn.Module:
        """The network that draws images: the mode's sample part, its EMA copy when on."""
        return self.parts.sampling()[self.mode.sample_part]

    @torch.no_grad()
    def _save_grid(self, reporter: Reporter, name: Optional[str] = None) -> None:
        if not self.dist.average_buffers(self.parts):  # every rank averages; rank 0 draws and writes
            return
        nets = self.parts.sampling()
        with contextlib.ExitStack() as stack:
            for m in nets.values():
                stack.enter_context(eval_mode(m))
            images = self.mode.draw(nets, self.grid_inputs).float().add(1).div(2).clamp(0, 1).cpu()
        grid = write_grid(self.run_dir / "samples" / f"{name or f'epoch_{self.progress.epoch:03d}'}.png", images,
                          self.mode.grid_columns(images.shape[0]), self.mode.grid_label())
        reporter.image("samples", grid, self.progress.epoch)

    def _reporter(self) -> Reporter:
        if not self.dist.is_main:
            self._log_file = distributed.NoLog()
            return distributed.QuietReporter()
        self._log_file, sinks = run_sinks(self.run_dir, self.cfg.train, self.progress.images, self.resumed,
                                          self.total_images)
        return Reporter(sinks + self.extra_sinks)

    # ---- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self, folder: Optional[Path] = None, shared: Optional[dict] = None) -> Optional[Path]:
        """A checkpoint in RUN_DIR/checkpoints (the newest train.keep_checkpoints kept) or ``folder``; rank 0 writes."""
        tensors = self.dist.checkpoint_state(self.parts) if shared is None else dict(shared)
        if not self.dist.is_main:
            return None
        meta = {
            "gankit_version": __version__, "run_id": self.run_id,
            "config": self.cfg.to_dict(),
            "progress": self.progress.to_dict(),
            **self.parts.save(tensors),
            "image_shape": list(self.data.image_shape),
            "classes": list(self.data.classes),
            "dataset": self.data.name,
            "speed": self.speed.to_dict(),
            "grad_scalers": scaler_states(self.stepper.scalers),
            "launch": self.dist.record(self.cfg.train.batch_size),
        }
        mode_tensors, meta["mode_state"] = self.mode.state()
        tensors.update({f"mode.{k}": v for k, v in mode_tensors.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = self.noise.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        if folder is not None:
            return ck.save_checkpoint(folder, ck.checkpoint_name(self.progress.images), tensors, meta)
        folder = self.run_dir / "checkpoints"
        path = ck.save_checkpoint(folder, ck.checkpoint_name(self.progress.images), tensors, meta)
        ck.prune(folder, self.cfg.train.keep_checkpoints)
        return path

    def _restore(self, path: Optional[Path]) -> None:
        if path is None:
            raise GankitError(f"no checkpoint to resume from in {self.run_dir / 'checkpoints'}")
        tensors, meta = ck.load_checkpoint(path, self.device)
        meta = upgrade_meta(meta)
        try:
            self.parts.load(tensors, meta)
            load_scaler_states(self.stepper.scalers, meta.get("grad_scalers"))
            self.mode.load_state({k[5:]: v for k, v in tensors.items() if k.startswith("mode.")},
                                 meta.get("mode_state", {}))
            torch.set_rng_state(tensors["rng.torch"].cpu())
            self.dist.restore_rng(tensors, self.cfg.train.seed, meta["progress"]["step"])
            self.noise.set_state(tensors["rng.noise"].cpu())
            if "rng.cuda" in tensors and self.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
            progress = Progress.from_dict(meta["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise GankitError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); resume from another one") from None
        self.progress.__dict__.update(progress.__dict__)  # in place: callers may hold the object
        self._set_learning_rates()

