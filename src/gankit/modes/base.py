"""What a game is, in terms the run engine can execute without knowing which game it runs.

A **mode** is one game (a plain GAN, CycleGAN, progressive growing, ...). It declares:

- its **parts**: named networks, each with its learning rate, Adam betas and, where wanted, an EMA copy
  (`Part`);
- its **phases**: which parts a phase updates, which parts it freezes, which weighted loss **terms** it sums
  and how often it runs (`Phase`, `Term`); stylegan2-ada-pytorch's phase list is the model;
- its **batch source**: what one iteration consumes (`gankit.modes.sources`);
- its **fixed inputs** and how it draws images for grids, health statistics and `gankit sample`.

The engine (`gankit.engine.trainer`) builds optimisers, EMA copies and gradient scalers for the parts, runs the
phases, logs every term as ``loss/<term name>`` and checkpoints everything by part name. A mode never sees an
optimiser or calls ``backward()``: a term is a small function of the phase's prepared inputs.

One iteration runs every due phase once, in order; a phase with ``repeats`` > 1 runs that many steps in an
iteration (the D steps of ``n_critic``). ``prepare(scratch, r)`` computes what the terms of step ``r`` need
(network outputs under autocast) and may keep values in ``scratch``, a dict shared by the phases of one
iteration (a GAN's G phase reuses the fakes its last D step drew).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn as nn


@dataclass
class Part:
    """A named trainable network with its optimiser settings."""

    module: nn.Module
    lr: float
    betas: tuple = (0.5, 0.999)
    ema: float = 0.0                  # decay of an exponential moving average copy (0: none)
    ema_start: int = 0                # images seen before the average starts tracking the part


@dataclass
class Term:
    """A weighted loss term: ``weight * fn(inputs)`` (a scalar tensor), logged unweighted as ``loss/<name>``.

    ``every`` > 1 makes it lazy: it is added on every ``every``-th step of its phase (counted over the run), and
    its weight should already include the interval so the average strength stays the same.
    """

    name: str
    fn: Callable[[Any], torch.Tensor]
    weight: float = 1.0
    every: int = 1


@dataclass
class Phase:
    """One optimisation step: sum the due terms, backpropagate, step the optimisers of ``updates``."""

    name: str
    updates: tuple                    # part names whose optimisers step
    terms: list
    prepare: Callable[[dict, int], Any]  # (scratch, repeat index) -> the inputs every term reads
    frozen: tuple = ()                # part names with requires_grad off during the phase
    every: int = 1                    # run on every ``every``-th iteration
    repeats: int = 1                  # steps per iteration
    stats: Optional[Callable[[Any], dict]] = None  # measured steps only: extra statistics of the inputs
    after_step: Optional[Callable[[], None]] = None  # e.g. weight clipping


@dataclass
class Panel:
    """A mode's own section of `gankit report` (`Mode.report_panels`): plain values the report lays out.

    ``images``: [(caption, images (N, C, H, W) in [-1, 1], images per row or None)], shown as grids;
    ``values``: {label: 1-D tensor or array}, drawn as overlaid histograms titled ``values_title``;
    ``table``: rows (dicts with the same keys); ``text``: a paragraph.
    """

    title: str
    text: str = ""
    images: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    values_title: str = ""
    table: list = field(default_factory=list)


@dataclass
class Context:
    """What a mode's phases may use while training; made by the engine."""

    nets: dict                        # part name -> the module the steps call (maybe compiled)
    eager: dict                       # part name -> the uncompiled module (double backward, grids)
    noise: torch.Generator            # every random number training draws
    device: torch.device
    autocast: Callable = contextlib.nullcontext  # wraps network passes (mixed precision)
    rank: int = 0                     # this process and the number of processes (torchrun; 1: one process)
    world: int = 1

    def shard(self, t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """This process's rows of ``t``, drawn for the global batch (all of it in one process). Drawing noise
        for the global batch on every process and keeping a slice keeps the single-process noise stream."""
        if t is None or self.world == 1:
            return t
        n = t.shape[0] // self.world
        return t[self.rank * n:(self.rank + 1) * n]


class Mode:
    """Base class of a game. Subclasses set ``name`` and implement the methods that raise here.

    Built once per run from the resolved config (``cfg``) and the data's ``image_shape`` and ``classes``; the
    same object builds the parts for `gankit.run` (no data, no training) and for the engine.
    """

    name = ""
    sample_part = ""                  # the part whose (EMA) copy draws images
    evaluation = "samples"            # what gankit evaluate does with a run (gankit.metrics.evaluate.EVALUATIONS)

    def __init__(self, cfg, image_shape: tuple, classes: list):
        self.cfg, self.image_shape, self.classes = cfg, tuple(image_shape), list(classes)

    @classmethod
    def validate(cls, cfg) -> None:
        """Checks of the config that are cheap and should fail before data is loaded (optional)."""

    @classmethod
    def load_data(cls, cfg, device):
        """The training data (an `ImageData`, on ``device``): ``data.name`` by default; a game with other data
        (two domains) loads them here."""
        from ..data.stream import open_training_data

        data, note = open_training_data(cfg.data, device)  # in memory as uint8, or streamed from disk
        if note:
            print(note, flush=True)
        return data

    # ---- building -----------------------------------------------------------------------------
    def parts(self) -> dict:
        """{name: Part}, networks freshly initialised from the global RNG (the engine seeds it)."""
        raise NotImplementedError

    def setup(self, data, run_dir, resume: bool, parts: dict) -> None:
        """Before training: read or compute what the game needs from the data (e.g. clusters)."""

    def write_files(self, run_dir) -> None:
        """After the run folder is written (new runs only): the mode's own files."""

    def phases(self, ctx: Context) -> list:
        """[Phase, ...] in the order one iteration runs them."""
        raise NotImplementedError

    def batches(self, data, seed: int):
        """The batch source: see `gankit.modes.sources.ImageBatches`."""
        raise NotImplementedError

    # ---- state beyond the parts (optional) -------------------------------------------------------
    def state(self) -> tuple:
        """({name: tensor}, JSON-able dict): training state of the game itself (e.g. image pools), saved in every
        checkpoint as tensors ``mode.<name>`` and meta ``mode_state``."""
        return {}, {}

    def load_state(self, tensors: dict, meta: dict) -> None:
        """Restore what `state` returned (on resume and rollback)."""

    # ---- drawing images ------------------------------------------------------------------------
    def fixed_inputs(self, n: int, device, generator: torch.Generator) -> tuple:
        """Inputs for ``n`` grid images, drawn from ``generator`` (the same every time it is seeded alike)."""
        raise NotImplementedError

    def draw(self, nets: dict, inputs: tuple) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] from ``inputs``; ``nets`` are the sampling copies (EMA where on)."""
        raise NotImplementedError

    def grid_label(self) -> str:
        """A line written above each sample grid (e.g. progressive growing's resolution and alpha; "": none)."""
        return ""

    def hooks(self) -> list:
        """[`gankit.engine.hooks.Hook`, ...]: the game's own schedule (progressive growing's stages)."""
        return []

    def grid_columns(self, n_images: int) -> int:
        """Images per row of the sample grid that `draw` fills with ``n_images`` images (default: square)."""
        return max(1, int(n_images ** 0.5))

    # ---- health (optional) ---------------------------------------------------------------------
    def health_setup(self, data) -> None:
        """Reference statistics of the real data for `health_stats` (optional)."""

    def health_stats(self, nets: dict, inputs: tuple) -> dict:
        """Statistics of the drawn images on a logged step (optional)."""
        return {}

    def assess(self, history: list, fraction: float) -> dict:
        """Health flags {'health/<name>': 0/1} from the newest rows of metrics.jsonl (optional)."""
        return {}

    def messages(self, history: list) -> list:
        """Warnings to print for the flags in ``history`` (optional)."""
        return []

    def warnings(self) -> list:
        """One-off warnings about the configuration, printed at start (optional)."""
        return []

    # ---- the run report (optional) -------------------------------------------------------------
    def report_panels(self, run) -> list:
        """[Panel, ...]: what `gankit report` shows for this game besides the sections every run has (a
        CycleGAN's translations, progressive growing's stages). ``run`` is the finished `gankit.run.Run`; a
        failing panel is reported in the page, never fatal."""
        return []
