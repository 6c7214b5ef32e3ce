"""The `gan` mode: one generator against one discriminator, alternating updates.

    D ascends  J = mean f1(D(x_real)) + mean f2(D(G(z)))   (- weight * penalty)
    G ascends  I = mean f3(D(G(z)))

written as descent on ``loss_d = -J`` (term ``d``) and ``loss_g = -I`` (term ``g``). One iteration runs
``train.n_critic`` D steps, one real batch each, then one G step. The fakes of the last D step are drawn with
G's graph kept, and the G step reuses them, which saves one G forward pass per iteration.

Terms, each logged as ``loss/<name>``:

| phase | term | weight | when |
|---|---|---|---|
| D | ``d``: the Objective's loss_d | 1 | always |
| D | ``ac_d``: CE(class logits of x_real, y_real) | objective.ac_weight | AC class head |
| D | ``info_d``: CE(Q(G(z)), c(z)) | objective.info_weight | InfoGAN codes |
| D | ``penalty``: R1, R2 or GP, mean over the batch | penalty_weight x penalty_every | every penalty_every D steps |
| G | ``g``: the Objective's loss_g, on the top-k fakes when train.g_topk < 1 | 1 | always |
| G | ``ac_g`` / ``info_g`` | as above | as above |

Mixed precision: network passes run inside ``ctx.autocast()``; D's logits are cast to fp32 before the objective,
and penalties run in fp32 on the uncompiled D, so losses and their gradients stay fp32. What G and D are told
besides z and x (labels, codes) comes from `gankit.modes.conditioning`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch

from .. import health
from ..atomic import atomic_write
from ..build import build_models, build_objective
from ..data.clusters import CLUSTERS_FILE, clusters_bytes, kmeans_clusters, read_clusters
from ..errors import GankitError
from ..nets import architecture, eval_mode
from ..nets.coded import CodedGenerator
from ..nets.conditional import cycle_labels, n_classes_of
from ..penalties import clip_weights, penalty_fn
from .registry import register_mode
from .base import Context, Mode, Panel, Part, Phase, Term
from .conditioning import Classes, Clusters, InfoCodes, Plain
from .sources import ImageBatches


def sample_z(n: int, z_dim: int, device, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, I), shape (n, z_dim)."""
    return torch.randn(n, z_dim, device=device, generator=generator)


@dataclass
class DInputs:
    """What D's terms read: the batches, their labels or codes, and D's outputs (logits in fp32)."""

    x_real: torch.Tensor
    x_fake: torch.Tensor              # detached
    y_real: Optional[torch.Tensor]
    y_fake: Optional[torch.Tensor]
    codes: Optional[torch.Tensor]
    d_real: torch.Tensor
    d_fake: torch.Tensor
    c_real: Any                       # class / code logits (N, K) or None
    c_fake: Any


@dataclass
class GInputs:
    d_fake: torch.Tensor
    c_fake: Any
    y_fake: Optional[torch.Tensor]
    codes: Optional[torch.Tensor]


