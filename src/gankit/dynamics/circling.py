"""An experiment: does the architecture make real GAN training circle around the rest point?

The point-wise field predicts, at each x, a spiral of (D(x), p_g(x)) around
(D0, p_d(x)). Here small gankit MLPs (G and D, with or without a normalisation,
with a chosen activation) are trained on a 1D mixture of two Gaussians made in
code, with the objective's own ``loss_d``/``loss_g`` in the trainer's order (one
D step, then one G step on the same fake batch, Adam). At fixed probe points
the run records D(x) (in the objective's domain) and p_g(x), a Gaussian kernel
density estimate from a fixed set of G's samples (G in training mode, D in
eval mode; see `_probe`). Because a KDE smooths, the rest point uses the data density
smoothed by the same kernel, so a perfect G sits exactly on it. For each probe
the record gives the winding angle around the rest point (signed turns) and
a rotation index (the mean sine of the angle between the deviation from the
rest point and the next step: +1 circling, 0 radial motion or noise), and the
distance ratio (end / start); the point field's own prediction at that p_d,
|Im lambda| / |lambda|, is reported beside the measured rotation index.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from ..nets import MLPDiscriminator, MLPGenerator, activation, check_norm
from ..objectives import get_objective
from .field import point_field
from .linear import analyse_point, eigenvalues_of

MEANS = (-0.5, 0.5)     # the two modes, inside G's tanh range [-1, 1]
STD = 0.1


@dataclass(frozen=True)
class CirclingConfig:
    norm: str = "none"            # normalisation of G's and D's hidden layers: none | batch | layer | spectral
    activation: str = "relu"      # hidden activation of G and D: relu | leaky_relu | tanh | elu
    objective: str = "non-saturating"
    steps: int = 3000             # G steps, each after one D step
    batch_size: int = 128
    lr: float = 1e-3              # Adam for both, betas (0.5, 0.999) as in gankit's presets
    width: int = 32               # hidden units: G 32 -> 64, D 64 -> 32
    z_dim: int = 4
    probes: tuple = (-0.7, -0.5, -0.3, 0.3, 0.5, 0.7)
    record_every: int = 1         # steps between probe measurements (p_g oscillates with a period of ~20-40 steps)
    bandwidth: float = 0.05       # KDE bandwidth for p_g
    kde_samples: int = 4096       # G samples (fixed z) behind each KDE
    seed: int = 0


def mixture_density(x: torch.Tensor, smooth: float = 0.0) -> torch.Tensor:
    """Density (same shape as x) of the data mixture, convolved with N(0, smooth^2)."""
    s = math.sqrt(STD ** 2 + smooth ** 2)
    parts = [torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi)) for m in MEANS]
    return sum(parts) / len(MEANS)


def sample_mixture(n: int, generator: torch.Generator) -> torch.Tensor:
    """n samples (n, 1) of the data mixture."""
    k = torch.randint(len(MEANS), (n,), generator=generator)
    return (torch.tensor(MEANS)[k] + STD * torch.randn(n, generator=generator))[:, None]


def kde(samples: torch.Tensor, x: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Gaussian KDE of ``samples`` (M,) evaluated at ``x`` (P,) -> (P,)."""
    u = (x[:, None] - samples[None, :]) / bandwidth
    return torch.exp(-0.5 * u ** 2).mean(1) / (bandwidth * math.sqrt(2 * math.pi))


