"""Label-free terms gankit does not ship, tried on `digits2mnist-cyclegan` (docs/cyclegan.md, recipe search).

    python benchmarks/cyclegan_terms.py RUN_DIR --data-dir ../shared/data/mnist --shape-weight 10 [--set k=v ...]
    gankit evaluate RUN_DIR --direction a2b --split all --data-dir ../shared/data/mnist

Each term is added to the `cyclegan` mode's G phase for this process only (the run folder holds an ordinary
cyclegan run: evaluate, translate and report read it as any other):

* ``--shape-weight W`` (terms ``shape_a``, ``shape_b``): W x L1 between a translation and its source after
  ``--shape-pool K`` average pooling (7x7 maps of 28x28 digits at K=4), or with ``--shape-blur S`` after
  normalising each image to unit mass and a Gaussian blur of S pixels: the layout must survive the translation.
* ``--cycle-noise S``: Gaussian noise of standard deviation S added to a translation before it is translated
  back, so that the cycle cannot be closed through a signal too faint to see (Bashkirova et al. 2019).
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import gankit
from gankit.modes import cyclegan as cg
from gankit.modes.base import Term


def _shape(x: torch.Tensor, pool: int, blur: float) -> torch.Tensor:
    x = (x.float() + 1) / 2
    if not blur:
        return F.avg_pool2d(x, pool)
    x = x / x.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6) * x.shape[2] * x.shape[3]
    r = int(3 * blur)
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-t ** 2 / (2 * blur ** 2))
    k = (k / k.sum()).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), k.view(-1, 1, 1, 2 * r + 1), groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, r, r)), k.view(-1, 1, 2 * r + 1, 1), groups=x.shape[1])


def patch(weight: float, pool: int, blur: float, noise: float) -> None:
    if weight <= 0 and noise <= 0:
        return  # the preset as it is
    phases, g_inputs = cg.CycleGanMode.phases, cg.CycleGanMode._g_inputs

    def new_phases(self, ctx):
        out = phases(self, ctx)
        if weight > 0:
            def shape_l1(x, y):
                return (_shape(x, pool, blur) - _shape(y, pool, blur)).abs().mean()
            out[0].terms += [Term("shape_a", lambda i: shape_l1(i.fake_b, i.a), weight),
                             Term("shape_b", lambda i: shape_l1(i.fake_a, i.b), weight)]
        return out

    def new_g_inputs(self, scratch, r):
        inputs = g_inputs(self, scratch, r)
        nets, (a, b), g = self.ctx.nets, scratch["batch"].x, self.ctx.noise
        with self.ctx.autocast():  # the translations again, with their graph (scratch keeps detached copies)
            inputs.fake_b, inputs.fake_a = nets["G_AB"](a), nets["G_BA"](b)
            if noise > 0:
                def noisy(x):
                    return x + noise * torch.randn(x.shape, generator=g, device=x.device).to(x.dtype)
                inputs.rec_a, inputs.rec_b = nets["G_BA"](noisy(inputs.fake_b)), nets["G_AB"](noisy(inputs.fake_a))
        return inputs

    cg.CycleGanMode.phases, cg.CycleGanMode._g_inputs = new_phases, new_g_inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--shape-weight", type=float, default=0.0)
    ap.add_argument("--shape-pool", type=int, default=4)
    ap.add_argument("--shape-blur", type=float, default=0.0)
    ap.add_argument("--cycle-noise", type=float, default=0.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    patch(args.shape_weight, args.shape_pool, args.shape_blur, args.cycle_noise)
    gankit.train("digits2mnist-cyclegan", [f"data.data_dir={args.data_dir}", "train.progress=false", *args.set],
                 run_dir=args.run_dir)


if __name__ == "__main__":
    main()