@register_mode
class GanMode(Mode):
    """Plain, conditional (concat, projection, AC) and coded (clusters, InfoGAN) GANs, with top-k G updates."""

    name = "gan"
    sample_part = "G"

    @classmethod
    def validate(cls, cfg) -> None:
        if cls is GanMode and getattr(architecture(cfg.model.arch)[0], "grows", False):
            raise GankitError(f"model.arch={cfg.model.arch} grows from 4x4 and needs its schedule; use it with "
                              f"mode=progressive (preset mnist-progan), or pick dcgan or mlp for mode gan")
        if getattr(architecture(cfg.model.arch)[0], "translates", False):
            raise GankitError(f"model.arch={cfg.model.arch} translates images (G(x), not G(z)); use it with "
                              f"mode=cyclegan, or pick dcgan or mlp for mode gan")
        health.check_objective(build_objective(cfg))  # a broken formula is one error before a long data load

    def __init__(self, cfg, image_shape: tuple, classes: list):
        super().__init__(cfg, image_shape, classes)
        self.objective = build_objective(cfg)
        self.cond = Plain()
        self.real_codes: Optional[torch.Tensor] = None

    def parts(self) -> dict:
        o, t = self.cfg.optim, self.cfg.train
        G, D = build_models(self.cfg, self.image_shape, len(self.classes))
        self.n_classes = n_classes_of(G)
        b1g = o.beta1 if o.beta1_g is None else o.beta1_g
        b1d = o.beta1 if o.beta1_d is None else o.beta1_d
        return {"D": Part(D, o.lr_d, (b1d, o.beta2)),
                "G": Part(G, o.lr_g, (b1g, o.beta2), ema=t.ema, ema_start=t.ema_start)}

    # ---- before training ---------------------------------------------------------------------
    def setup(self, data, run_dir, resume: bool, parts: dict) -> None:
        t, m = self.cfg.train, self.cfg.model
        if len(data) < t.batch_size * t.n_critic:
            raise GankitError(f"dataset has {len(data)} images, fewer than train.batch_size x train.n_critic "
                              f"= {t.batch_size * t.n_critic}; lower the batch size")
        G = parts["G"].module
        if m.codes and m.code_kind == "clusters":
            self.real_codes, shares = self._clusters(data, Path(run_dir), resume)
            G.code_probs.copy_(shares)
            self._coded = G  # its prior (code_probs) is written with the clusters
            self.cond = Clusters(G, self.real_codes.to(data.x.device))
        elif isinstance(G, CodedGenerator):
            self.cond = InfoCodes(G)
        elif self.n_classes:
            self.cond = Classes(G, data.y, t.fake_labels)

    def _clusters(self, data, run_dir: Path, resume: bool) -> tuple:
        """(cluster of each training image (N,), shares (K,)): k-means for a new run, the run's own file on
        resume (the same split whatever the thread count)."""
        path, k = run_dir / CLUSTERS_FILE, self.cfg.model.codes
        if getattr(data, "streamed", False):
            raise GankitError(f"model.codes={k} with code_kind=clusters clusters every training image at once, "
                              f"which a streamed dataset cannot; set model.codes=0 or data.stream=false")
        if resume and path.is_file():
            cluster, share = read_clusters(run_dir)
            if cluster.shape != (len(data),) or share.shape != (k,):
                raise GankitError(f"{path} does not match this run's data ({len(data)} images) and "
                                  f"model.codes={k}; resume with the same data and config")
            return cluster, share
        print(f"clustering {len(data)} training images into {k} codes (PCA + k-means)", file=sys.stderr,
              flush=True)
        return kmeans_clusters(data.x, k, self.cfg.train.seed)

    def write_files(self, run_dir) -> None:
        if self.real_codes is not None:
            atomic_write(Path(run_dir) / CLUSTERS_FILE, clusters_bytes(self.real_codes, self._coded.code_probs))

    def batches(self, data, seed: int) -> ImageBatches:
        t = self.cfg.train
        return ImageBatches(data, t.batch_size, t.n_critic, seed, self.cond.real_labels(data))

    # ---- the phases ----------------------------------------------------------------------------
    def phases(self, ctx: Context) -> list:
        o, t = self.cfg.objective, self.cfg.train
        self.ctx, objective = ctx, self.objective
        d_terms = [Term("d", lambda i: objective.loss_d(i.d_real, i.d_fake))]
        d_terms += [Term(n, fn, w) for n, fn, w in self.cond.d_terms(o)]
        penalty = penalty_fn(o.penalty)
        if penalty is not None and o.penalty_weight > 0:
            d_terms.append(Term("penalty", partial(self._penalty, penalty), o.penalty_weight * o.penalty_every,
                                o.penalty_every))
        g_loss = objective.loss_g if t.g_topk >= 1 else partial(_topk_loss, objective.loss_g, t.g_topk)
        g_terms = [Term("g", lambda i: g_loss(i.d_fake))]
        g_terms += [Term(n, fn, w) for n, fn, w in self.cond.g_terms(o)]
        to_out = objective.to_output
        d_stats = lambda i: {"d/real": to_out(i.d_real.detach()).float().mean(),  # noqa: E731
                             "d/fake": to_out(i.d_fake.detach()).float().mean()}
        clip = (lambda: clip_weights(ctx.eager["D"], o.clip)) if o.clip > 0 else None
        return [Phase("D", ("D",), d_terms, self._d_inputs, repeats=t.n_critic, stats=d_stats, after_step=clip),
                Phase("G", ("G",), g_terms, self._g_inputs, frozen=("D",))]

    def _d_inputs(self, scratch: dict, r: int) -> DInputs:
        ctx, cond, batch = self.ctx, self.cond, scratch["batch"]
        x_real = self.real_images(batch.x[r])
        z = sample_z(x_real.shape[0] * ctx.world, self.cfg.model.z_dim, x_real.device, ctx.noise)
        y_fake, codes = cond.fake_labels(z, ctx.noise)  # drawn for the global batch: this process keeps its rows
        z, y_fake, codes = ctx.shard(z), ctx.shard(y_fake), ctx.shard(codes)
        y_real = batch.y[r] if batch.y is not None else None
        with torch.set_grad_enabled(r == self.cfg.train.n_critic - 1), ctx.autocast():  # the G step reuses them
            x_fake = cond.generate(self.training_generator(), z, y_fake)
        scratch.update(x_fake=x_fake, y_fake=y_fake, codes=codes)
        x_fake = x_fake.detach()
        with ctx.autocast():
            d_real, c_real = cond.discriminate(ctx.nets["D"], x_real, y_real)
            d_fake, c_fake = cond.discriminate(ctx.nets["D"], x_fake, y_fake)
        return DInputs(x_real, x_fake, y_real, y_fake, codes, d_real.float(), d_fake.float(), c_real, c_fake)

    def real_images(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch as D sees it (a subclass may resample it, as progressive growing does)."""
        return x

    def training_generator(self):
        """What draws the fakes of a training step (a subclass may ask G for another output size)."""
        return self.ctx.nets["G"]

    def _penalty(self, penalty, i: DInputs) -> torch.Tensor:
        # fp32 and eager: double backward does not run through compiled graphs. A labelled D is differentiated
        # as D(., y_real) (gp scores its interpolates with y_real).
        D = self.ctx.eager["D"]
        critic = D if i.y_real is None else partial(D, y=i.y_real)
        part = (self.ctx.rank, self.ctx.world)  # gp's eps: drawn for the global batch, this process's rows kept
        return penalty(critic, i.x_real.float(), i.x_fake.float(), self.ctx.noise, part).mean()

    def _g_inputs(self, scratch: dict, r: int) -> GInputs:
        y_fake, codes = scratch["y_fake"], scratch["codes"]
        with self.ctx.autocast():
            d_fake, c_fake = self.cond.discriminate(self.ctx.nets["D"], scratch["x_fake"], y_fake)
        return GInputs(d_fake.float(), c_fake, y_fake, codes)

    # ---- drawing ------------------------------------------------------------------------------
    def fixed_inputs(self, n: int, device, generator: torch.Generator) -> tuple:
        z = sample_z(n, self.cfg.model.z_dim, device, generator)
        y = cycle_labels(self.n_classes, n, device)  # image i shows class i mod K; drawn from no generator
        return (z,) if y is None else (z, y)

    def draw(self, nets: dict, inputs: tuple) -> torch.Tensor:
        return nets["G"](*inputs)

    # ---- health -------------------------------------------------------------------------------
    def health_setup(self, data) -> None:
        self.reference = health.Reference.of(data.x, data.y)

    def health_stats(self, nets: dict, inputs: tuple) -> dict:
        """Statistics of G's fixed-noise samples (eval mode: no batch-norm statistics change, no RNG drawn)."""
        with eval_mode(nets["G"]) as G:
            x = G(*inputs).float()
        return health.sample_stats(x, self.reference)

    def assess(self, history: list, fraction: float) -> dict:
        return health.assess(history, self.objective.domain, fraction)

    def messages(self, history: list) -> list:
        return health.messages(history)

    def warnings(self) -> list:
        o = self.cfg.objective
        if self.objective.needs_lipschitz and o.penalty != "gp" and o.clip == 0:
            return [f"warning: objective {self.objective.name} needs a Lipschitz critic; set objective.penalty=gp "
                    f"or objective.clip=0.01"]
        return []

    # ---- the run report -----------------------------------------------------------------------
    @torch.no_grad()
    def report_panels(self, run) -> list:
        """D's verdicts on real and generated images at the run's checkpoint; a conditional run's rows per class."""
        from ..data import to_float
        from ..data.stream import open_training_data

        G, D = run.network("G", ema=False), run.network("D", ema=False)
        n, d = 512, self.cfg.data
        inputs = self.fixed_inputs(n, run.device, torch.Generator(run.device).manual_seed(0))
        text = (f"D ({run.checkpoint.name}, eval mode: running batch-norm statistics) on {n} generated images "
                f"from G's raw weights")
        values = {}
        y_fake = inputs[1] if len(inputs) > 1 else (G.codes(inputs[0]) if self.cfg.model.codes and
                                                      self.cfg.model.code_kind == "clusters" else None)
        values["generated"] = self._verdicts(D, G(*inputs), y_fake)
        try:
            if d.data_dir is None and d.name != "digits":  # a report never downloads
                raise GankitError(f"data.data_dir is not set and {d.name} is not bundled")
            # a folder or zip is read lazily: only the n files shown, however large the dataset
            data, _ = open_training_data(replace(d, stream="true", workers=0) if d.name == "folder" else d, run.device)
            pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n].to(run.device)
            y_real = data.y[pick] if len(inputs) > 1 else None
            if self.cfg.model.codes and self.cfg.model.code_kind == "clusters":
                y_real = read_clusters(run.run_dir)[0].to(run.device)[pick]
            values["real (training images)"] = self._verdicts(D, to_float(data.x[pick]), y_real)
            getattr(data, "close", lambda: None)()
            text += f" and {n} random training images of {d.name}"
        except (GankitError, OSError, KeyError, IndexError) as exc:
            text += f"; the real images could not be loaded ({exc})"
        domain = "probability D(x)" if self.objective.domain == "probability" else "critic value D(x)"
        panels = [Panel("D's outputs at the checkpoint", text + ".", values=values,
                        values_title=f"{self.objective.name}: {domain}")]
        if self.n_classes:
            k = min(self.n_classes, 20)
            z = sample_z(8 * k, self.cfg.model.z_dim, run.device, torch.Generator(run.device).manual_seed(1))
            y = torch.arange(k, device=run.device).repeat_interleave(8)
            names = ", ".join(self.classes[:k]) if self.classes else ""
            panels.append(Panel("Samples by class", f"One row per class ({names}); sampling weights (EMA where on).",
                                images=[("rows: classes", run.network()(z, y), 8)]))
        return panels

    def _verdicts(self, D, x: torch.Tensor, y) -> torch.Tensor:
        with eval_mode(D):
            out = D.outputs(x, y) if y is not None else (D.outputs(x) if hasattr(D, "outputs") else D(x))
        logits = out[0] if isinstance(out, tuple) else out
        return self.objective.to_output(logits.float()).cpu()


def _topk_loss(loss_g, fraction: float, d_fake: torch.Tensor) -> torch.Tensor:
    """Top-k training (Sinha et al. 2020): no gradient from the fakes D rejects most."""
    return loss_g(d_fake.topk(max(1, round(fraction * d_fake.shape[0]))).values)