def winding(traj: np.ndarray, rest: np.ndarray, smooth: int = 3) -> dict:
    """Rotation versus approach of a recorded trajectory (K, 2) around ``rest`` (2,).

    Each coordinate's deviation from the rest point is divided by its standard
    deviation over the record (D and p_g have different units), then averaged
    over ``smooth`` consecutive records to damp minibatch noise. Returns

    - ``turns``: signed net angle swept around the rest point / 2 pi;
    - ``rotation_index``: mean of sin(angle between position and step), +1 for
      pure counter-clockwise circling, 0 for radial motion or pure noise;
    - ``radial_index``: mean of cos of that angle, -1 for a straight approach;
    - ``distance_ratio``: mean distance over the last 10% of records / the first
      distance, in the original units.
    """
    dev = traj - rest[None]
    z = dev / (dev.std(0) + 1e-12)
    if smooth > 1 and len(z) > smooth:
        kernel = np.ones(smooth) / smooth
        z = np.stack([np.convolve(z[:, i], kernel, mode="valid") for i in range(2)], 1)
    angle = np.unwrap(np.arctan2(z[:, 1], z[:, 0]))
    pos, step = z[:-1], np.diff(z, axis=0)
    norm = np.linalg.norm(pos, axis=1) * np.linalg.norm(step, axis=1)
    ok = norm > 0
    cross = (pos[:, 0] * step[:, 1] - pos[:, 1] * step[:, 0])[ok] / norm[ok]
    dot = (pos * step).sum(1)[ok] / norm[ok]
    r = np.linalg.norm(dev, axis=1)
    tail = max(1, len(r) // 10)
    return {"turns": float((angle[-1] - angle[0]) / (2 * math.pi)),
            "rotation_index": float(cross.mean()) if ok.any() else 0.0,
            "radial_index": float(dot.mean()) if ok.any() else 0.0,
            "distance_start": float(r[0]), "distance_end": float(r[-tail:].mean()),
            "distance_ratio": float(r[-tail:].mean() / max(r[0], 1e-12))}


def predicted_rotation(objective_name: str, p_d: float) -> dict:
    """The point field's rest point at this p_d: its class and rotation index |Im lambda| / |lambda|
    (the sine of the angle between position and velocity on a circular linear spiral)."""
    f = point_field(get_objective(objective_name), p_d)
    info = analyse_point(f, f.rest_points()[0])
    lam = eigenvalues_of(info)
    k = int(np.argmax(np.abs(lam.imag)))
    return {"classification": info["classification"], "d0": f.d0,
            "rotation_index": float(abs(lam[k].imag) / max(abs(lam[k]), 1e-300))}


def _probe(G, D, objective, z_fixed, probes, bandwidth) -> tuple:
    """(D(probes), p_g(probes)), float64 (P,) each.

    G runs in training mode, as it does when it trains, so that batch
    normalisation uses the statistics of the fixed z batch; its running
    statistics are restored afterwards. D runs in eval mode: with batch
    normalisation D(x) at a single point is defined only by running statistics.
    """
    saved = {k: v.clone() for k, v in G.named_buffers()}
    D.eval()
    with torch.no_grad():
        x_fake = G(z_fixed)[:, 0]
        d = objective.to_output(D(probes[:, None])).double()
        p_g = kde(x_fake, probes, bandwidth).double()
    D.train()
    with torch.no_grad():
        for k, v in G.named_buffers():
            v.copy_(saved[k])
    return d, p_g


def train_and_record(cfg: CirclingConfig) -> dict:
    """Train once and record (D(x), p_g(x)) at the probes. Returns arrays: ``steps`` (K,), ``d``, ``p_g`` (K, P)."""
    check_norm(cfg.norm), activation(cfg.activation)
    objective = get_objective(cfg.objective)
    with torch.random.fork_rng():  # seeded initial weights, global RNG state left alone
        torch.manual_seed(cfg.seed)
        G = MLPGenerator(cfg.z_dim, (1,), width=cfg.width, depth=2, norm=cfg.norm, act=cfg.activation)
        D = MLPDiscriminator((1,), width=cfg.width, depth=2, norm=cfg.norm, act=cfg.activation)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    noise = torch.Generator().manual_seed(cfg.seed + 1)
    z_fixed = torch.randn(cfg.kde_samples, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
    probes = torch.tensor(cfg.probes, dtype=torch.float32)
    steps, ds, ps = [], [], []
    for step in range(cfg.steps + 1):
        if step % cfg.record_every == 0 or step == cfg.steps:
            d, p_g = _probe(G, D, objective, z_fixed, probes, cfg.bandwidth)
            steps.append(step), ds.append(d.numpy()), ps.append(p_g.numpy())
        if step == cfg.steps:
            break
        x_real = sample_mixture(cfg.batch_size, noise)
        x_fake = G(torch.randn(cfg.batch_size, cfg.z_dim, generator=noise))
        # D ascends J = mean f1(D(x_real)) + mean f2(D(G(z))); G then ascends I = mean f3(D(G(z))).
        loss_d = objective.loss_d(D(x_real), D(x_fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        loss_g = objective.loss_g(D(x_fake))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
    return {"steps": np.array(steps), "d": np.array(ds), "p_g": np.array(ps)}


def run_circling(cfg: CirclingConfig) -> dict:
    """One training run and its per-probe rotation metrics, as JSON-ready values (plus arrays under ``record``)."""
    t0 = time.time()
    rec = train_and_record(cfg)
    p_smooth = mixture_density(torch.tensor(cfg.probes, dtype=torch.float64), cfg.bandwidth).numpy()
    probes = []
    for i, x in enumerate(cfg.probes):
        pred = predicted_rotation(cfg.objective, float(p_smooth[i]))
        rest = np.array([pred["d0"], p_smooth[i]])
        traj = np.stack([rec["d"][:, i], rec["p_g"][:, i]], 1)
        probes.append({"x": x, "p_d_smoothed": float(p_smooth[i]), "rest_point": rest.tolist(),
                       "predicted": pred, **winding(traj, rest)})
    summary = {
        "mean_abs_turns": float(np.mean([abs(p["turns"]) for p in probes])),
        "mean_rotation_index": float(np.mean([p["rotation_index"] for p in probes])),
        "mean_radial_index": float(np.mean([p["radial_index"] for p in probes])),
        "median_distance_ratio": float(np.median([p["distance_ratio"] for p in probes])),
        "mean_predicted_rotation_index": float(np.mean([p["predicted"]["rotation_index"] for p in probes])),
    }
    return {"config": asdict(cfg), "probes": probes, "summary": summary, "seconds": round(time.time() - t0, 1),
            "record": rec}


def compare(base: CirclingConfig, norms, activations, seeds: int = 1) -> list:
    """`run_circling` for every (norm, activation, seed); one summary row per (norm, activation).

    Each row averages the seed summaries and keeps the seed-0 record for plots.
    """
    rows = []
    for norm in norms:
        for act in activations:
            runs = [run_circling(replace(base, norm=norm, activation=act, seed=base.seed + s)) for s in range(seeds)]
            keys = runs[0]["summary"].keys()
            rows.append({"norm": norm, "activation": act, "seeds": seeds,
                         "summary": {k: float(np.mean([r["summary"][k] for r in runs])) for k in keys},
                         "per_seed": [r["summary"] for r in runs], "first_run": runs[0]})
    return rows
