"""The `progressive` mode: progressive growing of GANs (Karras et al. 2018), a GAN whose networks grow.

G and D (``model.arch=progan``, `gankit.nets.progan`) start at 4x4 and double their resolution up to the
image size (the next power of two: MNIST's 28x28 grows to 32x32, padded with background). The schedule is
counted in real images seen (``grow.*``):

    stage 0 (4x4):   stable_images at alpha 1
    stage k >= 1:    fade_images with alpha rising linearly from 0 to 1, then stable_images at alpha 1

and the last stage goes on until ``train.images`` when that is longer. ``grow.fade_images=0
grow.stable_images=0`` grows nothing: every layer trains at full resolution from the first image (the baseline of
docs/progressive.md; set ``train.images``).

Real images are padded, average-pooled to the current resolution and, during a fade, blended the same way as
G's output: ``lerp(upsample(pool2(x)), x, alpha)``. The game is the `gan` mode's (any Objective and penalty,
``train.n_critic`` D steps per G step) plus a drift term ``grow.drift * mean(D(x_real)^2)``. The MNIST presets
set an EMA of G and Adam(betas 0/0.99) as the paper does, but lr 3e-3 and non-saturating + lazy R1 instead of its
1e-3 and WGAN-GP, which scored far lower in their budget (docs/progressive.md). ``grow.batch_sizes`` sets a batch size
per resolution (`GrowingBatches`), ``grow.reset_optim`` clears Adam's state when a fade starts and ends.

Stage and alpha are computed from the images seen before every iteration (the `Growth` hook) and live in
both networks' buffers, so every checkpoint holds them and a run resumes exactly, also in the middle of a fade.
Logged columns ``stage``, ``resolution`` and ``alpha``; sample grids are labelled with resolution and alpha;
``samples/timeline.png`` holds one row per finished stage (``samples/stage_<k>.png``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GankitError
from ..nets import architecture, eval_mode, make_options
from ..nets.progan import padding, resolutions
from .base import Panel, Term
from .gan import GanMode
from .registry import register_mode
from .sources import GrowingBatches

ROW = 8  # images per row of the stage timeline


@dataclass
class Schedule:
    """Stages over images seen; ``batch`` maps a resolution to its batch size (others: ``default_batch``)."""

    resolutions: list
    fade: int
    stable: int
    batch: dict
    default_batch: int

    @property
    def length(self) -> int:
        """Images until the last stage has trained ``stable`` images at alpha 1."""
        return self.stable + (len(self.resolutions) - 1) * (self.fade + self.stable)

    def at(self, images: int) -> tuple:
        """(stage, alpha, phase): phase 0 is stage 0; stage k's fade is phase 2k - 1, its stable part 2k."""
        if self.fade + self.stable == 0:  # no growing: the full networks from the first image (a baseline)
            return len(self.resolutions) - 1, 1.0, 2 * len(self.resolutions) - 2
        if images < self.stable:
            return 0, 1.0, 0
        k, rest = divmod(images - self.stable, self.fade + self.stable)
        if k >= len(self.resolutions) - 1:
            return len(self.resolutions) - 1, 1.0, 2 * len(self.resolutions) - 2
        if rest < self.fade:
            return k + 1, rest / self.fade, 2 * k + 1
        return k + 1, 1.0, 2 * k + 2

    def starts(self) -> list:
        """Images seen when each stage after the first starts (its fade)."""
        return [self.stable + k * (self.fade + self.stable) for k in range(len(self.resolutions) - 1)]

    def batch_size(self, images: int) -> int:
        return self.batch.get(self.resolutions[self.at(images)[0]], self.default_batch)


class Growth:
    """A `gankit.engine.hooks.Hook` (by its methods: modes never import the engine). Sets stage and alpha
    before every iteration; at a stage's end draws its timeline row, and at a fade's start and end clears the
    optimisers' state (``grow.reset_optim``)."""

    def __init__(self, mode: "ProgressiveMode"):
        self.mode = mode
        self._grown = None  # the growing modules of the run's parts and EMA copies (found once)

    def before_iteration(self, trainer) -> None:
        mode = self.mode
        stage, alpha, phase = mode.schedule.at(trainer.progress.images)
        if phase != mode.phase:
            if mode.phase >= 0 and stage != mode.stage:
                mode.write_stage_row(trainer)  # the stage that just ended, at its end
            if mode.phase >= 0 and mode.cfg.grow.reset_optim:
                for opt in trainer.parts.optimizers.values():
                    opt.state.clear()
            mode.phase = phase
        if self._grown is None:  # inside code wrappers too
            parts = (*trainer.parts.modules.values(), *(e.module for e in trainer.parts.emas.values()))
            self._grown = [g for m in parts for g in m.modules() if hasattr(g, "set_growth")]
        mode.set_growth(self._grown, stage, alpha)

    def lr_scale(self, trainer) -> float:
        return 1.0

    def after_iteration(self, trainer) -> None:
        pass

    def finished(self, trainer) -> None:
        self.mode.write_stage_row(trainer)


