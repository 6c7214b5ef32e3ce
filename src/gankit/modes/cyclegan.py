"""The `cyclegan` mode: unpaired image-to-image translation (Zhu et al. 2017).

Two translators, G_AB: A -> B and G_BA: B -> A, and two discriminators, D_A (real A against G_BA's fakes) and
D_B (real B against G_AB's fakes). One iteration takes one batch of each domain (`UnpairedBatches`) and runs,
as the reference implementation does, the G phase first with both discriminators frozen, then the D phase on
fakes drawn from an image pool:

| phase | term | weight | what |
|---|---|---|---|
| G | ``g_ab``, ``g_ba`` | 1 | the Objective's G loss (-mean f3) of D_B(G_AB(a)), D_A(G_BA(b)) |
| G | ``cycle_a``, ``cycle_b`` | objective.lambda_cycle | L1 of G_BA(G_AB(a)) - a, G_AB(G_BA(b)) - b |
| G | ``idt_a``, ``idt_b`` | lambda_identity x lambda_cycle | L1 of G_BA(a) - a, G_AB(b) - b (0: off) |
| D | ``d_a``, ``d_b`` | 0.5 | the Objective's D loss on real images and pool fakes: (real + fake) x 0.5 |

Least squares is the reference's objective. gankit's f1, f2 and f3 of least squares carry a factor 1/2: the
logged ``d_a`` (the Objective's loss_d) equals the reference's D loss, (MSE_real + MSE_fake) / 2, and enters the
D phase with weight 0.5, while ``g_ab`` is half the reference's G loss MSE(D(G(x)), 1). Adam ignores a loss's
overall scale, so the reference's balance of adversarial, cycle and identity terms is
``objective.lambda_cycle=5`` here (the default 10 weighs the cycle twice as much as the reference does).

Each discriminator draws its fakes from a pool of ``train.pool_size`` past fakes (Shrivastava et al. 2017):
until the pool is full each new fake is stored and used; then, with probability 1/2, a stored fake is used and
replaced by the new one, else the new one is used. The pools' random draws come from the run's noise generator
and their contents are saved in every checkpoint (`state`), so a resumed run continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .. import health
from ..build import build_objective
from ..data import DATASETS, to_float
from ..errors import GankitError, did_you_mean
from ..nets import architecture, build_networks
from .base import Context, Mode, Part, Phase, Term
from .registry import register_mode
from .sources import UnpairedBatches

PARTS = ("G_AB", "G_BA", "D_A", "D_B")


class ImagePool:
    """Up to ``size`` past fakes; ``query`` returns a batch mixing new and stored fakes (see the module doc)."""

    def __init__(self, size: int):
        self.size, self.count = size, 0
        self.images: Optional[torch.Tensor] = None

    def query(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return x
        x = x.detach().float()
        if self.images is None:
            self.images = torch.zeros(self.size, *x.shape[1:], device=x.device)
        out = []
        for image in x:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand((), generator=generator, device=generator.device)) > 0.5:
                i = int(torch.randint(0, self.size, (), generator=generator, device=generator.device))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> Optional[torch.Tensor]:
        return None if self.images is None else self.images[:self.count].clone()

    def load(self, images: Optional[torch.Tensor], count: int, like: torch.Tensor) -> None:
        self.count = count
        self.images = None
        if count:
            if images is None or images.shape[0] != count or images.shape[1:] != like.shape[1:]:
                raise ValueError(f"image pool holds {count} images of shape {tuple(like.shape[1:])}, "
                                 f"checkpoint has {None if images is None else tuple(images.shape)}")
            self.images = torch.zeros(self.size, *like.shape[1:], device=like.device)
            self.images[:count] = images.to(like.device)


@dataclass
class GInputs:
    a: torch.Tensor
    b: torch.Tensor
    rec_a: torch.Tensor
    rec_b: torch.Tensor
    idt_a: Optional[torch.Tensor]     # G_BA(a), when the identity terms are on
    idt_b: Optional[torch.Tensor]
    d_fake_b: torch.Tensor            # D_B(G_AB(a)) logits, fp32
    d_fake_a: torch.Tensor


@dataclass
class DInputs:
    d_real_a: torch.Tensor
    d_fake_a: torch.Tensor
    d_real_b: torch.Tensor
    d_fake_b: torch.Tensor


def _l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x.float() - target.float()).abs().mean()


@register_mode
class CycleGanMode(Mode):
    """Unpaired translation between domains A (``data.name``) and B (``data.domain_b``)."""

    name = "cyclegan"
    sample_part = "G_AB"
    evaluation = "translation"

    @classmethod
    def validate(cls, cfg) -> None:
        from ..data.unpaired import domains

        m, o, t, d = cfg.model, cfg.objective, cfg.train, cfg.data
        ranges = [(o.lambda_cycle >= 0 and o.lambda_identity >= 0,
                   "objective.lambda_cycle and objective.lambda_identity must not be negative (0 turns a term off)"),
                  (0 <= t.pool_size <= 10_000, "train.pool_size must be between 0 (no pool) and 10000 images"),
                  (d.load_size == 0 or d.load_size >= d.image_size,
                   "data.load_size must be 0 (no random crops) or at least data.image_size (the crop)")]
        for ok, message in ranges:
            if not ok:
                raise GankitError(message)
        if not getattr(architecture(m.arch)[0], "translates", False):
            raise GankitError(f"mode cyclegan needs an image-to-image architecture, not model.arch={m.arch}; set "
                              f"model.arch=cyclegan")
        problems = [(m.conditional != "none", "model.conditional=none"), (m.codes != 0, "model.codes=0"),
                    (o.penalty != "none" or o.clip > 0, "objective.penalty=none and objective.clip=0"),
                    (o.ac_weight > 0 or o.info_weight > 0, "objective.ac_weight=0 and objective.info_weight=0"),
                    (t.n_critic != 1 or t.g_topk < 1, "train.n_critic=1 and train.g_topk=1"),
                    (cfg.eval.every > 0, "eval.every=0 (evaluate a translation run with gankit evaluate RUN)")]
        for bad, fix in problems:
            if bad:
                raise GankitError(f"mode cyclegan does not support this setting; set {fix}")
        health.check_objective(build_objective(cfg))
        if d.domain_b and d.domain_b not in DATASETS:
            raise GankitError(f"unknown data.domain_b {d.domain_b!r}{did_you_mean(d.domain_b, DATASETS)}; choose one "
                              f"of {', '.join(DATASETS)}")
        domains(cfg.data)

    @classmethod
    def load_data(cls, cfg, device):
        from ..data.unpaired import load_unpaired

        return load_unpaired(cfg.data, "train", device)

    def __init__(self, cfg, image_shape: tuple, classes: list):
        super().__init__(cfg, image_shape, classes)
        self.objective = build_objective(cfg)
        self.pools = {"a": ImagePool(cfg.train.pool_size), "b": ImagePool(cfg.train.pool_size)}
        self.data = None

    def parts(self) -> dict:
        m, o, t = self.cfg.model, self.cfg.optim, self.cfg.train

        def pair():
            return build_networks(m.arch, 0, self.image_shape, m.width_g, m.width_d, m.norm_g, m.norm_d, m.act_g,
                                  m.act_d, options=m.options)

        g_ab, d_b = pair()
        g_ba, d_a = pair()
        b1g = o.beta1 if o.beta1_g is None else o.beta1_g
        b1d = o.beta1 if o.beta1_d is None else o.beta1_d
        return {"G_AB": Part(g_ab, o.lr_g, (b1g, o.beta2), ema=t.ema, ema_start=t.ema_start),
                "G_BA": Part(g_ba, o.lr_g, (b1g, o.beta2), ema=t.ema, ema_start=t.ema_start),
                "D_A": Part(d_a, o.lr_d, (b1d, o.beta2)), "D_B": Part(d_b, o.lr_d, (b1d, o.beta2))}

    def setup(self, data, run_dir, resume: bool, parts: dict) -> None:
        if getattr(data, "b", None) is None:
            raise GankitError("mode cyclegan trains on two domains; pass data=None (or an UnpairedData) so it can "
                              "load data.name and data.domain_b")
        bs = self.cfg.train.batch_size
        if min(len(data), len(data.b)) < bs:
            raise GankitError(f"domains A and B hold {len(data)} and {len(data.b)} images; train.batch_size={bs} "
                              f"needs at least that many in each: lower it")
        self.data = data

    def batches(self, data, seed: int) -> UnpairedBatches:
        return UnpairedBatches(data, data.b, self.cfg.train.batch_size, seed, data.crop, self.cfg.data.flip)

    # ---- the phases ----------------------------------------------------------------------------
    def phases(self, ctx: Context) -> list:
        o = self.cfg.objective
        self.ctx, obj = ctx, self.objective
        lam, idt = o.lambda_cycle, o.lambda_identity * o.lambda_cycle
        g_terms = [Term("g_ab", lambda i: obj.loss_g(i.d_fake_b)), Term("g_ba", lambda i: obj.loss_g(i.d_fake_a))]
        if lam > 0:
            g_terms += [Term("cycle_a", lambda i: _l1(i.rec_a, i.a), lam),
                        Term("cycle_b", lambda i: _l1(i.rec_b, i.b), lam)]
        if idt > 0:
            g_terms += [Term("idt_a", lambda i: _l1(i.idt_a, i.a), idt),
                        Term("idt_b", lambda i: _l1(i.idt_b, i.b), idt)]
        d_terms = [Term("d_a", lambda i: obj.loss_d(i.d_real_a, i.d_fake_a), 0.5),
                   Term("d_b", lambda i: obj.loss_d(i.d_real_b, i.d_fake_b), 0.5)]
        out = obj.to_output
        d_stats = lambda i: {"d/real_a": out(i.d_real_a.detach()).mean(), "d/fake_a": out(i.d_fake_a.detach()).mean(),  # noqa: E731
                             "d/real_b": out(i.d_real_b.detach()).mean(), "d/fake_b": out(i.d_fake_b.detach()).mean()}
        return [Phase("G", ("G_AB", "G_BA"), g_terms, self._g_inputs, frozen=("D_A", "D_B")),
                Phase("D", ("D_A", "D_B"), d_terms, self._d_inputs, stats=d_stats)]

    def _g_inputs(self, scratch: dict, r: int) -> GInputs:
        nets, a, b = self.ctx.nets, *scratch["batch"].x
        identity = self.cfg.objective.lambda_identity * self.cfg.objective.lambda_cycle > 0
        with self.ctx.autocast():
            fake_b, fake_a = nets["G_AB"](a), nets["G_BA"](b)
            rec_a, rec_b = nets["G_BA"](fake_b), nets["G_AB"](fake_a)
            idt_a = nets["G_BA"](a) if identity else None
            idt_b = nets["G_AB"](b) if identity else None
            d_fake_b, d_fake_a = nets["D_B"](fake_b).float(), nets["D_A"](fake_a).float()
        scratch.update(fake_a=fake_a.detach(), fake_b=fake_b.detach())
        return GInputs(a, b, rec_a, rec_b, idt_a, idt_b, d_fake_b, d_fake_a)

    def _d_inputs(self, scratch: dict, r: int) -> DInputs:
        nets, noise, (a, b) = self.ctx.nets, self.ctx.noise, scratch["batch"].x
        fake_a = self.pools["a"].query(scratch["fake_a"], noise).to(a.dtype)
        fake_b = self.pools["b"].query(scratch["fake_b"], noise).to(b.dtype)
        with self.ctx.autocast():
            return DInputs(nets["D_A"](a).float(), nets["D_A"](fake_a).float(),
                           nets["D_B"](b).float(), nets["D_B"](fake_b).float())

    # ---- state: the image pools ----------------------------------------------------------------
    def state(self) -> tuple:
        tensors = {f"pool_{k}": p.state() for k, p in self.pools.items() if p.count}
        return tensors, {"pool_counts": {k: p.count for k, p in self.pools.items()}}

    def load_state(self, tensors: dict, meta: dict) -> None:
        counts = meta.get("pool_counts", {})
        like = to_float(self.data.x[:1]) if self.data is not None else torch.zeros(1, *self.image_shape)
        like = like[..., :self.image_shape[1], :self.image_shape[2]]
        for k, pool in self.pools.items():
            pool.load(tensors.get(f"pool_{k}"), int(counts.get(k, 0)), like)

    # ---- drawing -------------------------------------------------------------------------------
    def fixed_inputs(self, n: int, device, generator: torch.Generator) -> tuple:
        """``n`` real images of each domain (image i of a labelled domain shows class i mod K), centre-cropped."""
        if self.data is None:
            raise GankitError("mode cyclegan draws its grids from real images; it needs its data (setup)")
        k = min(max(1, n // 6), len(self.data), len(self.data.b))  # 6 rows: inputs, translations, reconstructions
        return tuple(_pick(d, k, generator, self.image_shape).to(device) for d in (self.data, self.data.b))

    def draw(self, nets: dict, inputs: tuple) -> torch.Tensor:
        """Rows: a, G_AB(a), G_BA(G_AB(a)), b, G_BA(b), G_AB(G_BA(b))."""
        a, b = inputs
        ab, ba = nets["G_AB"](a), nets["G_BA"](b)
        return torch.cat([a, ab, nets["G_BA"](ab), b, ba, nets["G_AB"](ba)])

    def grid_columns(self, n_images: int) -> int:
        return max(1, n_images // 6)

    def report_panels(self, run) -> list:
        """Translation rows of held-out images of both domains (test split where there is one) at the checkpoint."""
        from ..data.unpaired import load_unpaired
        from .base import Panel

        try:
            self.data = load_unpaired(self.cfg.data, "test", run.device, crop=False)
        except (GankitError, OSError) as exc:  # a report never downloads: MNIST needs its data_dir
            return [Panel("Translations", f"The test images of the two domains could not be loaded ({exc}).")]
        k = 8
        inputs = self.fixed_inputs(6 * k, run.device, torch.Generator(run.device).manual_seed(0))
        nets = {n: run.network(n) for n in ("G_AB", "G_BA")}
        with torch.no_grad():
            images = self.draw(nets, inputs).float()
        text = (f"Rows: A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B)) for {k} test images of each domain "
                f"({self.data.name} and {self.data.b.name}), {run.checkpoint.name}, sampling weights.")
        return [Panel("Translations", text, images=[("translations and reconstructions", images, k)])]


def _pick(data, k: int, generator: torch.Generator, shape: tuple) -> torch.Tensor:
    """``k`` images of ``data`` in a random order drawn from ``generator``; with labels, image i shows class
    i mod K where the data has it."""
    order = torch.randperm(len(data), generator=generator, device=generator.device).cpu()
    y = data.y.cpu()[order]
    classes = int(y.max()) + 1 if len(y) else 0
    chosen, used = [], set()
    for i in range(k):
        hits = (y == i % classes).nonzero().flatten().tolist() if classes > 1 else []
        j = next((h for h in hits if h not in used), next(h for h in range(len(order)) if h not in used))
        used.add(j)
        chosen.append(int(order[j]))
    x = data.x[torch.tensor(chosen, device=data.x.device)]
    h, w = shape[1], shape[2]
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    return to_float(x[:, :, top:top + h, left:left + w])
