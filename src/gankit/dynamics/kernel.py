"""The discriminator's empirical neural tangent kernel and the function-space step it predicts.

For a discriminator with parameters theta and logit output D(x), one gradient
ascent step of size lr on J changes D, to first order in lr, by

    dD(x) = lr * sum_y K(x, y) dJ/dD(y),     K(x, y) = sum_j dD(x)/dtheta_j * dD(y)/dtheta_j

(the kernel view of ARCHITECTURE.md, with J = mean f1(D(x_real)) + mean
f2(D(G(z))) as in the trainer). K is computed with torch.func: per-sample
Jacobians by ``vmap(jacrev(functional_call))``, contracted over parameters.
Points are processed in chunks so that a Jacobian block never exceeds
``max_bytes``. The network is evaluated in eval mode, so BatchNorm uses its
running statistics and spectral normalisation its stored vectors: in training
mode D(x) would depend on the rest of the batch and K would not be a kernel.

A discriminator that takes labels (conditional runs, and cluster-coded runs whose
D is told each image's cluster) is a function of the pair (x, y): its kernel is
K((x, y), (x', y')), and every function here takes the points' labels beside them.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from ..errors import GankitError
from ..nets.conditional import cycle_labels, n_classes_of
from ..objectives import Objective
from ..run import load_discriminator  # noqa: F401  (re-exported: the kernel tools load D this way)


def _jacobian_rows(D: torch.nn.Module, params: dict, buffers: dict, x: torch.Tensor,
                   labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample gradients of D's logit: x (n, ...) [with labels (n,)] -> (n, P), P = number of parameters."""
    point = (x,) if labels is None else (x, labels)

    def logit(p, *one):  # D at a single point: (x_i,) or (x_i, y_i), each with a batch dimension of 1
        return functional_call(D, (p, buffers), tuple(t.unsqueeze(0) for t in one)).reshape(())
    jac = vmap(jacrev(logit), (None,) + (0,) * len(point))(params, *point)
    return torch.cat([jac[k].reshape(x.shape[0], -1) for k in params], dim=1)


def _take(labels: Optional[torch.Tensor], part: slice) -> Optional[torch.Tensor]:
    return None if labels is None else labels[part]