@register_mode
class ProgressiveMode(GanMode):
    """A GAN grown from 4x4 with fade-in (see the module doc)."""

    name = "progressive"

    @classmethod
    def validate(cls, cfg) -> None:
        super().validate(cfg)
        m, o, g = cfg.model, cfg.objective, cfg.grow
        if not getattr(architecture(m.arch)[0], "grows", False):
            raise GankitError(f"mode progressive needs networks that grow, not model.arch={m.arch}; set "
                              f"model.arch=progan")
        if m.conditional != "none" or o.ac_weight > 0:
            raise GankitError("mode progressive grows unconditional networks (model.codes may give them a code); set "
                              "model.conditional=none and objective.ac_weight=0")
        if g.fade_images < 0 or g.stable_images < (0 if g.fade_images == 0 else 1) or g.drift < 0:
            raise GankitError("grow.fade_images must not be negative, grow.stable_images must be at least 1 (both 0: "
                              "no growing, full resolution from the start) and grow.drift must not be negative")
        batch_sizes(g)
        if cfg.train.compile:
            raise GankitError("mode progressive changes its networks' fade weight every iteration, which torch.compile "
                              "would recompile each time; set train.compile=false")

    def __init__(self, cfg, image_shape: tuple, classes: list):
        super().__init__(cfg, image_shape, classes)
        start = make_options(cfg.model.arch, cfg.model.options).start
        self.schedule = Schedule(resolutions(self.image_shape, start), cfg.grow.fade_images, cfg.grow.stable_images,
                                 batch_sizes(cfg.grow), cfg.train.batch_size)
        unknown = sorted(set(self.schedule.batch) - set(self.schedule.resolutions))
        if unknown:
            raise GankitError(f"grow.batch_sizes names resolutions {unknown} the networks never train at; they grow "
                              f"through {self.schedule.resolutions}")
        self.pad = padding(self.image_shape)
        self.stage, self.alpha, self.phase = 0, 1.0, -1
        self.run_dir = None

    # ---- building -----------------------------------------------------------------------------
    def setup(self, data, run_dir, resume: bool, parts: dict) -> None:
        super().setup(data, run_dir, resume, parts)  # cluster codes (model.codes), as in the gan mode
        self.run_dir = Path(run_dir)
        need = max([self.schedule.default_batch, *self.schedule.batch.values()]) * self.cfg.train.n_critic
        if len(data) < need:
            raise GankitError(f"dataset has {len(data)} images, fewer than the largest batch x train.n_critic = "
                              f"{need}; lower train.batch_size or grow.batch_sizes")

    def hooks(self) -> list:
        return [Growth(self)]

    def batches(self, data, seed: int) -> GrowingBatches:
        n = self.cfg.train.n_critic
        return GrowingBatches(data, lambda images: self.schedule.batch_size(images) * n, self.schedule.starts(),
                              seed, self.schedule.length, per_iteration=n, labels=self.cond.real_labels(data))

    def set_growth(self, modules: list, stage: int, alpha: float) -> None:
        for m in modules:  # G, D and the EMA copy; after a resume or rollback their buffers came from a checkpoint
            if (m.stage, m.alpha) != (stage, alpha):
                m.set_growth(stage, alpha)
        self.stage, self.alpha = stage, alpha

    @property
    def resolution(self) -> int:
        return self.schedule.resolutions[self.stage]

    # ---- the phases ----------------------------------------------------------------------------
    def phases(self, ctx) -> list:
        phases = super().phases(ctx)
        d = phases[0]
        if self.cfg.grow.drift > 0:
            d.terms.append(Term("drift", lambda i: i.d_real.pow(2).mean(), self.cfg.grow.drift))
        stats = d.stats
        d.stats = lambda i: {**stats(i), "stage": float(self.stage), "resolution": float(self.resolution),
                             "alpha": self.alpha}
        return phases

    def real_images(self, x: torch.Tensor) -> torch.Tensor:
        """Training images (N, C, H, W) padded, pooled to the current resolution and faded like G's output."""
        if any(self.pad):
            x = F.pad(x, self.pad, value=-1.0)
        x = F.avg_pool2d(x, x.shape[-1] // self.resolution) if x.shape[-1] != self.resolution else x
        if self.stage > 0 and self.alpha < 1.0:
            x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, self.alpha)
        return x

    def training_generator(self):
        """G at the current stage's own resolution (the `gan` mode's D step then runs unchanged)."""
        return partial(self.ctx.nets["G"], native=True)

    # ---- state, grids and the timeline ---------------------------------------------------------------
    def state(self) -> tuple:
        return {}, {"phase": self.phase}

    def load_state(self, tensors: dict, meta: dict) -> None:
        self.phase = int(meta.get("phase", -1))

    def assess(self, history: list, fraction: float) -> dict:
        """The `gan` mode's flags, without mode collapse before the last stage: a 4x4 G's samples are blurred
        digits whose pixel-space diversity and nearest-image classes say nothing yet."""
        flags = super().assess(history, fraction)
        if self.stage < len(self.schedule.resolutions) - 1:
            flags["health/mode_collapse"] = 0.0
        return flags

    def grid_label(self) -> str:
        r = self.resolution
        return f"{r}x{r}" + (f", fading in: alpha {self.alpha:.2f}" if self.stage and self.alpha < 1 else "")

    @torch.no_grad()
    def write_stage_row(self, trainer) -> None:
        """samples/stage_<k>.png: the first `ROW` grid images at the end of the current stage; then the timeline."""
        if not trainer.dist.is_main:
            return
        from ..atomic import write_grid

        nets = trainer.parts.sampling()
        with eval_mode(nets["G"]):
            images = self.draw(nets, tuple(t[:ROW] for t in trainer.grid_inputs)).float().add(1).div(2).clamp(0, 1)
        r = self.resolution
        write_grid(self.run_dir / "samples" / f"stage_{self.stage}.png", images.cpu(), ROW,
                   f"stage {self.stage}: {r}x{r}, end ({trainer.progress.images:,} images)")
        write_timeline(self.run_dir / "samples")

    def report_panels(self, run) -> list:
        rows = [{"stage": k, "resolution": f"{r}x{r}", "from image": start, "fade-in images": 0 if k == 0 else s.fade,
                 "batch size": s.batch.get(r, s.default_batch)}
                for s in [self.schedule] for k, (r, start) in enumerate(zip(s.resolutions, [0, *s.starts()]))]
        growth = Panel("Growth", f"Stages of this run ({self.schedule.length:,} images in the schedule); the "
                       f"timeline is samples/timeline.png.", table=rows)
        timeline = run.run_dir / "samples" / "timeline.png"
        if timeline.is_file():
            from PIL import Image

            sheet = torch.from_numpy(np.array(Image.open(timeline).convert("RGB"))).permute(2, 0, 1)
            growth.images.append(("one row per stage, at its end", sheet[None].float() / 127.5 - 1, 1))
        return [growth, *super().report_panels(run)]


def batch_sizes(g) -> dict:
    """grow.batch_sizes as {resolution (int): batch size (int)}; one line for a bad entry."""
    out = {}
    for key, value in g.batch_sizes.items():
        try:
            res, size = int(key), value
        except (TypeError, ValueError):
            res, size = None, None
        if res is None or res < 1 or res & (res - 1) or isinstance(size, bool) or not isinstance(size, int) \
                or size < 1:
            raise GankitError(f"grow.batch_sizes.{key}={value!r}: keys are resolutions (powers of two) and values "
                              f"batch sizes of at least 1, e.g. grow.batch_sizes.32=16")
        out[res] = size
    return out


def write_timeline(folder: Path) -> None:
    """samples/timeline.png: the stage rows stacked, top to bottom (rows of different widths are left-aligned)."""
    from PIL import Image

    from ..atomic import atomic_write, image_bytes

    rows = sorted(folder.glob("stage_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    images = [Image.open(p).convert("RGB") for p in rows]
    if not images:
        return
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)))
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    atomic_write(folder / "timeline.png", image_bytes(sheet))
