"""Figures for the dynamics tools: phase portraits, eigenvalues, step sizes, kernels, circling.

Plotting only: every function takes arrays and dicts computed elsewhere
(`linear.field_grid`, `linear.analyse_point`, `trajectories`, `stepsize`,
`kernel`, `circling`) and writes one PNG. matplotlib is imported inside the
functions, with the Agg backend, so importing gankit never needs a display.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_write, image_bytes

_DPI = 80


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    """Write ``fig`` as a PNG with a 128-colour palette (several times smaller, same look for line plots)."""
    import io

    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    _plt().close(fig)
    buf.seek(0)
    with Image.open(buf) as im:
        png = image_bytes(im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT), optimize=True)
    atomic_write(path, png)
    return path


def _draw_portrait(ax, grid: dict, rest_points: list, trajectories: list, names: tuple, title: str) -> None:
    speed = np.hypot(grid["u"], grid["v"])
    ax.streamplot(grid["x"], grid["y"], grid["u"], grid["v"], color=np.log10(speed + 1e-12), cmap="Greys",
                  density=1.1, linewidth=0.7, arrowsize=0.8)
    for label, states in trajectories:
        ax.plot(states[:, 0], states[:, 1], lw=1.4, label=label)
        ax.plot(states[0, 0], states[0, 1], "o", ms=4, color=ax.lines[-1].get_color())
    for info in rest_points:
        x, y = info["point"]
        ax.plot(x, y, "o", ms=9, mfc="tab:red" if info["stable"] else "white", mec="tab:red", mew=2)
        ax.annotate(info["classification"], (x, y), textcoords="offset points", xytext=(8, 8), fontsize=8,
                    color="tab:red")
    ax.set_xlim(grid["x"][0], grid["x"][-1])
    ax.set_ylim(grid["y"][0], grid["y"][-1])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title, fontsize=10)
    if trajectories:
        ax.legend(fontsize=7, loc="upper right")


def phase_portrait(grid: dict, rest_points: list, path, trajectories: list = (), names: tuple = ("D", "p_g"),
                   title: str = "") -> Path:
    """Streamlines of the field with rest points (filled: stable) and trajectories overlaid.

    Args:
        grid: `linear.field_grid` output. rest_points: `linear.analyse_point` dicts.
        trajectories: (label, states (K, 2)) pairs. names: axis labels.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    _draw_portrait(ax, grid, rest_points, list(trajectories), names, title)
    return _save(fig, path)


def eigenvalue_plot(entries: list, path, title: str = "Jacobian eigenvalues") -> Path:
    """Eigenvalues in the complex plane; ``entries`` are (label, complex array) pairs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for label, lam in entries:
        lam = np.asarray(lam, dtype=complex)
        ax.plot(lam.real, lam.imag, "o", ms=7, label=label, alpha=0.8)
    ax.axvline(0, color="k", lw=0.6)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def stepsize_plot(result: dict, eigenvalues: np.ndarray, path, title: str = "") -> Path:
    """Left: eigenvalues of J; right: spectral radius of the update map against the learning rate.

    ``result`` is `stepsize.analyse_stepsize` output.
    """
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    lam = np.asarray(eigenvalues, dtype=complex)
    a.plot(lam.real, lam.imag, "o", color="tab:red")
    a.axvline(0, color="k", lw=0.6)
    a.axhline(0, color="k", lw=0.6)
    a.set_xlabel("Re")
    a.set_ylabel("Im")
    a.set_title("eigenvalues of J", fontsize=10)
    lrs = np.asarray(result["lrs"])
    for method in ("simultaneous", "alternating"):
        r = result[method]
        lr_star = r["largest_stable_lr"]
        label = f"{method} (stable up to {lr_star:.4g})" if lr_star else f"{method} (never stable)"
        b.plot(lrs, r["spectral_radius"], label=label)
    b.axhline(1.0, color="k", lw=0.6, ls="--")
    b.set_xlabel("learning rate")
    b.set_ylabel("spectral radius of the update")
    b.set_title(title, fontsize=10)
    b.legend(fontsize=7)
    return _save(fig, path)


def kernel_heatmap(K: np.ndarray, eigenvalues: np.ndarray, path, split: int = 0, extent=None, title: str = "") -> Path:
    """Heat map of a kernel matrix (N, N) and its eigenvalue spectrum (N,).

    ``split`` > 0 draws lines between the first ``split`` points (real) and the
    rest (generated); ``extent`` (lo, hi) labels the axes with coordinates for 1D points.
    """
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.2, 3.5), layout="constrained")
    kw = {"extent": (extent[0], extent[1], extent[1], extent[0])} if extent else {}
    im = a.imshow(K, cmap="viridis", **kw)
    fig.colorbar(im, ax=a, shrink=0.9)
    if split:
        a.axhline(split - 0.5, color="w", lw=0.8)
        a.axvline(split - 0.5, color="w", lw=0.8)
    a.set_title(title or "K(x, y)", fontsize=10)
    ev = np.clip(np.asarray(eigenvalues), 1e-16, None)
    b.semilogy(np.arange(1, len(ev) + 1), ev, ".-")
    b.set_xlabel("index")
    b.set_ylabel("eigenvalue")
    b.set_title("kernel spectrum", fontsize=10)
    return _save(fig, path)


def circling_plot(runs: list, path, tail: float = 0.25) -> Path:
    """Probe trajectories (D - D0, p_g - p_d) over the last ``tail`` of training, one panel per run.

    ``runs`` are (title, `circling.run_circling` result) pairs.
    """
    plt = _plt()
    n = len(runs)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False)
    for ax, (title, res) in zip(axes.ravel(), runs):
        rec = res["record"]
        k = int(len(rec["steps"]) * (1 - tail))
        for i, p in enumerate(res["probes"]):
            d0, pd = p["rest_point"]
            ax.plot(rec["d"][k:, i] - d0, rec["p_g"][k:, i] - pd, lw=0.5, alpha=0.8, label=f"x={p['x']:+.1f}")
        ax.plot(0, 0, "+", color="k", ms=10)
        ax.set_title(f"{title}: rotation index {res['summary']['mean_rotation_index']:+.2f}\n"
                     f"(steps {rec['steps'][k]}-{rec['steps'][-1]})", fontsize=9)
        ax.set_xlabel("D(x) - D0", fontsize=8)
        ax.set_ylabel("p_g(x) - p_d(x)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)