def logits_of(D: torch.nn.Module, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """D(x) (N,), or D(x, labels) for a discriminator that takes labels."""
    return D(x) if labels is None else D(x, labels)


def _chunks(n: int, size: int) -> list:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def ntk(D: torch.nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None, max_bytes: int = 2 ** 28,
        x_labels: Optional[torch.Tensor] = None, y_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The empirical NTK of D's logit between point sets.

    Args:
        D: a network mapping (N, ...) to logits (N,) (every gankit discriminator).
        x: points (N, ...); y: points (M, ...), default ``x``.
        max_bytes: memory bound for one Jacobian block (points x parameters).
        x_labels (N,), y_labels (M,): the points' labels, for a D that takes them (default: ``x_labels`` for y
            when y is x).
    Returns:
        K (N, M) in D's dtype, ``K[i, j] = <grad_theta D(x_i), grad_theta D(y_j)>``.
    """
    was_training = D.training
    D.eval()
    try:
        params = {k: v.detach() for k, v in D.named_parameters() if v.requires_grad}
        buffers = {k: v.detach() for k, v in D.named_buffers()}
        n_params = sum(v.numel() for v in params.values())
        item = next(iter(params.values())).element_size()
        size = max(1, int(max_bytes // max(1, n_params * item)))
        same = y is None
        y, y_labels = (x, x_labels) if same else (y, y_labels)
        K = torch.empty(x.shape[0], y.shape[0], dtype=next(iter(params.values())).dtype)
        for a in _chunks(x.shape[0], size):
            Ja = _jacobian_rows(D, params, buffers, x[a], _take(x_labels, a))
            for b in _chunks(y.shape[0], size):
                if same and b.start < a.start:
                    K[a, b] = K[b, a].T
                    continue
                Jb = Ja if same and b == a else _jacobian_rows(D, params, buffers, y[b], _take(y_labels, b))
                K[a, b] = Ja @ Jb.T
        return K
    finally:
        D.train(was_training)


def kernel_eigenvalues(K: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (N,) of a symmetric kernel matrix (N, N), largest first."""
    return torch.linalg.eigvalsh(0.5 * (K + K.T)).flip(0)


def objective_gradient(objective: Objective, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """dJ/dD at each point: (N_r,), (N_f,) logits -> (N_r + N_f,), J = -objective.loss_d (the trainer's J)."""
    lr_ = logits_real.detach().clone().requires_grad_(True)
    lf = logits_fake.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        J = -objective.loss_d(lr_, lf)
        gr, gf = torch.autograd.grad(J, (lr_, lf), allow_unused=True)
    gr = torch.zeros_like(lr_) if gr is None else gr
    gf = torch.zeros_like(lf) if gf is None else gf
    return torch.cat([gr, gf]).to(logits_real.dtype)


def function_space_step(D: torch.nn.Module, objective: Objective, x_real: torch.Tensor, x_fake: torch.Tensor,
                        lr: float, x_eval: Optional[torch.Tensor] = None, y_real: Optional[torch.Tensor] = None,
                        y_fake: Optional[torch.Tensor] = None, y_eval: Optional[torch.Tensor] = None) -> dict:
    """Compare the kernel's predicted change of D with one real gradient step on J.

    Args:
        D: the discriminator (left unchanged; a copy takes the step), evaluated in eval mode.
        x_real (N_r, ...), x_fake (N_f, ...): the batch J is computed on.
        lr: step size of plain gradient ascent on D's parameters.
        x_eval: where to compare (E, ...); default the batch itself (real then fake).
        y_real, y_fake, y_eval: the points' labels, for a D that takes them.
    Returns:
        ``{"predicted": (E,), "actual": (E,), "relative_error": float}`` with
        predicted = lr * K(x_eval, batch) dJ/dD(batch), actual = D'(x_eval) - D(x_eval).
    """
    D_eval = copy.deepcopy(D).eval()
    batch = torch.cat([x_real, x_fake])
    y_batch = None if y_real is None else torch.cat([y_real, y_fake])
    if x_eval is None:
        x_eval, y_eval = batch, y_batch
    with torch.no_grad():
        g = objective_gradient(objective, logits_of(D_eval, x_real, y_real), logits_of(D_eval, x_fake, y_fake))
        before = logits_of(D_eval, x_eval, y_eval)
    predicted = lr * ntk(D_eval, x_eval, batch, x_labels=y_eval, y_labels=y_batch) @ g
    J = -objective.loss_d(logits_of(D_eval, x_real, y_real), logits_of(D_eval, x_fake, y_fake))
    params = [p for p in D_eval.parameters() if p.requires_grad]
    step = torch.autograd.grad(J, params, allow_unused=True)
    with torch.no_grad():
        for p, s in zip(params, step):
            if s is not None:
                p.add_(lr * s)
        actual = logits_of(D_eval, x_eval, y_eval) - before
    err = float(torch.linalg.vector_norm(predicted - actual) / torch.linalg.vector_norm(actual).clamp_min(1e-300))
    return {"predicted": predicted.detach(), "actual": actual.detach(), "relative_error": err}


def toy_points(n: int, dim: int = 1, lim: float = 1.0) -> torch.Tensor:
    """Evenly spaced points (n, dim) in [-lim, lim]^dim (a line for dim 1, a grid for dim 2), float32."""
    if dim == 1:
        return torch.linspace(-lim, lim, n)[:, None]
    side = int(np.ceil(np.sqrt(n)))
    g = torch.linspace(-lim, lim, side)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    return torch.stack([X.ravel(), Y.ravel()], 1)[:n]


def run_points(run_dir, cfg, n: int, source: str = "mixed", seed: int = 0, data_dir: Optional[str] = None,
               checkpoint: Optional[str] = None) -> tuple:
    """(x_real (n_r, C, H, W), x_fake (n_f, C, H, W), y_real, y_fake) for a run's kernel, n = n_r + n_f.

    ``source``: ``"mixed"`` (half training images, half samples of the run's
    generator), ``"real"`` or ``"fake"``. Images are drawn with ``seed``.
    The labels are None unless the run's D takes them: then y_real holds the
    training images' labels (their clusters, for a cluster-coded run) and
    y_fake the labels the samples were drawn with (their codes c(z)).
    """
    from ..data import load_dataset, to_float
    from ..generate import generate
    from ..run import load_generator
    from ..latent import latent_codes
    from ..data.clusters import CLUSTERS_FILE, read_clusters

    clustered = cfg.model.codes > 0 and cfg.model.code_kind == "clusters"
    labelled = clustered or cfg.model.conditional != "none"

    if source not in ("mixed", "real", "fake"):
        raise GankitError(f"--source must be mixed, real or fake, got {source!r}")
    if n < 2:
        raise GankitError(f"--points must be at least 2, got {n}")
    n_real = {"mixed": n // 2, "real": n, "fake": 0}[source]
    x_real = x_fake = y_real = y_fake = None
    if n_real:
        d = cfg.data
        data = load_dataset(d.name, data_dir or d.data_dir, "train", "cpu", d.image_size, d.channels, d.limit or None)
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n_real]
        x_real, y_real = to_float(data.x[idx]), data.y[idx]
        if clustered:
            path = Path(run_dir) / CLUSTERS_FILE
            if not path.is_file():
                raise GankitError(f"{path} is missing: the kernel of a cluster-coded D needs each training image's "
                                  f"cluster; use --source fake")
            y_real = read_clusters(run_dir)[0][idx]
    if n - n_real:
        G, _ = load_generator(run_dir, checkpoint, device="cpu")
        x_fake = generate(G, n - n_real, seed=seed)
        if clustered:  # the codes generate() drew the samples with
            y_fake = G.codes(latent_codes(n - n_real, G.z_dim, seed))
        elif labelled:
            y_fake = cycle_labels(n_classes_of(G), n - n_real)
    shape = (x_real if x_real is not None else x_fake).shape[1:]
    empty, no_labels = torch.zeros((0, *shape)), torch.zeros(0, dtype=torch.long)
    x_real, x_fake = (x_real if x_real is not None else empty), (x_fake if x_fake is not None else empty)
    if not labelled:
        return x_real, x_fake, None, None
    return x_real, x_fake, (y_real if n_real else no_labels), (y_fake if n - n_real else no_labels)
