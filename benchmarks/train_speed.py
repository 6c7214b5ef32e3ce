"""Benchmark: gankit's trainer against a plain-PyTorch fp32 loop of the same GAN, run alternately.

The reference is the textbook loop written out below: the preset's DCGAN G and D, the non-saturating
loss with a lazy R1 penalty (weight 0.5 every 4 D steps), Adam(1e-3, betas 0/0.99), an EMA copy of G
(decay 0.999), batch 64, data already in memory. gankit runs ``mnist-dcgan`` (without its cluster code,
``model.codes=0``, which the plain loop does not have) through `Trainer.run()`,
with everything that includes (logging every 50 steps, health checks, grids, checkpoints). The two are
timed alternately in this process, in ABBA order, so machine drift cancels in their ratio.

Also measured: FLOPs per image (torch.utils.flop_counter over one R1 cycle), achieved GFLOP/s against
the measured GEMM peak in fp32 and bf16, peak memory, sampling throughput of the trained generator, and
gankit at each precision it offers (plus channels-last and, with --compile, torch.compile), so the table
shows why ``--precision auto`` picks what it picks.

    OMP_NUM_THREADS=2 python benchmarks/train_speed.py --data-dir ../shared/data/mnist [--device auto]
        [--steps 300] [--repeats 4] [--variant-steps 4] [--variant-rounds 4] [--compile] [--set KEY=VALUE]

Writes benchmarks/results/train_speed.json and train_speed.md.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_peak, machine, peak_memory_mb, sync, write_results  # noqa: E402
from gankit.data import to_float  # noqa: E402

BATCH, Z_DIM, LR, BETAS, EMA_DECAY, R1_WEIGHT, R1_EVERY = 64, 100, 1e-3, (0.0, 0.99), 0.999, 0.5, 4


# ---- the reference: a textbook fp32 loop ------------------------------------------------------

class ReferenceLoop:
    """Plain PyTorch: D ascends log D(x) + log(1 - D(G(z))) - R1, G ascends log D(G(z)); Adam; EMA of G."""

    def __init__(self, x_train: torch.Tensor, seed: int = 0):
        from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator

        torch.manual_seed(seed)
        self.x, self.device = x_train, x_train.device
        self.G = DCGANGenerator(Z_DIM, (1, 28, 28), 64, "batch", "relu").to(self.device)
        self.D = DCGANDiscriminator((1, 28, 28), 64, "none", "leaky_relu").to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS)
        self.order, self.pos, self.d_steps = torch.randperm(len(x_train), device=self.device), 0, 0

    def batch(self) -> torch.Tensor:
        if self.pos + BATCH > len(self.x):
            self.order, self.pos = torch.randperm(len(self.x), device=self.device), 0
        idx = self.order[self.pos:self.pos + BATCH]
        self.pos += BATCH
        return to_float(self.x[idx])  # uint8 in memory, float per batch, as gankit does

    def step(self) -> None:
        x_real = self.batch()
        z = torch.randn(BATCH, Z_DIM, device=self.device)
        x_fake = self.G(z)
        # (1) D step: non-saturating D loss, plus R1 = ||grad_x D(x_real)||^2 every R1_EVERY steps
        loss_d = F.softplus(-self.D(x_real)).mean() + F.softplus(self.D(x_fake.detach())).mean()
        if self.d_steps % R1_EVERY == 0:
            x = x_real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(x).sum(), x, create_graph=True)
            loss_d = loss_d + R1_WEIGHT * R1_EVERY * grad.pow(2).sum([1, 2, 3]).mean()
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        self.d_steps += 1
        # (2) G step through the updated D: maximise log D(G(z))
        self.D.requires_grad_(False)
        loss_g = F.softplus(-self.D(x_fake)).mean()
        self.opt_g.zero_grad()
        loss_g.backward()
        self.D.requires_grad_(True)
        self.opt_g.step()
        # (3) EMA of G's weights
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.lerp_(p, 1 - EMA_DECAY)
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` iterations (one real batch each)."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        return time.perf_counter() - start


# ---- gankit -------------------------------------------------------------------------------------

def gankit_trainer(data, steps: int, device: str, workdir: Path, *overrides: str):
    from gankit import resolve
    from gankit.engine import Trainer

    # model.codes=0: the preset's networks without its cluster code, so both sides run the same arithmetic
    cfg = resolve("mnist-dcgan", ("model.codes=0", "train.progress=false", "train.tensorboard=false",
                                  f"train.images={steps * BATCH}", f"train.device={device}", *overrides))
    return Trainer(cfg, Path(tempfile.mkdtemp(dir=workdir)), data=data)


def time_gankit(data, steps: int, device: torch.device, workdir: Path, *overrides: str) -> tuple:
    """(seconds of Trainer.run() for ``steps`` G steps, the trainer)."""
    t = gankit_trainer(data, steps, str(device), workdir, *overrides)
    sync(device)
    start = time.perf_counter()
    t.run()
    sync(device)
    return time.perf_counter() - start, t


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose autograd hooks reject R1's autograd.grad."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def flops_per_image(x_train: torch.Tensor) -> float:
    """FLOPs (torch.utils.flop_counter) of one R1 cycle (R1_EVERY iterations) of the reference loop, per real image."""
    loop = ReferenceLoop(x_train)
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        loop.run(R1_EVERY)
    return counter.get_total_flops() / (R1_EVERY * BATCH)


def sampling_rate(G: torch.nn.Module, n: int) -> float:
    from gankit.generate import generate

    device = next(G.parameters()).device
    G.eval()
    generate(G, 500)
    sync(device)
    start = time.perf_counter()
    generate(G, n)
    sync(device)
    return n / (time.perf_counter() - start)


def restore_backend_flags(flags: tuple) -> None:
    """Undo the TF32 switches a reduced-precision gankit run sets, so the fp32 reference stays textbook."""
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


# ---- the benchmark ----------------------------------------------------------------------------

def compare(data, args, device, workdir, flags) -> dict:
    """Alternate reference and gankit (ABBA) ``repeats`` times; images/s of each and their ratio."""
    ref_rates, gk_rates, ratios = [], [], []
    images = args.steps * BATCH
    for r in range(args.repeats):
        order = ("ref", "gankit") if r % 2 == 0 else ("gankit", "ref")
        rates = {}
        for who in order:
            if who == "ref":
                restore_backend_flags(flags)
                rates[who] = images / ReferenceLoop(data.x, seed=r).run(args.steps)
            else:
                seconds, trainer = time_gankit(data, args.steps, device, workdir, f"train.seed={r}", *args.set)
                rates[who] = images / seconds
        ref_rates.append(rates["ref"])
        gk_rates.append(rates["gankit"])
        ratios.append(rates["gankit"] / rates["ref"])
        print(f"repeat {r}: reference {rates['ref']:.1f} img/s, gankit {rates['gankit']:.1f} img/s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    return {"reference_images_per_s": ref_rates, "gankit_images_per_s": gk_rates, "ratio": ratios,
            "ratio_min": min(ratios), "ratio_median": statistics.median(ratios), "ratio_max": max(ratios),
            "gankit_speed": trainer.speed.to_dict(), "trainer": trainer}


def step_rate(trainer, data, steps: int, offset: int) -> float:
    """Images/s of ``steps`` bare training iterations (steps + EMA; no logging, grids or checkpoints)."""
    from gankit.modes import Batch

    sync(trainer.device)
    start = time.perf_counter()
    phase_steps = {"D": offset}  # the lazy R1 schedule counts D steps
    for i in range(steps):
        j = (offset + i) * BATCH % (len(data.x) - BATCH)
        trainer.stepper.iteration(Batch([to_float(data.x[j:j + BATCH])]), offset + i, phase_steps, False)
        trainer.parts.update_emas(trainer.cfg.train.ema_start)
    sync(trainer.device)
    return steps * BATCH / (time.perf_counter() - start)


def variants(data, args, device, workdir, flags) -> list:
    """gankit's step at each precision it offers here, with channels-last and (--compile) torch.compile.

    Every variant runs ``--variant-steps`` iterations per round, the order reversed every other round, for
    ``--variant-rounds`` rounds after a warm-up (which for compile includes compiling); the ratio is to the
    fp32 step of the same round.
    """
    names = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    options = {f"precision {p}": (f"train.precision={p}",) for p in names}
    options["fp32 + channels_last"] = ("train.precision=fp32", "train.channels_last=true")
    if args.compile:
        options["fp32 + compile"] = ("train.precision=fp32", "train.compile=true")
    trainers, warmup = {}, {}
    for label, overrides in options.items():
        trainers[label] = gankit_trainer(data, 10 ** 6, str(device), workdir, *overrides)
        start = time.perf_counter()
        step_rate(trainers[label], data, 2, 0)
        warmup[label] = time.perf_counter() - start
    rates = {label: [] for label in options}
    for r in range(args.variant_rounds):
        for label in (list(options) if r % 2 == 0 else list(reversed(options))):
            rates[label].append(step_rate(trainers[label], data, args.variant_steps, 2 + r * args.variant_steps))
    rows = []
    for label, rs in rates.items():
        ratios = [a / b for a, b in zip(rs, rates["precision fp32"])]
        rows.append({"variant": label, "speed": trainers[label].speed.to_dict(), "steps_per_round": args.variant_steps,
                     "images_per_s": rs, "median_images_per_s": statistics.median(rs),
                     "ratio_to_fp32": ratios, "ratio_median": statistics.median(ratios),
                     "warmup_seconds": round(warmup[label], 2)})
        print(f"{label}: median {rows[-1]['median_images_per_s']:.1f} img/s, x{rows[-1]['ratio_median']:.3f} "
              f"of fp32 (warm-up {warmup[label]:.1f} s)", flush=True)
    restore_backend_flags(flags)
    return rows


def markdown(rec: dict) -> str:
    m, c, p = rec["machine"], rec["comparison"], rec["gemm_peak_gflops"]
    lines = [f"# Training throughput: gankit `mnist-dcgan` vs a plain-PyTorch fp32 loop ({rec['date'][:16]} UTC)", "",
             f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}, CPU capability "
             f"{m['cpu_capability']}, flags {', '.join(m['cpu_flags']) or '-'}; device {m['device']}"
             f"{' (' + m['gpu'] + ')' if 'gpu' in m else ''}; torch {m['torch']}; load average at start "
             f"{m['load_average_at_start'][0]:.2f}.", "", f"Command: `{rec['command']}`", "",
             "| repeat | reference img/s | gankit img/s | ratio |", "|---|---|---|---|"]
    for i, (a, b, r) in enumerate(zip(c["reference_images_per_s"], c["gankit_images_per_s"], c["ratio"])):
        lines.append(f"| {i} | {a:.1f} | {b:.1f} | {r:.3f} |")
    lines += ["", f"Ratio gankit / reference over {len(c['ratio'])} repeats of {rec['steps']} steps: min "
              f"{c['ratio_min']:.3f}, median {c['ratio_median']:.3f}, max {c['ratio_max']:.3f} "
              f"(gankit: {c['gankit_speed']['precision']}, {c['gankit_speed']['reason']}).", "",
              f"GEMM peak ({rec['gemm_size']}^3): " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in p.items()) + ".",
              f"FLOPs per real image (forward + backward of D and G, R1 amortised): "
              f"{rec['flops_per_image'] / 1e6:.1f} MFLOP; achieved: reference "
              f"{rec['achieved_gflops']['reference']:.1f} GFLOP/s ({rec['fraction_of_fp32_peak']['reference']:.0%}"
              f" of fp32 peak), gankit {rec['achieved_gflops']['gankit']:.1f} GFLOP/s "
              f"({rec['fraction_of_fp32_peak']['gankit']:.0%}).",
              f"Peak memory: {', '.join(f'{k} {v}' for k, v in rec['peak_memory'].items())}. "
              f"Sampling (`gankit.generate`, EMA G): {rec['sampling_images_per_s']:.0f} img/s.", "",
              "Bare training steps of each option gankit offers, alternated in rounds (ratio to the fp32 step of the "
              "same round):", "",
              "| variant | rounds x steps | median img/s | ratio to fp32: min / median / max | warm-up s |",
              "|---|---|---|---|---|"]
    for v in rec["variants"]:
        r = v["ratio_to_fp32"]
        lines.append(f"| {v['variant']} | {len(r)} x {v['steps_per_round']} | {v['median_images_per_s']:.1f} | "
                     f"{min(r):.3f} / {v['ratio_median']:.3f} / {max(r):.3f} | {v['warmup_seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with the four MNIST *-ubyte.gz files")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=300, help="G steps per timed measurement (default 300)")
    parser.add_argument("--repeats", type=int, default=4, help="alternating reference/gankit repeats (default 4)")
    parser.add_argument("--variant-steps", type=int, default=4, help="steps per variant and round (default 4)")
    parser.add_argument("--variant-rounds", type=int, default=4, help="rounds over the variants (default 4)")
    parser.add_argument("--gemm-size", type=int, default=0, help="GEMM side (default 1024 on CPU, 4096 on GPU)")
    parser.add_argument("--samples", type=int, default=10000, help="images for the sampling rate (default 10000)")
    parser.add_argument("--compile", action="store_true", help="also time fp32 + torch.compile (slow to compile)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for gankit's side of the comparison, e.g. train.precision=fp32")
    parser.add_argument("--name", default="train_speed", help="results file name (default train_speed)")
    args = parser.parse_args()

    from gankit.data import load_dataset
    from gankit.device import pick_device

    device = pick_device(args.device)
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    n = args.gemm_size or (1024 if device.type == "cpu" else 4096)
    info = machine(device)
    peak = {name: gemm_peak(device, dtype, n) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"GEMM peak {n}^3: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()), flush=True)
    data = load_dataset("mnist", args.data_dir, "train", device)
    flops = flops_per_image(data.x)
    with tempfile.TemporaryDirectory() as tmp:
        comparison = compare(data, args, device, Path(tmp), flags)
        trainer = comparison.pop("trainer")
        memory = peak_memory_mb(device)  # before the variants: bf16 emulation and compile add their own
        sampling = sampling_rate(trainer.sample_network(), args.samples)
        rows = variants(data, args, device, Path(tmp), flags)
    achieved = {"reference": flops * statistics.median(comparison["reference_images_per_s"]) / 1e9,
                "gankit": flops * statistics.median(comparison["gankit_images_per_s"]) / 1e9}
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/train_speed.py " + " ".join(sys.argv[1:]), "steps": args.steps,
        "machine": info, "gemm_size": n, "gemm_peak_gflops": peak, "flops_per_image": flops,
        "gankit_overrides": args.set, "comparison": comparison, "achieved_gflops": achieved,
        "fraction_of_fp32_peak": {k: v / peak["fp32"] for k, v in achieved.items()},
        "peak_memory": memory, "sampling_images_per_s": sampling, "variants": rows,
    }
    write_results(args.name, record, markdown(record))
    print(markdown(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
